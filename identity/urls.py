from django.urls import include, path

from identity import views

urlpatterns = [
    path("o/<uuid:org_id>/sso/", views.tenant_sso, name="tenant-sso"),
    path("sso/required/", views.sso_required, name="sso-required"),
    path("", include("identity.signin_urls")),
]
