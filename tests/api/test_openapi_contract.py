"""The OpenAPI description is a contract generated clients are built from (issue #15): each rule here is something
openapi-python-client, a TypeScript generator or Redocly's linter tripped on. Each test lists every offending
operation or component, so a failure says exactly what to fix."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from config.api import csrf_failure
from config.error_codes import ERROR_CODES
from config.operations import OPERATIONS

METHODS = ("get", "post", "put", "patch", "delete")
CAMEL = re.compile(r"^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)*$")
# Path parameters that are not object ids: an invitation's token, a setting's key.
NOT_IDS = {"token", "key"}
# The one operation that receives a file.
MULTIPART = {"importLookupTable"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict[str, Any]):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def where(path: str, method: str, operation: dict[str, Any]) -> str:
    return f"{method.upper()} {path} ({operation.get('operationId')})"


def test_every_operation_has_its_row_in_the_table_and_every_row_its_operation(schema):
    published = {(method.upper(), path.removeprefix("/api/v1")) for path, method, _ in operations(schema)}
    assert sorted(published - set(OPERATIONS)) == [], "operations without a row in config/operations.py"
    assert sorted(set(OPERATIONS) - published) == [], "rows of config/operations.py without an operation"


def test_operation_ids_are_unique_camel_case_and_summaries_present(schema):
    seen: dict[str, str] = {}
    offenders = []
    for path, method, operation in operations(schema):
        operation_id = operation.get("operationId", "")
        if not CAMEL.match(operation_id) or operation_id in seen:
            offenders.append(where(path, method, operation))
        seen[operation_id] = path
        if not operation.get("summary"):
            offenders.append(f"{where(path, method, operation)}: no summary")
    assert offenders == []


def test_request_bodies_are_json_only_but_the_file_upload(schema):
    offenders = []
    for path, method, operation in operations(schema):
        if body := operation.get("requestBody"):
            expected = ["multipart/form-data"] if operation["operationId"] in MULTIPART else ["application/json"]
            if list(body["content"]) != expected:
                offenders.append(f"{where(path, method, operation)}: {list(body['content'])}")
    assert offenders == []


def test_path_parameters_are_typed(schema):
    offenders = []
    for path, method, operation in operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "path":
                continue
            declared = parameter["schema"]
            if parameter["name"] in NOT_IDS:
                ok = declared.get("type") == "string"
            else:
                ok = declared == {"type": "string", "format": "uuid"}
            if not ok:
                offenders.append(f"{where(path, method, operation)}: {parameter['name']} {declared}")
    assert offenders == []


def untyped(schema: dict[str, Any], trail: str) -> list[str]:
    """The places in a schema object that say nothing of their type (``{}``, ``{"readOnly": true}``)."""
    if not isinstance(schema, dict):
        return []
    typed = any(key in schema for key in ("type", "$ref", "oneOf", "anyOf", "allOf", "enum", "const"))
    found = [] if typed else [trail]
    for name, child in schema.get("properties", {}).items():
        found += untyped(child, f"{trail}.{name}")
    if isinstance(schema.get("items"), dict):
        found += untyped(schema["items"], f"{trail}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        found += untyped(schema["additionalProperties"], f"{trail}{{}}")
    for key in ("oneOf", "anyOf", "allOf"):
        for index, child in enumerate(schema.get(key, [])):
            found += untyped(child, f"{trail}.{key}[{index}]")
    return found


def test_every_field_is_typed(schema):
    offenders = []
    for name, component in schema["components"]["schemas"].items():
        offenders += untyped(component, name)
    assert offenders == []


def test_component_names_read_like_words(schema):
    names = set(schema["components"]["schemas"])
    assert sorted(name for name in names if name.endswith("RequestRequest")) == []


def test_every_collection_is_a_paginated_list(schema):
    components = schema["components"]["schemas"]
    offenders = []
    for path, method, operation in operations(schema):
        if method != "get" or not operation["operationId"].startswith("list"):
            continue
        parameters = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
        page_size = parameters.get("page_size", {}).get("schema", {})
        if "page" not in parameters or page_size.get("maximum") != 200:
            offenders.append(f"{where(path, method, operation)}: page/page_size (maximum 200) not declared")
            continue
        body = operation["responses"]["200"]["content"]["application/json"]["schema"]
        component = components.get(body.get("$ref", "").rsplit("/", 1)[-1], {})
        if set(component.get("properties", {})) != {"count", "next", "previous", "results"}:
            offenders.append(f"{where(path, method, operation)}: the answer is not a paginated list")
    for path, method, operation in operations(schema):
        for status, response in operation["responses"].items():
            body = response.get("content", {}).get("application/json", {}).get("schema", {})
            if body.get("type") == "array":
                offenders.append(f"{where(path, method, operation)}: {status} is a bare array")
    assert offenders == []


def test_the_error_codes_are_an_enum_of_every_code(schema):
    components = schema["components"]["schemas"]
    code = components["Error"]["properties"]["code"]
    reference = code.get("$ref") or code["allOf"][0]["$ref"]
    enum = components[reference.rsplit("/", 1)[-1]]
    assert set(enum["enum"]) == set(ERROR_CODES)
    # Every 4xx answer is a shared error response, or a body of the shared error schemas with its own description.
    shared = {"#/components/schemas/Error", "#/components/schemas/ValidationError", "#/components/schemas/Stale"}
    offenders = []
    for path, method, operation in operations(schema):
        for status, response in operation["responses"].items():
            if not status.startswith("4") or response.get("$ref", "").startswith("#/components/responses/"):
                continue
            body = response.get("content", {}).get("application/json", {}).get("schema", {})
            references = {body.get("$ref")} | {option.get("$ref") for option in body.get("oneOf", [])}
            if not references - {None} or not references - {None} <= shared:
                offenders.append(f"{where(path, method, operation)}: {status} {body}")
    assert offenders == []


def raised_codes() -> dict[str, str]:
    """Every error code written as a literal in the project's source: ``code="…"``, ``default_code = "…"``, a
    ``"code": "…"`` body; and the policy fences' codes (the first argument of a Fence)."""
    found = {}
    for directory in ("access", "orgs", "resources", "runtimes", "identity", "twofactor", "workload", "config"):
        for file in (ROOT / directory).rglob("*.py"):
            if "migrations" in file.parts:
                continue
            tree = ast.parse(file.read_text())
            constants = {
                target.id: node.value
                for node in tree.body
                if isinstance(node, ast.Assign)
                for target in node.targets
                if isinstance(target, ast.Name) and target.id.isupper()
            }
            for node in ast.walk(tree):
                value = None
                if (isinstance(node, ast.keyword) and node.arg == "code") or (
                    isinstance(node, ast.Assign)
                    and any(isinstance(target, ast.Name) and target.id == "default_code" for target in node.targets)
                ):
                    value = node.value
                elif isinstance(node, ast.Dict):
                    for key, item in zip(node.keys, node.values, strict=True):
                        if isinstance(key, ast.Constant) and key.value == "code":
                            value = item
                if isinstance(value, ast.Name):  # code=PLACEMENT: the module's constant
                    value = constants.get(value.id)
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found[value.value] = f"{file.relative_to(ROOT)}:{node.lineno}"
    return found


