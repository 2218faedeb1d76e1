"""/api/v1/: every app's API routes, the OpenAPI schema and the offline Swagger UI."""

from csp.decorators import csp_update
from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView


# Both views change nothing, so they need no CSRF token: without csrf_exempt, an unsafe method with a session cookie
# would get Django's CSRF refusal (config.api.csrf_failure) before the 404 or 405 that describes it.
@csrf_exempt
def health(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers, and the throughput script's ceiling: no authentication, no database."""
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed(request, ["GET", "HEAD"])
    return JsonResponse({"status": "ok"})


def method_not_allowed(request: HttpRequest, allowed: list[str]) -> JsonResponse:
    response = JsonResponse(
        {"detail": f'Method "{request.method}" not allowed.', "code": "method_not_allowed"}, status=405
    )
    response["Allow"] = ", ".join(allowed)
    return response


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Any other path under /api/v1/: the API's JSON 404, also with DEBUG on (Django's debug page is HTML)."""
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)


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
    path("", include("governance.api_urls")),
    path("runtime-agent/", include("runtimes.agent_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", swagger_ui, name="api-docs"),
    re_path(r"^(?P<rest>.*)$", not_found),  # last
]
