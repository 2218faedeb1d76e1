"""The access and orgs operations (/auth, /signup, /me, /tenants, /orgs, /members, /teams, /roles, /invitations,
/projects) against the OpenAPI contract (issue #15): the schema rules of test_openapi_contract.py hold for them,
and real answers are what their schema says (a generated client parses them), ids in paths are UUIDs, lists are
paginated, the audit log's filters are validated parameters."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from jsonschema import Draft7Validator

from access.models import AuditEvent, Invitation
from access.services import accounts
from access.services.teams import add_team_member, create_team
from config.actors import SYSTEM
from tests.api import test_openapi_contract as rules
from tests.factories import PASSWORD

MINE = re.compile(
    r"^/api/v1/(auth/|signup|me$|me/(password|verify-email)|tenants$|tenants/\{id\}$|tenants/\{id\}/members"
    r"|orgs$|orgs/\{id\}(/(audit-events|children|explain|invitations|members|move|projects|restore|roles|teams))?$"
    r"|members/|teams/|roles/|invitations/|projects/\{id\}(/members)?$)"
)
REFERENCE = re.compile(r"#/components/schemas/(\w+)")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def ours(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema cut down to this area's operations and the schema components they use (transitively): the
    shared error responses are config.schema's and stay out."""
    paths = {path: item for path, item in schema["paths"].items() if MINE.match(path)}
    components = schema["components"]["schemas"]
    used: set[str] = set()
    pending = set(REFERENCE.findall(repr(paths)))
    while pending:
        name = pending.pop()
        if name not in used:
            used.add(name)
            pending |= set(REFERENCE.findall(repr(components[name])))
    cut = dict(schema, paths=paths)
    cut["components"] = dict(schema["components"], schemas={name: components[name] for name in used})
    return cut


def test_the_area_has_its_operations(schema):
    operation_ids = {operation["operationId"] for _, _, operation in rules.operations(ours(schema))}
    assert {"listAuditEvents", "acceptInvitation", "moveOrg", "listTenantMembers", "createToken"} <= operation_ids
    assert len(operation_ids) >= 55


@pytest.mark.parametrize(
    "rule",
    [
        rules.test_operation_ids_are_unique_camel_case_and_summaries_present,
        rules.test_request_bodies_are_json_only_but_the_file_upload,
        rules.test_path_parameters_are_typed,
        rules.test_every_field_is_typed,
        rules.test_component_names_read_like_words,
        rules.test_every_collection_is_a_paginated_list,
    ],
    ids=lambda rule: rule.__name__.removeprefix("test_"),
)
def test_the_area_keeps_the_schema_rules(schema, rule):
    rule(ours(schema))


def test_every_reference_to_an_organization_is_an_org_ref_or_an_embedded_org(schema):
    """The rule of test_openapi_contract.py, but an embedded organization may be a component of its own (the sign-up
    answer's ``org`` is the whole Org)."""
    components = schema["components"]["schemas"]
    offenders = []
    for name, component in ours(schema)["components"]["schemas"].items():
        for field, declared in component.get("properties", {}).items():
            if field not in rules.ORG_FIELDS:
                continue
            options = declared.get("allOf", []) + declared.get("oneOf", [])
            references = {declared.get("$ref")} | {option.get("$ref") for option in options}
            embedded = any("properties" in components.get(str(r).rsplit("/", 1)[-1], {}) for r in references - {None})
            if "#/components/schemas/OrgRef" not in references and not embedded:
                offenders.append(f"{name}.{field}: {declared}")
    assert offenders == []
    assert components["OrgSummary"]["properties"]["id"] == {"$ref": "#/components/schemas/OrgRef"}
    assert components["Org"]["properties"]["path"]["items"] == {"$ref": "#/components/schemas/OrgSummary"}