def test_the_source_raises_no_code_the_enum_lacks():
    missing = {code: place for code, place in raised_codes().items() if code not in ERROR_CODES}
    assert missing == {}


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_an_unknown_path_under_the_api_answers_json_404(db, api, method, settings):
    settings.DEBUG = True  # make run: Django's own 404 page would be HTML
    response = getattr(api, method)("/api/v1/no/such/thing")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_a_method_a_path_does_not_answer_is_json_405(db, api):
    response = api.post("/api/v1/health", {})
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response["Allow"] == "GET, HEAD"
    response = api.put("/api/v1/orgs", {}, format="json")
    assert response.status_code in (401, 405)  # anonymous: authentication is asked first
    assert response.json()["code"] in ("not_authenticated", "method_not_allowed")


def test_the_schema_states_servers_security_and_licence(schema):
    assert schema["servers"][0]["url"].startswith("http")
    assert schema["security"] == [{"bearerAuth": []}, {"cookieAuth": []}]
    assert schema["info"]["license"]["name"]
    anonymous = {operation["operationId"]: operation["security"] for _, _, operation in operations(schema)}
    assert anonymous["createToken"] == [] and anonymous["signUp"] == []
    assert all("security" in operation for _, _, operation in operations(schema))


ORG_FIELDS = {"org", "parent", "root_org", "org_id", "declared_in", "default_org"}


def test_every_reference_to_an_organization_is_an_org_ref(schema):
    offenders = []
    for name, component in schema["components"]["schemas"].items():
        for field, declared in component.get("properties", {}).items():
            if field not in ORG_FIELDS or "properties" in declared:
                continue  # an embedded object (an org's summary) is typed by its own schema
            options = declared.get("allOf", []) + declared.get("oneOf", [])
            references = {declared.get("$ref")} | {option.get("$ref") for option in options}
            embedded = any(
                "properties" in schema["components"]["schemas"].get(reference.rsplit("/", 1)[-1], {})
                for reference in references - {None}
            )
            if "#/components/schemas/OrgRef" not in references and not embedded:
                offenders.append(f"{name}.{field}: {declared}")
    assert offenders == []


def test_an_id_in_capitals_is_the_same_object_and_a_malformed_one_the_json_404(world, api_as):
    """UUIDs are case-insensitive on input (RFC 9562): an id printed in capitals reaches the object."""
    client = api_as(world.tenant_admin)
    lower = client.get(f"/api/v1/orgs/{world.marketing.pk}")
    upper = client.get(f"/api/v1/orgs/{str(world.marketing.pk).upper()}")
    assert lower.status_code == upper.status_code == 200
    assert upper.json()["id"] == lower.json()["id"] == str(world.marketing.pk)
    malformed = client.get(f"/api/v1/orgs/{str(world.marketing.pk)[:-1]}g")
    assert malformed.status_code == 404 and malformed.json() == {"detail": "Not found.", "code": "not_found"}


def test_an_unsafe_request_with_a_session_cookie_to_an_unknown_api_path_is_the_json_404(world, client):
    """Not Django's HTML CSRF page (the fuzzer found it): the catch-all changes nothing, so it needs no token."""
    client.force_login(world.tenant_admin)
    client.handler.enforce_csrf_checks = True
    for method in (client.post, client.delete, client.patch):
        response = method("/api/v1/orgs/null,null")
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert client.post("/api/v1/health").json()["code"] == "method_not_allowed"


def test_a_csrf_refusal_under_the_api_is_json(rf):
    answer = csrf_failure(rf.post("/api/v1/orgs"), "CSRF token missing.")
    assert answer.status_code == 403 and answer["Content-Type"] == "application/json"
    assert json.loads(answer.content) == {"detail": "CSRF Failed: CSRF token missing.", "code": "permission_denied"}
    assert csrf_failure(rf.post("/o/x/"), "CSRF token missing.")["Content-Type"].startswith("text/html")
