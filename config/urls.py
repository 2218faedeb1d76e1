from django.contrib import admin
from django.urls import include, path

from config.branding import favicon

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("", include("access.urls")),
    path("", include("orgs.urls")),
    path("", include("resources.urls")),
    path("", include("runtimes.urls")),
    path("", include("identity.urls")),
    path("", include("twofactor.urls")),
    path("", include("workload.urls")),
    path("", include("governance.urls")),
]

# Django's error answers, as JSON {"detail", "code"} under /api/ (the console keeps its pages).
handler400 = "config.api.bad_request"
handler403 = "config.api.permission_denied"
handler404 = "config.api.page_not_found"
handler500 = "config.api.server_error"
