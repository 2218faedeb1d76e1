"""The issuer's public documents at the site's root (workload.views)."""

from django.urls import path

from workload import views

urlpatterns = [
    path(".well-known/openid-configuration", views.openid_configuration, name="workload-openid-configuration"),
    path(".well-known/jwks.json", views.jwks, name="workload-jwks"),
]