def test_the_area_documents_only_shared_error_bodies(schema):
    shared = {"#/components/schemas/Error", "#/components/schemas/ValidationError", "#/components/schemas/Stale"}
    offenders = []
    for path, method, operation in rules.operations(ours(schema)):
        for status, response in operation["responses"].items():
            if not status.startswith("4") or response.get("$ref", "").startswith("#/components/responses/"):
                continue
            body = response["content"]["application/json"]["schema"]
            if {body.get("$ref")} | {option.get("$ref") for option in body.get("oneOf", [])} - {None} > shared:
                offenders.append(f"{method} {path} {status}")
    assert offenders == []


def test_the_enums_have_names(schema):
    components = schema["components"]["schemas"]
    assert components["Capability"]["enum"][0] == "org.view"
    assert set(components["GrantSource"]["enum"]) == {"user", "team", "project_user", "project_team"}
    assert set(components["InvitationStatus"]["enum"]) == {"pending", "accepted", "revoked", "expired"}
    assert set(components["AccessInheritance"]["enum"]) == {"all", "admins_only", "none"}
    assert set(components["TenantPlan"]["enum"]) == {"free", "paid"}
    assert components["Role"]["properties"]["capabilities"]["items"] == {"$ref": "#/components/schemas/Capability"}
    assert "TokenCreateRequest" in components and "TokenRequestRequest" not in components


def test_the_audit_filters_are_typed_query_parameters(schema):
    operation = schema["paths"]["/api/v1/orgs/{id}/audit-events"]["get"]
    parameters = {p["name"]: p["schema"] for p in operation["parameters"] if p["in"] == "query"}
    assert parameters["since"] == {"type": "string", "format": "date-time"}
    assert parameters["actor"]["type"] == parameters["action"]["type"] == "string"
    assert "400" in operation["responses"]


def test_the_team_member_path_by_username_is_left_out_of_the_schema(schema):
    assert [path for path in schema["paths"] if path.startswith("/api/v1/teams/{id}/members/")] == [
        "/api/v1/teams/{id}/members/{user_id}"
    ]


# -- answers match their schema ----------------------------------------------------------------------------------


def json_schema(value: Any) -> Any:
    """OpenAPI 3.0 → JSON Schema: ``nullable`` becomes a null alternative."""
    if isinstance(value, list):
        return [json_schema(item) for item in value]
    if not isinstance(value, dict):
        return value
    converted = {key: json_schema(item) for key, item in value.items() if key != "nullable"}
    if value.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def conforms(schema: dict[str, Any], component: str, body: Any) -> list[str]:
    root = {"components": {"schemas": json_schema(copy.deepcopy(schema["components"]["schemas"]))}}
    validator = Draft7Validator({"$ref": f"#/components/schemas/{component}", **root})
    return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(body)]


def answer_schema(schema: dict[str, Any], method: str, path: str, status: str = "200") -> str:
    operation = schema["paths"][path][method]
    return operation["responses"][status]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]


def test_the_audit_log_answers_what_its_schema_says(world, people, api_as, schema):
    client = api_as(world.tenant_admin)
    client.patch(f"/api/v1/orgs/{world.emea.pk}", {"description": "Europe"}, format="json")
    client.post(f"/api/v1/orgs/{world.marketing.pk}/projects", {"name": "Blog"}, format="json")
    url = f"/api/v1/orgs/{world.root.pk}/audit-events"
    body = client.get(url, {"page_size": 2}).json()
    assert body["count"] > 2 and len(body["results"]) == 2 and body["next"]
    assert conforms(schema, answer_schema(schema, "get", "/api/v1/orgs/{id}/audit-events"), body) == []
    second = client.get(body["next"]).json()
    assert second["previous"] and {e["id"] for e in second["results"]}.isdisjoint(e["id"] for e in body["results"])
    events = client.get(url, {"page_size": 200}).json()["results"]
    assert any(isinstance(e["changes"].get("description"), list) for e in events)  # [old, new] of an update
    assert conforms(schema, "PaginatedAuditEventList", {**body, "results": events}) == []


