"""/api/v1/: every app's API routes, the OpenAPI schema and the offline Swagger UI."""

from csp.decorators import csp_update
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers, and the throughput script's ceiling: no authentication, no database."""
    return JsonResponse({"status": "ok"})


# The split view serves its start-up script from ?script instead of inline (the Content-Security-Policy allows
# scripts from files only). Swagger UI's stylesheet embeds its icons as data: URLs: img-src data: on this page only.
swagger_ui = csp_update({"img-src": "data:"})(
    SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/swagger_ui.html")
)

urlpatterns = [
    path("health", health, name="api-health"),
    path("", include("access.api_urls")),
    path("", include("orgs.api_urls")),
    path("", include("resources.api_urls")),
    path("", include("runtimes.api_urls")),
    path("", include("identity.api_urls")),
    path("", include("twofactor.api_urls")),
    path("", include("workload.api_urls")),
    path("runtime-agent/", include("runtimes.agent_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", swagger_ui, name="api-docs"),
]
