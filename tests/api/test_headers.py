"""The headers integrators rely on (issue #15 §7): X-Request-Id echoed or generated and logged, Deprecation/Sunset
from one decorator, and the schema declaring them all (with Idempotency-Key and the RateLimit-* headers)."""

from __future__ import annotations

import io
import logging
import re
from datetime import date
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import include, path
from drf_spectacular.generators import SchemaGenerator
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from config import ratelimit, request_id
from config.deprecation import deprecated
from idempotency.operations import IDEMPOTENT_OPERATIONS, NOT_IDEMPOTENT

SUNSET = date(2027, 6, 1)
LINK = "https://canopy.example/changelog#legacy"
test_logger = logging.getLogger("canopy.tests.headers")


class Legacy(APIView):
    """A test-only view: GET is current, DELETE deprecated (as DELETE /components/{id}/team with a body will be)."""

    permission_classes: list[Any] = []

    def get(self, request: Any, id: Any) -> Response:
        test_logger.warning("reading the legacy thing")
        return Response({"id": str(id)})

    @deprecated(sunset=SUNSET, link=LINK)
    def delete(self, request: Any, id: Any) -> Response:
        if request.query_params.get("missing"):
            raise NotFound()
        return Response(status=204)


@deprecated(sunset=SUNSET, since=date(2026, 12, 1), link=LINK)
class Older(APIView):
    permission_classes: list[Any] = []

    def get(self, request: Any) -> Response:
        return Response({})


def boom(request: Any) -> Any:
    raise RuntimeError("the test's server error")


legacy_patterns = [
    path("api/v1/legacy/<uuid:id>", Legacy.as_view()),
    path("api/v1/older", Older.as_view()),
    path("api/v1/boom", boom),
]
urlpatterns = [*legacy_patterns, path("", include("config.urls"))]
handler500 = "config.api.server_error"


@pytest.fixture
def legacy_urls(settings):
    settings.ROOT_URLCONF = __name__


# -- X-Request-Id ---------------------------------------------------------------------------------------------------


def test_a_sane_request_id_is_echoed(world, api):
    response = api.get("/api/v1/health", HTTP_X_REQUEST_ID="client-42.retry_1")
    assert response["X-Request-Id"] == "client-42.retry_1"


@pytest.mark.parametrize("sent", [None, "", "x" * 201, "has space", "new\nline", "semi;colon", "é"])
def test_otherwise_a_new_one_is_generated(world, api, sent):
    extra = {} if sent is None else {"HTTP_X_REQUEST_ID": sent}
    response = api.get("/api/v1/health", **extra)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-Id"])


def test_every_answer_carries_one_errors_and_the_console_included(world, api, client):
    assert api.get("/api/v1/me").has_header("X-Request-Id")  # 401
    assert api.get("/api/v1/no-such-thing").has_header("X-Request-Id")  # the JSON 404
    assert api.get("/api/v1/orgs", {"q": "\x00"}).has_header("X-Request-Id")  # refused by the hostile-input check
    assert client.get("/login/").has_header("X-Request-Id")  # a console page
    ids = {api.get("/api/v1/health")["X-Request-Id"] for _ in range(3)}
    assert len(ids) == 3


def test_a_server_error_names_its_request_id(world, api, legacy_urls):
    api.raise_request_exception = False
    response = api.get("/api/v1/boom", HTTP_X_REQUEST_ID="support-ticket-7")
    assert response.status_code == 500
    assert response.json() == {"detail": "Server error.", "code": "server_error", "request_id": "support-ticket-7"}
    assert response["X-Request-Id"] == "support-ticket-7"
    assert int(response["Content-Length"]) == len(response.content)


def test_log_lines_written_while_serving_a_request_name_it(world, api, legacy_urls):
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(request_id.RequestIdFilter())
    handler.setFormatter(request_id.RequestIdFormatter())
    test_logger.addHandler(handler)
    try:
        response = api.get("/api/v1/legacy/00000000-0000-0000-0000-000000000001")
        test_logger.warning("outside any request")
    finally:
        test_logger.removeHandler(handler)
    assert out.getvalue().splitlines() == [
        f"reading the legacy thing request_id={response['X-Request-Id']}",
        "outside any request",
    ]


def test_a_server_errors_log_names_the_request_on_its_first_line(world, api, legacy_urls):
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(request_id.RequestIdFilter())
    handler.setFormatter(request_id.RequestIdFormatter())
    django_request = logging.getLogger("django.request")
    django_request.addHandler(handler)
    api.raise_request_exception = False
    try:
        api.get("/api/v1/boom", HTTP_X_REQUEST_ID="ticket-8")
    finally:
        django_request.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Internal Server Error: /api/v1/boom request_id=ticket-8"
    assert lines[1].startswith("Traceback") and lines[-1] == "RuntimeError: the test's server error"


def test_the_application_log_has_the_filter_and_formatter(settings):
    console = settings.LOGGING["handlers"]["console"]
    assert "request_id" in console["filters"] and console["formatter"] == "console"
    assert settings.MIDDLEWARE[:2] == [
        "config.error_codes.UndeclaredErrorCode",
        "config.request_id.RequestIdMiddleware",
    ]


# -- Deprecation and Sunset -----------------------------------------------------------------------------------------