@pytest.mark.parametrize("since", ["yesterday", "2026-11-01 noon", "2026-02-30T00:00:00Z"])
def test_a_bad_since_is_a_field_error(world, api_as, since):
    response = api_as(world.tenant_admin).get(f"/api/v1/orgs/{world.root.pk}/audit-events", {"since": since})
    assert response.status_code == 400
    assert response.json() == {"since": ["Use an ISO 8601 date-time, e.g. 2026-11-01T00:00:00Z."]}


def test_the_audit_filters_apply_and_an_empty_one_is_no_filter(world, people, api_as):
    client = api_as(world.tenant_admin)
    url = f"/api/v1/orgs/{world.root.pk}/audit-events"
    everything = client.get(url).json()["count"]
    assert client.get(url, {"since": "", "actor": "", "action": ""}).json()["count"] == everything
    assert client.get(url, {"since": "2999-01-01T00:00:00Z"}).json()["count"] == 0
    assert (
        client.get(url, {"action": "grant."}).json()["count"]
        == AuditEvent.objects.filter(action__startswith="grant.", org__tree_id=world.root.tree_id).count()
    )
    response = client.get(url, {"action": "x" * 65})
    assert response.status_code == 400 and "action" in response.json()


def test_explain_answers_typed_grants(world, people, api_as, schema):
    body = (
        api_as(world.tenant_admin)
        .get(f"/api/v1/orgs/{world.campaigns.pk}/explain", {"user": "integrator-m", "capability": "task.run"})
        .json()
    )
    assert conforms(schema, "Explain", body) == []
    grant = next(g for g in body["grants"] if g["org_name"] == "Marketing")
    assert grant["source"] == "user" and grant["org"] == str(world.marketing.pk) and grant["applies"] is True
    assert "task.run" in grant["capabilities"]


