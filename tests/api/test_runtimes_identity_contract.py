"""Issue #15 for runtimes, the agent protocol, single sign-on, domains and two-factor devices: what the schema says
is what the server answers. Ids in paths are UUIDs (a malformed one is the API's JSON 404), lists are paginated
(a second page, a page past the last), and real answers (and the request values the server accepts) validate
against the components the schema publishes for them, every field documented."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import jsonschema
import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from config.actors import SYSTEM
from identity.models import ExternalIdentity
from resources import services
from runtimes.models import Runtime
from runtimes.tokens import issue_enrollment_token
from tests.factories import UserFactory, add_to_tenant
from tests.identity.sso_helpers import config, verified_domain
from tests.runtimes.queue_helpers import BASE, enroll, make_runtime, make_task, queue_run
from tests.twofactor.helpers import code_of, enrolled

NOT_FOUND = {"detail": "Not found.", "code": "not_found"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def json_schema(node: Any) -> Any:
    """The schema's objects closed (a key the answer has and the schema does not document is a failure too); an
    OpenAPI 3.0 ``nullable`` (none should be left under 3.1) as a null alternative."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: json_schema(value) for key, value in node.items()}
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


def errors(schema: dict[str, Any], component: str, instance: Any) -> list[str]:
    document = {
        "$ref": f"#/components/schemas/{component}",
        "components": {"schemas": json_schema(copy.deepcopy(schema["components"]["schemas"]))},
    }
    validator = jsonschema.Draft202012Validator(document)
    return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(instance)]


def conforms(schema: dict[str, Any], component: str, instance: Any) -> None:
    assert errors(schema, component, instance) == []


