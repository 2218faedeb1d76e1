"""API plumbing shared by every app: pagination, error mapping and the v1 router."""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import csrf, defaults
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config import hostile
from config.errors import DomainError


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        """``page`` from 1, ``page_size`` from 1 to its maximum: what the paginator accepts, declared (a larger
        page_size is capped at the maximum, not refused)."""
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            schema = parameter["schema"]
            schema["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                schema.update(maximum=self.max_page_size, default=self.page_size)
        return parameters

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The page envelope, in OpenAPI 3.1 terms (DRF's own says ``nullable``, which 3.1 no longer has), with every
        key required: a client can rely on ``next`` being there (null on the last page)."""

        def link(which: str) -> dict[str, Any]:
            return {
                "type": ["string", "null"],
                "format": "uri",
                "description": f"The URL of the {which} page, or null.",
            }

        return {
            "type": "object",
            "required": ["count", "next", "previous", "results"],
            "properties": {
                "count": {"type": "integer", "minimum": 0, "description": "How many items all pages hold."},
                "next": link("next"),
                "previous": link("previous"),
                "results": schema,
            },
        }


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map domain errors to the contract: 404 / 403 {"detail","code"} / 409 {"detail","code"} / 400 fields; and, the
    last line, a database's DataError to 400 and IntegrityError (a unique value raced) to 409 ``conflict``."""
    if isinstance(exc, DomainError):
        return Response(exc.payload(), status=exc.status, headers=exc.headers() or None)
    if (database := hostile.database_error_answer(exc, context["request"])) is not None:
        return Response(database[1], status=database[0])
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            data: Any = exc.message_dict
        else:
            data = {"non_field_errors": exc.messages}
        return Response(data, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if (
        response is not None
        and isinstance(exc, exceptions.APIException)
        and isinstance(response.data, dict)
        and "detail" in response.data
        and "code" not in response.data
    ):
        codes = exc.get_codes()
        response.data["code"] = codes if isinstance(codes, str) else "error"
    return response


# -- Django's own error answers (no DRF view reached: an unknown URL, a malformed request), JSON under /api/ --------


def _django_error(request: HttpRequest, status: int, detail: str, code: str) -> HttpResponse | None:
    return JsonResponse({"detail": detail, "code": code}, status=status) if hostile.is_api(request) else None


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _django_error(request, 400, "Bad request.", "bad_request") or defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    answer = _django_error(request, 403, "You do not have permission to perform this action.", "permission_denied")
    return answer or defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _django_error(request, 404, "Not found.", "not_found") or defaults.page_not_found(request, exception)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: under /api/, the JSON 403 DRF's session authentication answers for a missing token (a
    Django view reached with a session cookie and no token); elsewhere Django's page."""
    detail = f"CSRF Failed: {reason}" if reason else "CSRF Failed."
    return _django_error(request, 403, detail, "permission_denied") or csrf.csrf_failure(request, reason)


def server_error(request: HttpRequest) -> HttpResponse:
    return _django_error(request, 500, "Server error.", "server_error") or defaults.server_error(request)
