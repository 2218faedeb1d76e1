"""/api/v1/: every app's API routes, the OpenAPI schema and the offline Swagger UI."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers, and the throughput script's ceiling: no authentication, no database."""
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("health", health, name="api-health"),
    path("", include("access.api_urls")),
    path("", include("orgs.api_urls")),
    path("", include("resources.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
