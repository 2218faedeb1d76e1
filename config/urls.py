from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("", include("access.urls")),
    path("", include("orgs.urls")),
    path("", include("resources.urls")),
]