def response_component(schema: dict[str, Any], path: str, method: str, status: str) -> str:
    response = schema["paths"][f"/api/v1{path}"][method]["responses"][status]
    if "$ref" in response:
        response = schema["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    return response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]


# -- ids in paths ----------------------------------------------------------------------------------------------------

USER_PATHS = [
    ("get", "/orgs/{id}/runtimes"),
    ("post", "/orgs/{id}/runtimes"),
    ("get", "/runtimes/{id}"),
    ("patch", "/runtimes/{id}"),
    ("delete", "/runtimes/{id}"),
    ("post", "/runtimes/{id}/enrollment-tokens"),
    ("post", "/runtimes/{id}/revoke"),
    ("get", "/runtimes/{id}/instances"),
    ("get", "/tenants/{id}/sso"),
    ("put", "/tenants/{id}/sso"),
    ("delete", "/tenants/{id}/sso"),
    ("post", "/tenants/{id}/sso/recovery-codes"),
    ("get", "/tenants/{id}/sso/unlinked-members"),
    ("get", "/tenants/{id}/domains"),
    ("post", "/tenants/{id}/domains"),
    ("delete", "/domains/{id}"),
    ("post", "/domains/{id}/verify"),
    ("get", "/me/otp-devices/{id}"),
    ("delete", "/me/otp-devices/{id}"),
    ("post", "/me/otp-devices/{id}/confirm"),
]
AGENT_PATHS = ["runs/{id}/start", "runs/{id}/logs", "runs/{id}/finish", "runs/{id}/identity-token"]


def test_every_id_of_these_paths_is_a_uuid_in_the_schema(schema):
    for method, path in USER_PATHS + [("post", f"/runtime-agent/{path}") for path in AGENT_PATHS]:
        parameters = schema["paths"][f"/api/v1{path}"][method]["parameters"]
        (declared,) = [p["schema"] for p in parameters if p["in"] == "path"]
        assert declared == {"type": "string", "format": "uuid"}, (method, path)


@pytest.mark.parametrize(("method", "path"), USER_PATHS)
def test_a_malformed_id_is_the_apis_json_404(world, api_as, method, path):
    answer = getattr(api_as(world.superuser), method)(f"/api/v1{path.format(id='not-a-uuid')}", {}, format="json")
    assert answer.status_code == 404 and answer.json() == NOT_FOUND


@pytest.mark.parametrize("path", AGENT_PATHS)
def test_a_malformed_run_id_is_the_apis_json_404_for_an_agent_too(world, path):
    agent = enroll(make_runtime(world.marketing))
    answer = agent.post(path.format(id="run-1"), {"lease": "x"})
    assert answer.status_code == 404 and answer.json() == NOT_FOUND


def test_a_well_formed_id_of_nothing_is_still_the_views_404(world, api_as):
    client = api_as(world.superuser)
    for path in ("/runtimes/{id}", "/tenants/{id}/sso", "/me/otp-devices/{id}", "/tenants/{id}/domains"):
        answer = client.get(f"/api/v1{path.format(id=uuid.uuid4())}")
        assert answer.status_code == 404 and answer.json()["code"] == "not_found", path


def test_a_uuid_id_still_reaches_the_object(world, api_as):
    runtime = make_runtime(world.marketing, "edge")
    answer = api_as(world.tenant_admin).get(f"/api/v1/runtimes/{runtime.pk}")
    assert answer.status_code == 200 and answer.json()["id"] == str(runtime.pk)


# -- paginated lists -------------------------------------------------------------------------------------------------


def second_page(client: Any, path: str, count: int) -> dict[str, Any]:
    answer = client.get(path, {"page": 2, "page_size": 2})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["count"] == count and body["previous"] and len(body["results"]) == min(2, count - 2)
    past = client.get(path, {"page": 9, "page_size": 2})
    assert past.status_code == 404 and past.json()["code"] == "not_found"
    return body


def test_a_runtimes_instances_come_in_pages(world, api_as, schema):
    runtime = make_runtime(world.marketing, "edge")
    for number in range(3):
        enroll(runtime, f"host-{number}")
    path = f"/api/v1/runtimes/{runtime.pk}/instances"
    body = second_page(api_as(world.tenant_admin), path, 3)
    assert body["next"] is None
    conforms(schema, response_component(schema, "/runtimes/{id}/instances", "get", "200"), body)


def test_an_orgs_runtimes_come_in_pages_with_the_global_ones(world, api_as, schema):
    for name in ("edge-1", "edge-2", "edge-3"):
        make_runtime(world.marketing, name)
    offered = make_runtime(None, "cloud-eu", all_tenants=True)
    client = api_as(world.tenant_admin)
    path = f"/api/v1/orgs/{world.marketing.pk}/runtimes"
    count = client.get(path).json()["count"]
    assert count >= 4
    body = second_page(client, path, count)
    conforms(schema, "PaginatedRuntimeList", body)
    everything = client.get(path, {"page_size": 200}).json()["results"]
    rows = {row["name"]: row for row in everything}
    assert rows["cloud-eu"]["org"] is None and rows["cloud-eu"]["id"] == str(offered.pk)
    assert rows["edge-1"]["org"] == {"id": str(world.marketing.pk), "name": world.marketing.name}


def test_a_tenants_domains_and_unlinked_members_come_in_pages(world, api_as, schema):
    client = api_as(world.tenant_admin)
    for name in ("a.test", "b.test", "c.test"):
        assert (
            client.post(f"/api/v1/tenants/{world.acme.pk}/domains", {"domain": name}, format="json").status_code == 201
        )
    body = second_page(client, f"/api/v1/tenants/{world.acme.pk}/domains", 3)
    conforms(schema, response_component(schema, "/tenants/{id}/domains", "get", "200"), body)

    verified_domain(world, "acme.test")
    for name in ("paged-ann", "paged-ben", "paged-cid"):
        add_to_tenant(UserFactory(username=name, email=f"{name}@acme.test"), world.acme)
    linked = UserFactory(username="linked", email="linked@acme.test")
    add_to_tenant(linked, world.acme)
    ExternalIdentity.objects.create(user=linked, tenant=world.acme, issuer="https://idp.acme.test", subject="1")
    path = f"/api/v1/tenants/{world.acme.pk}/sso/unlinked-members"
    count = client.get(path).json()["count"]
    assert count >= 3
    body = second_page(client, path, count)
    conforms(schema, response_component(schema, "/tenants/{id}/sso/unlinked-members", "get", "200"), body)
    assert "linked" not in {row["username"] for row in client.get(path, {"page_size": 200}).json()["results"]}


def test_ones_otp_devices_come_in_pages(world, api_as, schema):
    user = world.member
    for name in ("phone", "tablet", "watch"):
        enrolled(user, name)
    body = second_page(api_as(user), "/api/v1/me/otp-devices", 3)
    conforms(schema, response_component(schema, "/me/otp-devices", "get", "200"), body)


# -- typed values ----------------------------------------------------------------------------------------------------


def test_a_global_runtimes_tenants_are_all_or_a_list_of_ids_as_the_schema_says(world, api_as, schema):
    client = api_as(world.superuser)
    for tenants in ("all", [str(world.acme.pk)], []):
        body = {"name": f"cloud-{len(str(tenants))}", "tenants": tenants}
        conforms(schema, "GlobalRuntimeWriteRequest", body)
        answer = client.post("/api/v1/runtimes", body, format="json")
        assert answer.status_code == 201, answer.content
        conforms(schema, response_component(schema, "/runtimes", "post", "201"), answer.json())
        assert answer.json()["org"] is None
        runtime = Runtime.objects.get(pk=answer.json()["id"])
        assert runtime.all_tenants is (tenants == "all")
        patch = {"tenants": [str(world.globex.pk)]}
        conforms(schema, "PatchedRuntimeUpdateRequest", patch)
        assert client.patch(f"/api/v1/runtimes/{runtime.pk}", patch, format="json").status_code == 200
    for refused in ("some", [1], {"all": True}):
        assert errors(schema, "GlobalRuntimeWriteRequest", {"name": "x", "tenants": refused})
        answer = client.post("/api/v1/runtimes", {"name": "x", "tenants": refused}, format="json")
        assert answer.status_code == 400 and "tenants" in answer.json()
        conforms(schema, "ValidationError", answer.json())


def test_a_local_runtime_as_created_and_read_matches_its_schema(world, api_as, schema):
    client = api_as(world.tenant_admin)
    created = client.post(f"/api/v1/orgs/{world.marketing.pk}/runtimes", {"name": "edge"}, format="json")
    assert created.status_code == 201
    conforms(schema, response_component(schema, "/orgs/{id}/runtimes", "post", "201"), created.json())
    assert created.json()["org"] == {"id": str(world.marketing.pk), "name": world.marketing.name}
    path = f"/api/v1/runtimes/{created.json()['id']}"
    conforms(schema, response_component(schema, "/runtimes/{id}", "get", "200"), client.get(path).json())
    token = client.post(f"{path}/enrollment-tokens")
    conforms(schema, response_component(schema, "/runtimes/{id}/enrollment-tokens", "post", "201"), token.json())
    revoked = client.post(f"{path}/revoke")
    conforms(schema, response_component(schema, "/runtimes/{id}/revoke", "post", "200"), revoked.json())


def test_the_agent_protocols_answers_match_their_schema(world, api, schema):
    services.create_credential(
        actor=SYSTEM, org=world.marketing, name="CRM", kind="http_basic", fields={"username": "svc"},
        secret={"password": "s3cret"},
    )  # fmt: skip
    services.create_lookup_table(
        actor=SYSTEM, org=world.marketing, name="Countries", rows=[{"key": "fr", "value": "France"}]
    )
    services.create_env_var(actor=SYSTEM, org=world.marketing, key="REGION", value="eu-west")
    steps = [
        {"type": "http", "method": "GET", "url": "https://api.example.com/{{ env.REGION }}", "credential": "CRM",
         "into": "resp"},
        {"type": "lookup", "table": "Countries", "key": "fr", "into": "country"},
        {"type": "log", "message": "done", "name": "last"},
    ]  # fmt: skip
    runtime = make_runtime(world.marketing, "edge")
    _, raw = issue_enrollment_token(runtime, actor=SYSTEM)
    enroll_body = {"enrollment_token": raw, "instance": {"id": str(uuid.uuid4()), "hostname": "box", "version": "1"}}
    conforms(schema, "EnrollRequest", enroll_body)
    answer = api.post(f"{BASE}enroll", enroll_body, format="json")
    assert answer.status_code == 201
    conforms(schema, response_component(schema, "/runtime-agent/enroll", "post", "201"), answer.json())
    assert answer.json()["runtime"]["kind"] == "local"
    # The enroll 400s are the shared error schemas: an Error with its code, or field errors.
    used = api.post(f"{BASE}enroll", enroll_body, format="json")
    assert used.status_code == 400 and used.json()["code"] == "enrollment_token_invalid"
    conforms(schema, "Error", used.json())
    malformed = api.post(f"{BASE}enroll", {"instance": {"id": "x"}}, format="json")
    assert malformed.status_code == 400
    conforms(schema, "ValidationError", malformed.json())

    agent = enroll(runtime, "box-2")
    run = queue_run(make_task(world.website, steps=steps), runtime)
    claimed = agent.claim()
    assert claimed.status_code == 200
    conforms(schema, response_component(schema, "/runtime-agent/claim", "post", "200"), claimed.json())
    (item,) = claimed.json()["runs"]
    assert item["status"] == "claimed" and [step["type"] for step in item["steps"]] == ["http", "lookup", "log"]
    assert item["context"]["credentials"]["CRM"]["secret"] == {"password": "s3cret"}
    assert item["context"]["org"] == {"id": str(world.marketing.pk), "name": world.marketing.name}

    at = timezone.now().isoformat()
    gap = agent.post(f"runs/{run.pk}/logs", {"lease": item["lease"], "lines": [{"seq": 5, "at": at, "message": "x"}]})
    assert gap.status_code == 409 and gap.json()["code"] == "seq_gap" and gap.json()["next_seq"] == 1
    conforms(schema, response_component(schema, "/runtime-agent/runs/{id}/logs", "post", "409"), gap.json())
    lost = agent.post(f"runs/{run.pk}/logs", {"lease": "not-the-lease", "lines": []})
    assert lost.status_code == 409 and lost.json()["code"] == "lease_lost"
    conforms(schema, "SeqGap", lost.json())

    finish = {
        "lease": item["lease"],
        "status": "succeeded",
        "steps": [{"index": 0, "status": "succeeded", "ms": 12}, {"index": 1, "status": "skipped", "ms": 0}],
        "lines": [{"seq": 1, "at": at, "level": "info", "message": "ok"}],
    }
    conforms(schema, "FinishRequest", finish)
    finished = agent.post(f"runs/{run.pk}/finish", finish)
    assert finished.status_code == 200, finished.content
    conforms(schema, response_component(schema, "/runtime-agent/runs/{id}/finish", "post", "200"), finished.json())
    assert finished.json()["step_results"][1] == {"index": 1, "status": "skipped", "ms": 0}
    assert errors(schema, "FinishRequest", {**finish, "status": "lost"})  # not an agent's to report
    refused = agent.post(f"runs/{run.pk}/finish", {**finish, "status": "lost"})
    assert refused.status_code == 400 and "status" in refused.json()


def test_the_sso_domain_and_otp_answers_match_their_schema(world, api_as, schema):
    client = api_as(world.tenant_admin)
    path = f"/api/v1/tenants/{world.acme.pk}/sso"
    conforms(schema, response_component(schema, "/tenants/{id}/sso", "get", "200"), client.get(path).json())
    body = config(
        default_org=str(world.marketing.pk),
        group_roles=[{"group": "eng", "role": "integrator", "org": str(world.marketing.pk)}, {"group": "ops",
                     "role": "guest", "org": None}],
    )  # fmt: skip
    conforms(schema, "SSOWriteRequest", body)
    answer = client.put(path, body, format="json")
    assert answer.status_code == 200, answer.content
    conforms(schema, response_component(schema, "/tenants/{id}/sso", "put", "200"), answer.json())
    assert answer.json()["protocol"] == "oidc" and answer.json()["default_org"] == str(world.marketing.pk)
    codes = client.post(f"{path}/recovery-codes")
    conforms(schema, response_component(schema, "/tenants/{id}/sso/recovery-codes", "post", "201"), codes.json())

    claimed = client.post(f"/api/v1/tenants/{world.acme.pk}/domains", {"domain": "acme.test"}, format="json")
    conforms(schema, response_component(schema, "/tenants/{id}/domains", "post", "201"), claimed.json())
    verified = api_as(world.superuser).post(f"/api/v1/domains/{claimed.json()['id']}/verify")
    assert verified.status_code == 200 and verified.json()["verified"] is True
    conforms(schema, response_component(schema, "/domains/{id}/verify", "post", "200"), verified.json())
    taken = api_as(world.other_admin).post(
        f"/api/v1/tenants/{world.globex.pk}/domains", {"domain": "acme.test"}, format="json"
    )
    if taken.status_code == 201:  # claiming is allowed; verifying it is what another tenant cannot do
        taken = api_as(world.superuser).post(f"/api/v1/domains/{taken.json()['id']}/verify")
    assert taken.status_code == 409 and taken.json()["code"] == "domain_taken"
    conforms(schema, "Error", taken.json())

    me = api_as(world.member)
    started = me.post("/api/v1/me/otp-devices", {"name": "phone"}, format="json")
    assert started.status_code == 201
    conforms(schema, response_component(schema, "/me/otp-devices", "post", "201"), started.json())
    device = me.get(f"/api/v1/me/otp-devices/{started.json()['id']}")
    conforms(schema, response_component(schema, "/me/otp-devices/{id}", "get", "200"), device.json())


def test_removing_a_confirmed_device_documents_the_code_it_reads_from_the_body(world, api_as, schema):
    operation = schema["paths"]["/api/v1/me/otp-devices/{id}"]["delete"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/OtpRemoveRequest"} and operation["requestBody"]["required"] is False
    device, _ = enrolled(world.member)
    client = api_as(world.member)
    path = f"/api/v1/me/otp-devices/{device.canopy_seed.public_id}"
    refused = client.delete(path, {}, format="json")
    assert refused.status_code == 400
    assert list(refused.json()) == ["code"]  # a field error on the body's code
    conforms(schema, "ValidationError", refused.json())
    request = {"code": code_of(device)}
    conforms(schema, "OtpRemoveRequest", request)
    assert client.delete(path, request, format="json").status_code == 204