def test_a_deprecated_method_answers_with_deprecation_sunset_and_link(world, api, legacy_urls):
    url = "/api/v1/legacy/00000000-0000-0000-0000-000000000001"
    deleted = api.delete(url)
    assert deleted.status_code == 204
    assert (
        deleted["Deprecation"] == "@1796083200"
    )  # 2026-12-01: six months before the sunset (the least the policy gives)
    assert deleted["Sunset"] == "Tue, 01 Jun 2027 00:00:00 GMT"
    assert deleted["Link"] == f'<{LINK}>; rel="deprecation"'
    missing = api.delete(url + "?missing=1")
    assert missing.status_code == 404 and missing["Sunset"] == deleted["Sunset"]  # errors too
    current = api.get(url)
    assert current.status_code == 200 and not current.has_header("Deprecation")  # only the deprecated method


def test_a_deprecated_view_marks_every_method(world, api, legacy_urls):
    response = api.get("/api/v1/older")
    assert response["Deprecation"] == "@1796083200" and response.has_header("Sunset")


def test_the_policy_gives_six_months_at_least():
    with pytest.raises(ImproperlyConfigured, match="6 months"):
        deprecated(sunset=date(2027, 3, 1), since=date(2026, 12, 1), link=LINK)
    with pytest.raises(ImproperlyConfigured):
        deprecated(sunset=SUNSET, link="")
    deprecated(sunset=date(2027, 6, 1), since=date(2026, 12, 1), link=LINK)  # exactly six months: fine


def test_the_schema_marks_a_deprecated_operation_and_its_headers():
    schema = SchemaGenerator(patterns=legacy_patterns).get_schema(request=None, public=True)
    operations = {(p, m): op for p, item in schema["paths"].items() for m, op in item.items()}
    deleting = operations[("/api/v1/legacy/{id}", "delete")]
    assert deleting["deprecated"] is True and "2027-06-01" in deleting["description"]
    assert {"Deprecation", "Sunset", "Link"} <= set(deleting["responses"]["204"]["headers"])
    assert "deprecated" not in operations[("/api/v1/legacy/{id}", "get")]
    assert operations[("/api/v1/older", "get")]["deprecated"] is True
    assert {"Deprecation", "Sunset", "Link", "X-Request-Id"} <= set(schema["components"]["headers"])


# -- The schema -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict[str, Any]):
    for path_, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path_, method, operation


def test_idempotency_key_is_declared_on_every_create_and_on_run_with_its_422(schema):
    creates = {
        op["operationId"] for _, method, op in operations(schema) if method == "post" and "201" in op["responses"]
    }
    assert sorted(creates - IDEMPOTENT_OPERATIONS - set(NOT_IDEMPOTENT)) == [], (
        "creates neither idempotent nor excused: idempotency/operations.py"
    )
    assert sorted((IDEMPOTENT_OPERATIONS | set(NOT_IDEMPOTENT)) - creates) == [], "listed but not a create"
    offenders = []
    for path_, method, op in operations(schema):
        declared = [p for p in op.get("parameters", []) if p["name"] == "Idempotency-Key" and p["in"] == "header"]
        takes_key = op["operationId"] in IDEMPOTENT_OPERATIONS
        if bool(declared) != takes_key:
            offenders.append(f"{method.upper()} {path_}: Idempotency-Key {'missing' if takes_key else 'declared'}")
        if takes_key and op["responses"].get("422") != {"$ref": "#/components/responses/UnprocessableEntity"}:
            offenders.append(f"{method.upper()} {path_}: no 422")
        if takes_key and "Idempotent-Replayed" not in op["responses"]["201"].get("headers", {}):
            offenders.append(f"{method.upper()} {path_}: no Idempotent-Replayed on 201")
    assert offenders == []
    unprocessable = schema["components"]["responses"]["UnprocessableEntity"]
    assert unprocessable["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_every_answer_declares_x_request_id(schema):
    offenders = [
        f"{method.upper()} {path_} {status}"
        for path_, method, op in operations(schema)
        for status, response in op["responses"].items()
        if "$ref" not in response and "X-Request-Id" not in response.get("headers", {})
    ]
    offenders += [
        f"components/responses/{name}"
        for name, response in schema["components"]["responses"].items()
        if "X-Request-Id" not in response.get("headers", {})
    ]
    assert offenders == []


def test_rate_limit_headers_are_declared_on_429_and_on_the_counted_operations(schema):
    throttled = schema["components"]["responses"]["Throttled"]["headers"]
    assert {"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(throttled)
    headers = schema["components"]["headers"]
    assert headers["RateLimit-Reset"]["schema"]["type"] == "integer"
    generator = SchemaGenerator()
    generator._initialise_endpoints()
    views = {(path_, method.lower()): callback.cls for path_, _, method, callback in generator.endpoints}
    offenders = []
    for path_, method, op in operations(schema):
        view = views[(path_, method)]
        agent = path_.startswith("/api/v1/runtime-agent/") and op["operationId"] != "agentEnroll"
        if agent == ratelimit.throttled(view) or (not agent and "429" not in op["responses"]):
            offenders.append(f"{method.upper()} {path_}: {'under' if agent else 'not under'} the general limits")
        # DRF's own ScopedRateThrottle (access/api.py, twofactor/api.py) sends no headers: config.ratelimit's does.
        plain_drf = any(cls is ScopedRateThrottle for cls in view.throttle_classes)
        for status, response in op["responses"].items():
            declares = "RateLimit-Remaining" in response.get("headers", {})
            if status.startswith("2") and declares != (not agent and not plain_drf):
                offenders.append(
                    f"{method.upper()} {path_} {status}: RateLimit-* {'declared' if declares else 'missing'}"
                )
    assert offenders == []