def test_sign_up_answers_a_typed_tenant_and_org(db, api, schema):
    response = api.post(
        "/api/v1/signup",
        {"tenant_name": "Initech", "username": "peter", "email": "peter@initech.example", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert conforms(schema, answer_schema(schema, "post", "/api/v1/signup", "201"), body) == []
    assert body["tenant"]["root_org"] == body["org"]["id"] and body["org"]["parent"] is None


def test_verifying_an_address_answers_what_its_schema_says(world, api, schema):
    code = accounts.email_verification_code(world.member)
    response = api.post("/api/v1/auth/verify-email", {"token": code}, format="json")
    assert response.status_code == 200
    assert answer_schema(schema, "post", "/api/v1/auth/verify-email") == "VerifiedEmail"
    assert conforms(schema, "VerifiedEmail", response.json()) == []


def test_the_detail_answers_match_their_schemas(world, people, api_as, schema):
    client = api_as(world.tenant_admin)
    team = create_team(actor=SYSTEM, org=world.marketing, name="Web")
    add_team_member(actor=SYSTEM, team=team, user=people["guest"])
    role = client.post(
        f"/api/v1/orgs/{world.marketing.pk}/roles", {"name": "Auditor", "capabilities": ["audit.view"]}, format="json"
    ).json()
    grant = client.get(f"/api/v1/orgs/{world.marketing.pk}/members").json()["results"][0]
    for path, component in [
        (f"/api/v1/tenants/{world.acme.pk}", "Tenant"),
        (f"/api/v1/orgs/{world.emea.pk}", "OrgDetail"),
        (f"/api/v1/orgs/{world.root.pk}/children", "PaginatedOrgList"),
        (f"/api/v1/orgs/{world.marketing.pk}/members", "PaginatedMemberList"),
        (f"/api/v1/orgs/{world.marketing.pk}/teams", "PaginatedTeamList"),
        (f"/api/v1/orgs/{world.marketing.pk}/roles", "PaginatedRoleList"),
        (f"/api/v1/projects/{world.website.pk}", "Project"),
        (f"/api/v1/projects/{world.website.pk}/members", "PaginatedMemberList"),
        (f"/api/v1/tenants/{world.acme.pk}/members", "PaginatedTenantMemberList"),
        (f"/api/v1/tenants/{world.acme.pk}/members/{people['guest'].pk}", "TenantMember"),
        (f"/api/v1/members/{grant['id']}", "Member"),
        (f"/api/v1/teams/{team.pk}", "Team"),
        (f"/api/v1/roles/{role['id']}", "Role"),
        ("/api/v1/me", "Me"),
        ("/api/v1/auth/tokens", "PaginatedAccessTokenList"),
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert conforms(schema, component, response.json()) == [], path


# -- paths: UUIDs, malformed ids, second pages ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orgs/not-a-uuid",
        "/api/v1/orgs/not-a-uuid/members",
        "/api/v1/orgs/12/audit-events",
        "/api/v1/tenants/acme",
        "/api/v1/tenants/{tenant}/members/alice",
        "/api/v1/projects/website/members",
        "/api/v1/members/1",
        "/api/v1/teams/web",
        "/api/v1/roles/auditor",
    ],
)
def test_a_malformed_id_answers_the_json_404(world, api_as, path):
    response = api_as(world.tenant_admin).get(path.format(tenant=world.acme.pk))
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_a_team_member_is_removed_by_id_and_still_by_username(world, people, api_as):
    client = api_as(people["admin"])
    team = create_team(actor=SYSTEM, org=world.marketing, name="Web")
    for user in (people["guest"], people["newcomer"]):
        add_team_member(actor=SYSTEM, team=team, user=user)
    assert client.delete(f"/api/v1/teams/{team.pk}/members/{people['guest'].pk}").status_code == 204
    assert client.delete(f"/api/v1/teams/{team.pk}/members/newcomer").status_code == 204
    assert not team.group.user_set.exists()


def test_the_lists_page(world, people, api_as):
    client = api_as(world.tenant_admin)
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        client.post(f"/api/v1/orgs/{world.marketing.pk}/invitations", {"email": email, "role": "guest"}, format="json")
    for path in (
        f"/api/v1/orgs/{world.marketing.pk}/invitations",
        f"/api/v1/orgs/{world.marketing.pk}/members",
        f"/api/v1/orgs/{world.marketing.pk}/roles",
        f"/api/v1/orgs/{world.root.pk}/children",
        f"/api/v1/tenants/{world.acme.pk}/members",
    ):
        first = client.get(path, {"page_size": 1}).json()
        assert first["count"] >= 2 and len(first["results"]) == 1 and first["previous"] is None, path
        second = client.get(path, {"page_size": 1, "page": 2}).json()
        assert second["results"] != first["results"] and second["previous"], path
        assert client.get(path, {"page_size": 201}).json()["results"], path  # capped at 200, not refused


def test_the_invitation_actions_keep_their_statuses(world, api_as, api, schema):
    admin = api_as(world.tenant_admin)
    created = admin.post(
        f"/api/v1/orgs/{world.logistics.pk}/invitations", {"email": "carol@example.com", "role": "guest"}, format="json"
    )
    assert created.status_code == 201
    assert conforms(schema, "InvitationCreated", created.json()) == []
    token = created.json()["accept_url"].split("#", 1)[1]
    accepted = api.post(
        f"/api/v1/invitations/{token}/accept", {"username": "carol", "password": PASSWORD}, format="json"
    )
    assert accepted.status_code == 200 and conforms(schema, "Member", accepted.json()) == []
    other = admin.post(
        f"/api/v1/orgs/{world.logistics.pk}/invitations", {"email": "dave@example.com", "role": "guest"}, format="json"
    ).json()
    revoked = admin.delete(f"/api/v1/invitations/{other['id']}")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert conforms(schema, "Invitation", revoked.json()) == []
    statuses = {i.email: i.status for i in Invitation.objects.all()}
    assert statuses == {"carol@example.com": "accepted", "dave@example.com": "revoked"}
    assert api.post("/api/v1/invitations/inv_nope/accept", {}, format="json").json()["code"] == "not_found"
