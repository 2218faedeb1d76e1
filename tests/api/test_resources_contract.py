"""The resources API as generated clients see it (issue #15): task steps described by the serializers the server
validates with (the ``Step`` oneOf), typed answers that match their schema, every list paginated, UUID path ids,
the lookup-table import as a multipart form, and a development-team member removed by the path."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from django.core.exceptions import ValidationError
from drf_spectacular.generators import SchemaGenerator

from resources import services
from resources.models import ComponentMember, Run, Task
from resources.services.tasks import STEP_TYPES, clean_steps
from resources.settings_registry import REGISTRY
from tests.factories import UserFactory, add_to_tenant


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def json_schema(openapi: dict[str, Any], node: Any) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema: ``nullable`` as a null alternative, refs into the document."""
    if isinstance(node, list):
        return [json_schema(openapi, item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: json_schema(openapi, value) for key, value in node.items() if key not in ("nullable",)}
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def conforms(openapi: dict[str, Any], component: str, instance: Any) -> None:
    """Raises unless ``instance`` is valid against ``#/components/schemas/<component>``."""
    document = {"components": {"schemas": json_schema(openapi, copy.deepcopy(openapi["components"]["schemas"]))}}
    document["$ref"] = f"#/components/schemas/{component}"
    jsonschema.validate(instance, document)


# -- steps: one definition for the validation and the schema ----------------------------------------------------


def test_the_step_schema_is_a_oneof_discriminated_by_type_built_from_the_validating_serializers(schema):
    components = schema["components"]["schemas"]
    step = components["Step"]
    names = {"http": "HttpStep", "lookup": "LookupStep", "transform": "TransformStep", "log": "LogStep"}
    assert step["discriminator"]["propertyName"] == "type"
    assert step["discriminator"]["mapping"] == {kind: f"#/components/schemas/{name}" for kind, name in names.items()}
    assert [option["$ref"] for option in step["oneOf"]] == [f"#/components/schemas/{n}" for n in names.values()]
    for kind, name in names.items():
        serializer = STEP_TYPES[kind]()
        component = components[name]
        assert set(component["properties"]) == set(serializer.fields), name
        assert set(component["required"]) == {n for n, f in serializer.fields.items() if f.required}, name
        type_enum = components[component["properties"]["type"]["allOf"][0]["$ref"].rsplit("/", 1)[-1]]
        assert type_enum["enum"] == [kind]
    http = components["HttpStep"]["properties"]
    assert components[http["method"]["$ref"].rsplit("/", 1)[-1]]["enum"] == list(STEP_TYPES["http"]().fields[
        "method"].choices)  # fmt: skip
    assert http["identity"]["allOf"][0]["$ref"] == "#/components/schemas/Identity"
    assert components["Identity"]["required"] == ["audience"]


def test_task_steps_are_steps_in_the_answer_and_in_the_write_bodies(schema):
    components = schema["components"]["schemas"]
    assert components["Task"]["properties"]["steps"]["items"] == {"$ref": "#/components/schemas/Step"}
    for body in ("TaskWriteRequest", "PatchedTaskUpdateRequest"):
        steps = components[body]["properties"]["steps"]
        assert steps["type"] == "array" and steps["items"]["$ref"] in (
            "#/components/schemas/Step", "#/components/schemas/StepRequest"
        ), body  # fmt: skip
        assert not steps.get("nullable"), body


def test_a_task_answer_matches_its_schema_for_every_step_type(world, api_as, schema):
    services.create_credential(actor=world.tenant_admin, org=world.root, name="CRM", kind="generic")
    services.create_lookup_table(actor=world.tenant_admin, org=world.marketing, name="Countries")
    steps = [
        {"type": "http", "method": "POST", "url": "https://api.example.com/x", "headers": {"A": "b"},
         "body": {"k": [1, 2]}, "credential": "CRM", "into": "reply", "name": "Call"},
        {"type": "http", "method": "GET", "url": "https://sts.example.com", "identity": {"audience": "sts.example"}},
        {"type": "lookup", "table": "Countries", "key": "fr", "into": "country", "default": None},
        {"type": "transform", "expression": "reply.body", "into": "shaped"},
        {"type": "log", "message": "done", "level": "warning"},
    ]  # fmt: skip
    client = api_as(world.tenant_admin)
    created = client.post(f"/api/v1/projects/{world.website.pk}/tasks", {"name": "All", "steps": steps}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["steps"] == steps  # kept exactly as given
    conforms(schema, "Task", created.json())
    for step in steps:
        conforms(schema, "Step", step)


def test_null_steps_are_refused_and_omitted_steps_are_none(world, api_as):
    client = api_as(world.tenant_admin)
    refused = client.post(f"/api/v1/projects/{world.website.pk}/tasks", {"name": "N", "steps": None}, format="json")
    assert refused.status_code == 400 and "steps" in refused.json()
    created = client.post(f"/api/v1/projects/{world.website.pk}/tasks", {"name": "N"}, format="json")
    assert created.status_code == 201 and created.json()["steps"] == []
    task = Task.objects.get(name="N")
    patched = client.patch(f"/api/v1/tasks/{task.pk}", {"steps": None}, format="json")
    assert patched.status_code == 400 and Task.objects.get(pk=task.pk).steps == []


def test_step_errors_name_the_step_and_say_what_is_wrong_once_per_problem():
    steps = [
        {"type": "log", "message": "fine"},
        {"type": "http", "method": "FETCH", "url": "ftp://x", "headers": {"A": 1}, "into": "9", "extra": 1},
        {"type": "lookup", "key": "  "},
        {"type": "log", "message": 5, "level": "loud", "name": None},
        {"type": "http", "method": "GET", "url": "https://x.example", "identity": {"audience": "x"},
         "credential": "CRM", "headers": {"authorization": "Basic x"}},
    ]  # fmt: skip
    with pytest.raises(ValidationError) as raised:
        clean_steps(steps)
    assert raised.value.message_dict["steps"] == [
        "Step 2: unknown field(s) extra for a http step.",
        "Step 2: “method” must be one of GET, POST, PUT, PATCH, DELETE, HEAD.",
        "Step 2: “url” must be an http:// or https:// address.",
        "Step 2: “headers” must be an object of header names to text values.",
        "Step 2: “into” must be a variable name (letters, digits, underscores).",
        "Step 3: a lookup step needs table.",
        "Step 3: “key” must be a non-empty text of at most 10,000 characters.",
        "Step 4: “name” must be a non-empty text of at most 10,000 characters.",
        "Step 4: “message” must be a non-empty text of at most 10,000 characters.",
        "Step 4: “level” must be info, warning or error.",
        "Step 5: “identity” sends the Authorization header: remove the step's own Authorization header.",
        "Step 5: “identity” authenticates the request: a step has either an identity or a credential.",
    ]


# -- typed answers -------------------------------------------------------------------------------------------------


def test_declarations_answer_their_typed_source_fields(world, api_as, schema):
    admin = world.tenant_admin
    services.create_credential(
        actor=admin, org=world.root, name="CRM", kind="http_basic", fields={"username": "u"},
        secret={"password": "p"},
    )  # fmt: skip
    override = services.create_credential(
        actor=admin, org=world.marketing, name="CRM", kind="generic", fields={"region": "eu"}
    )
    services.create_lookup_table(actor=admin, org=world.root, name="T", rows=[{"key": "a", "value": "b"}])
    services.create_env_var(actor=admin, org=world.root, key="MODE", value="x")
    services.create_component(actor=admin, org=world.root, name="Parser")
    client = api_as(admin)
    for segment, component in (
        ("credentials", "Credential"), ("lookup-tables", "LookupTable"), ("env-vars", "EnvVar"),
        ("components", "Component"),
    ):  # fmt: skip
        page = client.get(f"/api/v1/orgs/{world.emea.pk}/{segment}").json()
        conforms(schema, f"Paginated{component}List", page)
        assert page["results"], segment
    credential = client.get(f"/api/v1/orgs/{world.emea.pk}/credentials").json()["results"][0]
    assert credential["org"] == {"id": str(world.marketing.pk), "name": "Marketing"}
    assert credential["inherited"] is True and credential["fields"] == {"region": "eu"}
    assert credential["id"] == str(override.pk) and credential["overrides"] is not None
    config = client.get(f"/api/v1/orgs/{world.emea.pk}/effective-config").json()
    conforms(schema, "EffectiveConfig", config)
    assert set(config) == set(schema["components"]["schemas"]["EffectiveConfig"]["properties"])


def test_settings_are_a_paginated_typed_list(world, api_as, schema):
    services.set_setting(actor=world.tenant_admin, org=world.root, key="allowed_invite_domains", value=["a.example"])
    client = api_as(world.tenant_admin)
    url = f"/api/v1/orgs/{world.marketing.pk}/settings"
    everything = client.get(url).json()
    conforms(schema, "PaginatedSettingList", everything)
    assert everything["count"] == len(REGISTRY) and [s["key"] for s in everything["results"]] == list(REGISTRY)
    first, second = client.get(url, {"page_size": 2}).json(), client.get(url, {"page_size": 2, "page": 2}).json()
    assert first["next"] and [s["key"] for s in first["results"] + second["results"]] == list(REGISTRY)[:4]
    domains = next(s for s in everything["results"] if s["key"] == "allowed_invite_domains")
    assert domains["value"] == ["a.example"] and domains["source"] == "inherited" and domains["type"] == "domains"
    assert domains["org"] == {"id": str(world.root.pk), "name": world.root.name}
    assert client.get(url, {"page": 99}).status_code == 404


def test_task_shares_are_a_paginated_list(world, people, api_as, schema):
    task = services.create_task(actor=world.tenant_admin, project=world.website, name="Sync")
    client = api_as(world.tenant_admin)
    for user in ("guest-m", "integrator-m", "newcomer"):
        assert client.post(f"/api/v1/tasks/{task.pk}/shares", {"user": user, "permission": "view"},
                           format="json").status_code == 201  # fmt: skip
    first = client.get(f"/api/v1/tasks/{task.pk}/shares", {"page_size": 2}).json()
    conforms(schema, "PaginatedShareList", first)
    assert first["count"] == 3 and len(first["results"]) == 2 and first["next"]
    second = client.get(f"/api/v1/tasks/{task.pk}/shares", {"page_size": 2, "page": 2}).json()
    users = {s["user"]["username"] for s in first["results"] + second["results"]}
    assert users == {"guest-m", "integrator-m", "newcomer"}


@pytest.mark.parametrize(
    "path",
    ["/api/v1/tasks/nope", "/api/v1/credentials/123", "/api/v1/orgs/x/settings", "/api/v1/runs/1/logs",
     "/api/v1/components/abc/team/def", "/api/v1/orgs/not-a-uuid/effective-config"],
)  # fmt: skip
def test_a_malformed_id_is_the_json_404(world, api_as, path):
    response = api_as(world.tenant_admin).get(path)
    assert response.status_code == 404 and response.json() == {"detail": "Not found.", "code": "not_found"}


# -- the lookup-table import: a multipart form ------------------------------------------------------------------


def test_the_import_is_documented_as_a_multipart_form_and_takes_one(world, api_as, schema):
    body = schema["paths"]["/api/v1/lookup-tables/{id}/import"]["post"]["requestBody"]["content"]
    assert list(body) == ["multipart/form-data"]
    form = schema["components"]["schemas"][body["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert form["properties"]["file"] == {
        "type": "string", "format": "binary", "description": form["properties"]["file"]["description"]
    }  # fmt: skip
    table = services.create_lookup_table(actor=world.tenant_admin, org=world.root, name="T")
    client = api_as(world.tenant_admin)
    answer = client.post(f"/api/v1/lookup-tables/{table.pk}/import", {"csv": "a,1\nb,2\n"}, format="multipart")
    assert answer.status_code == 200 and answer.json()["row_count"] == 2
    conforms(schema, "LookupTable", answer.json())


# -- DELETE /components/{id}/team/{user_id} -------------------------------------------------------------------------


@pytest.fixture
def team(world, people):
    component = services.create_component(actor=world.tenant_admin, org=world.marketing, name="Parser")
    for user in (people["integrator"], people["guest"]):
        services.add_component_member(actor=world.tenant_admin, component=component, user=user)
    return component


def members(component) -> set[str]:
    return set(ComponentMember.objects.filter(component=component).values_list("user__username", flat=True))


def test_an_admin_removes_a_member_by_the_path_and_the_old_body_form_still_works(world, people, api_as, team):
    admin = api_as(people["admin"])
    removed = admin.delete(f"/api/v1/components/{team.pk}/team/{people['integrator'].pk}")
    assert removed.status_code == 204 and members(team) == {"guest-m"}
    again = admin.delete(f"/api/v1/components/{team.pk}/team/{people['integrator'].pk}")
    assert again.status_code == 404 and members(team) == {"guest-m"}
    assert "Deprecation" not in removed
    by_body = admin.delete(f"/api/v1/components/{team.pk}/team", {"user": "guest-m"}, format="json")
    assert by_body.status_code == 204 and members(team) == set()
    # the body form is deprecated: it says so, when it stops, and where its replacement is documented
    assert by_body["Deprecation"] == "@1796083200"  # 2026-12-01, six months before the sunset
    assert by_body["Sunset"] == "Tue, 01 Jun 2027 00:00:00 GMT"
    assert by_body["Link"] == '</api/v1/docs/#/components/removeComponentTeamMember>; rel="deprecation"'


def test_removing_by_the_path_needs_component_manage_and_honours_if_match(world, people, api_as, team):
    url = f"/api/v1/components/{team.pk}/team/{people['guest'].pk}"
    refused = api_as(people["integrator"]).delete(url)
    assert refused.status_code == 403 and members(team) == {"guest-m", "integrator-m"}
    stale = api_as(people["admin"]).delete(url, HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412 and stale.json()["code"] == "stale" and "guest-m" in members(team)


def test_removing_by_the_path_is_404_for_an_invisible_component_or_a_stranger(world, people, api_as, team):
    url = f"/api/v1/components/{team.pk}/team/{people['guest'].pk}"
    assert api_as(world.other_admin).delete(url).status_code == 404  # another tenant's component
    stranger = UserFactory(username="stranger")
    add_to_tenant(stranger, world.globex)
    assert api_as(people["admin"]).delete(f"/api/v1/components/{team.pk}/team/{stranger.pk}").status_code == 404
    assert (
        api_as(people["admin"]).delete(f"/api/v1/components/{team.pk}/team/{world.other_admin.pk}").status_code == 404
    )
    assert members(team) == {"guest-m", "integrator-m"}


# -- runs ----------------------------------------------------------------------------------------------------------


def test_a_run_its_list_and_its_logs_match_their_schema(world, api_as, schema):
    task = services.create_task(
        actor=world.tenant_admin, project=world.website, name="Sync", steps=[{"type": "log", "message": "hi"}]
    )
    client = api_as(world.tenant_admin)
    run = client.post(f"/api/v1/tasks/{task.pk}/run").json()
    conforms(schema, "Run", run)
    assert run["requested_by"] == world.tenant_admin.username
    Run.objects.filter(pk=run["id"]).update(
        requested_by=None, step_results=[{"index": 0, "status": "succeeded", "ms": 3}, {"index": 1, "status":
                                         "failed", "ms": None, "error": "boom"}]
    )  # fmt: skip
    again = client.get(f"/api/v1/runs/{run['id']}").json()
    conforms(schema, "Run", again)
    assert again["requested_by"] is None and again["step_results"][1]["error"] == "boom"
    conforms(schema, "PaginatedRunList", client.get(f"/api/v1/tasks/{task.pk}/runs").json())
    logs = client.get(f"/api/v1/runs/{run['id']}/logs").json()
    conforms(schema, "PaginatedLogLineList", logs)
    assert logs["results"][0]["level"] == "info"
