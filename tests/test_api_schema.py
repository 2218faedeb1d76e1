"""The OpenAPI schema documents what the API answers: every error status an operation can give (config/schema.py),
the real shape of each body; and what schemathesis found answering otherwise stays fixed (scripts/fuzz_api runs
the fuzzer itself in CI)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from resources import services
from resources.models import ComponentVersion, Hidden, LookupRow


@pytest.fixture
def schema(db, api) -> dict[str, Any]:
    response = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def statuses(schema: dict[str, Any], method: str, path: str) -> set[str]:
    return set(schema["paths"][path][method]["responses"])


@pytest.mark.parametrize(
    "method, path, expected",
    [
        ("get", "/api/v1/me", {"200", "401", "429"}),
        ("post", "/api/v1/auth/token", {"201", "400", "401", "409", "415", "429"}),  # 401 otp_invalid
        ("post", "/api/v1/signup", {"201", "400", "404", "409", "415", "429"}),
        ("get", "/api/v1/orgs", {"200", "400", "401", "404", "429"}),
        ("post", "/api/v1/orgs", {"201", "400", "401", "403", "409", "415", "422", "429"}),  # 422: Idempotency-Key
        ("get", "/api/v1/orgs/{id}/members", {"200", "400", "401", "403", "404", "429"}),
        ("delete", "/api/v1/orgs/{id}", {"204", "400", "401", "403", "404", "409", "412", "429"}),
        ("post", "/api/v1/invitations/{token}/accept", {"200", "400", "401", "403", "404", "409", "415", "429"}),
    ],
)
def test_each_operation_documents_the_errors_it_can_answer(schema, method, path, expected):
    assert statuses(schema, method, path) == expected


def test_every_operation_documents_its_errors_by_the_same_rules(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            documented = set(operation["responses"])
            located = {p["in"] for p in operation.get("parameters", [])}
            if "path" in located:
                assert {"400", "404"} <= documented, (method, path)
            if operation.get("security") and {} not in operation["security"] and method != "get":
                assert {"401", "403", "409"} <= documented, (method, path)
            if "requestBody" in operation:
                assert {"400", "415"} <= documented, (method, path)
            # 412 exactly where the operation reads If-Match (a versioned object's change or delete)
            if_match = any(p["name"] == "If-Match" and p["in"] == "header" for p in operation.get("parameters", []))
            assert ("412" in documented) == if_match, (method, path)
            assert "500" not in documented


def test_the_error_bodies_are_shared_components(schema):
    components = schema["components"]
    assert components["schemas"]["Error"]["required"] == ["code", "detail"]
    assert components["schemas"]["ValidationError"]["additionalProperties"]
    bad_request = components["responses"]["BadRequest"]["content"]["application/json"]["schema"]
    assert bad_request == {
        "oneOf": [{"$ref": "#/components/schemas/Error"}, {"$ref": "#/components/schemas/ValidationError"}]
    }
    for name in ("Unauthenticated", "Forbidden", "NotFound", "Conflict", "UnsupportedMediaType", "Throttled"):
        content = components["responses"][name]["content"]["application/json"]["schema"]
        assert content == {"$ref": "#/components/schemas/Error"}, name
    assert schema["paths"]["/api/v1/orgs/{id}"]["get"]["responses"]["404"] == {
        "$ref": "#/components/responses/NotFound"
    }


def test_the_bodies_found_undocumented_by_the_fuzzer_are_documented_as_they_are(schema):
    paths, schemas = schema["paths"], schema["components"]["schemas"]
    revoke = paths["/api/v1/invitations/{id}"]["delete"]["responses"]
    assert "204" not in revoke and revoke["200"]["content"]["application/json"]["schema"]["$ref"].endswith("Invitation")
    assert "200" in paths["/api/v1/orgs/{id}/settings/{key}"]["delete"]["responses"]
    lists = {"teams": "Team", "roles": "Role", "invitations": "Invitation", "audit-events": "AuditEvent"}
    for suffix, item in lists.items():
        path = f"/api/v1/orgs/{{id}}/{suffix}"
        body = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/Paginated{item}List"}, path
    share = schemas["Share"]["properties"]
    # OpenAPI 3.1: a nullable reference is oneOf [the reference, null]
    assert share["user"]["oneOf"] == [{"$ref": "#/components/schemas/ShareUser"}, {"type": "null"}]
    assert share["team"]["oneOf"] == [{"$ref": "#/components/schemas/TeamRef"}, {"type": "null"}]
    assert "format" not in schemas["Component"]["properties"]["repository_url"]  # may be empty: not a "uri"


# -- the server errors the fuzzer found ----------------------------------------------------------------------------


@pytest.fixture
def stock(world) -> dict[str, Any]:
    alice = world.tenant_admin
    component = services.create_component(actor=alice, org=world.root, name="Parser")
    services.add_component_member(actor=world.superuser, component=component, user=alice)  # nobody adds themselves
    return {
        "component": component,
        "table": services.create_lookup_table(actor=alice, org=world.root, name="T", rows=[{"key": "a", "value": "b"}]),
        "credential": services.create_credential(actor=alice, org=world.root, name="CRM", kind="generic"),
    }


@pytest.mark.parametrize("body", [[], ["1.0"], True, 7, "text"])
def test_a_version_body_that_is_not_an_object_is_a_400(world, stock, api_as, body):
    response = api_as(world.tenant_admin).post(
        f"/api/v1/components/{stock['component'].pk}/versions", body, format="json"
    )
    assert response.status_code == 400
    assert not ComponentVersion.objects.exists()


@pytest.mark.parametrize("body", [[], True, {"csv": ["a,b"]}, {"csv": "a,b", "mode": {"x": 1}}, {"mode": []}])
def test_an_import_body_of_the_wrong_shape_is_a_400(world, stock, api_as, body):
    response = api_as(world.tenant_admin).post(f"/api/v1/lookup-tables/{stock['table'].pk}/import", body, format="json")
    assert response.status_code == 400
    assert list(LookupRow.objects.values_list("key", flat=True)) == ["a"]


def test_an_import_still_takes_csv_text_and_a_mode(world, stock, api_as):
    response = api_as(world.tenant_admin).post(
        f"/api/v1/lookup-tables/{stock['table'].pk}/import", {"csv": "c,d\n", "mode": "merge"}, format="json"
    )
    assert response.status_code == 200 and response.json()["row_count"] == 2


@pytest.mark.parametrize("body", [{"type": {"a": 1}, "name": "CRM"}, {"type": "credential", "name": ["CRM"]}, []])
def test_a_hide_body_of_the_wrong_shape_is_a_400(world, stock, api_as, body):
    response = api_as(world.tenant_admin).post(f"/api/v1/orgs/{world.marketing.pk}/hidden", body, format="json")
    assert response.status_code == 400
    assert not Hidden.objects.exists()


@pytest.mark.parametrize(
    "method, path",
    [("get", "/api/v1/nowhere"), ("delete", "/api/v1/auth/tokens/null,null"), ("get", "/api/v1/orgs/a/b/c")],
)
def test_an_unknown_api_url_is_a_json_404_not_the_console_page(world, api_as, method, path):
    response = getattr(api_as(world.tenant_admin), method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_an_unknown_console_url_keeps_the_404_page(world, as_user):
    response = as_user(world.tenant_admin).get("/nowhere/")
    assert response.status_code == 404 and "text/html" in response["Content-Type"]


def test_a_request_django_refuses_before_any_view_is_a_json_400_under_the_api(world, api_as):
    query = "&".join(f"f{i}=x" for i in range(1100))  # more than DATA_UPLOAD_MAX_NUMBER_FIELDS
    response = api_as(world.tenant_admin).get("/api/v1/orgs", QUERY_STRING=query)
    assert response.status_code == 400
    assert response.json() == {"detail": "Bad request.", "code": "bad_request"}


def test_a_page_past_the_last_is_the_documented_404(world, api_as):
    response = api_as(world.tenant_admin).get("/api/v1/orgs", {"page": 0})
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_shares_answer_the_documented_shape(world, people, api_as):
    task = services.create_task(actor=world.tenant_admin, project=world.website, name="Sync")
    client = api_as(world.tenant_admin)
    created = client.post(f"/api/v1/tasks/{task.pk}/shares", {"user": "guest-m", "permission": "view"}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["user"] == {"id": str(people["guest"].pk), "username": "guest-m"} and body["team"] is None
    assert client.get(f"/api/v1/tasks/{task.pk}/shares").json()["results"] == [body]


def test_an_empty_repository_url_is_answered_as_an_empty_text(world, stock, api_as):
    body = api_as(world.tenant_admin).get(f"/api/v1/components/{stock['component'].pk}").json()
    assert body["repository_url"] == ""


@pytest.mark.parametrize(
    "since",
    [
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC (OverflowError)
        "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
        "2026-13-45T00:00:00Z",  # well-formed, impossible (ValueError)
    ],
)
def test_an_audit_since_postgresql_or_python_cannot_hold_is_a_field_error(world, api_as, as_user, since):
    response = api_as(world.tenant_admin).get(f"/api/v1/orgs/{world.root.pk}/audit-events", {"since": since})
    assert response.status_code == 400 and "since" in response.json()
    page = as_user(world.tenant_admin).get(f"/o/{world.root.pk}/audit/", {"since": since})
    assert page.status_code == 400 and "ISO 8601 date-time" in page.content.decode()  # a form error (#11 §4)


def test_an_audit_since_with_any_offset_is_read_in_utc(world, api_as):
    client = api_as(world.tenant_admin)
    url = f"/api/v1/orgs/{world.root.pk}/audit-events"
    # PostgreSQL refuses offsets beyond ±15:59 ("time zone displacement out of range": a 500 the fuzzer found).
    assert client.get(url, {"since": "0487-01-08T12:53:15+22:07"}).json()["count"]
    assert not client.get(url, {"since": "9998-01-01T00:00:00-22:00"}).json()["count"]


def test_the_schema_generates_without_a_single_warning(db):
    """A warning (two operations with one id, a field of unknown type) is a client generator's error later; the
    deployment check (--fail-level WARNING) refuses them too."""
    from django.core.management import call_command

    call_command("spectacular", "--fail-on-warn", "--file", os.devnull)
