from django.urls import include, path

urlpatterns: list = [
    path("", include("identity.signin_urls")),
]
