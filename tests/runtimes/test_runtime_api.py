"""The runtimes API (docs/API.md "Runtimes"): shapes, the role table over HTTP (the attacker's request, then the
victim's state read back), ETag/If-Match, the one-time enrollment token, revoke, instances, global runtimes, the task
runtime field and run placement, and query budgets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from access.models import hash_token
from config.actors import SYSTEM
from resources import services as resource_services
from resources.models import Run, Task
from runtimes import services, tokens
from runtimes.models import AgentToken, EnrollmentToken, Runtime, RuntimeInstance

pytestmark = pytest.mark.django_db

FIELDS = {
    "id", "name", "description", "kind", "org", "source", "inherited", "locked", "overrides", "labels", "region",
    "sovereign", "paused", "allow_private_network", "is_platform_default", "status", "last_seen", "version",
    "instances", "running", "created_at", "updated_at",
}  # fmt: skip


def local(org: Any, name: str = "edge", **fields: Any) -> Runtime:
    return services.create_local_runtime(actor=SYSTEM, org=org, name=name, **fields).runtime


def test_the_org_list_is_the_effective_list_with_source_and_status(world, people, api_as) -> None:
    local(world.root, "corporate")
    edge = local(world.marketing, "edge", labels=["eu"], region="eu-west")
    Runtime.objects.filter(pk=edge.pk).update(last_seen=timezone.now(), agent_version="1.0.0")
    RuntimeInstance.objects.create(runtime=edge, hostname="box", last_heartbeat=timezone.now())
    response = api_as(people["guest"]).get(f"/api/v1/orgs/{world.marketing.pk}/runtimes")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    rows = {row["name"]: row for row in body["results"]}
    assert set(rows["edge"]) == FIELDS
    assert rows["edge"] | {"id": None, "created_at": None, "updated_at": None, "last_seen": None} == {
        "id": None, "name": "edge", "description": "", "kind": "local",
        "org": {"id": str(world.marketing.pk), "name": "Marketing"}, "source": "here", "inherited": False,
        "locked": False, "overrides": None, "labels": ["eu"], "region": "eu-west", "sovereign": False,
        "paused": False, "allow_private_network": False, "is_platform_default": False, "status": "online",
        "last_seen": None, "version": "1.0.0", "instances": 1, "running": 0, "created_at": None, "updated_at": None,
    }  # fmt: skip
    assert (rows["corporate"]["source"], rows["corporate"]["inherited"]) == ("inherited", True)
    assert (rows["platform"]["source"], rows["platform"]["org"], rows["platform"]["kind"]) == (
        "platform", None, "global",
    )  # fmt: skip
    assert rows["platform"]["status"] == "never_connected"


@pytest.mark.parametrize("who", ["newcomer", "other tenant admin", "outsider"])
def test_who_has_no_role_there_gets_404(world, people, api_as, who: str) -> None:
    edge = local(world.marketing)
    user = {"other tenant admin": world.other_admin, "outsider": world.outsider}.get(who) or people[who]
    client = api_as(user)
    assert client.get(f"/api/v1/orgs/{world.marketing.pk}/runtimes").status_code == 404
    assert client.post(f"/api/v1/orgs/{world.marketing.pk}/runtimes", {"name": "x"}, format="json").status_code == 404
    for method, path in (
        ("get", ""), ("patch", ""), ("delete", ""), ("post", "/enrollment-tokens"), ("post", "/revoke"),
        ("get", "/instances"),
    ):  # fmt: skip
        response = getattr(client, method)(f"/api/v1/runtimes/{edge.pk}{path}", {"paused": True}, format="json")
        assert response.status_code == 404, (method, path)
    edge.refresh_from_db()
    assert (edge.paused, edge.version, Runtime.objects.filter(name="x").exists()) == (False, 1, False)
    assert EnrollmentToken.objects.filter(runtime=edge).count() == 1


@pytest.mark.parametrize("role", ["integrator", "guest"])
def test_integrators_and_guests_view_but_do_not_manage(world, people, api_as, role: str) -> None:
    edge = local(world.marketing)
    agent, _ = tokens.issue_agent_token(RuntimeInstance.objects.create(runtime=edge, hostname="h"))
    client = api_as(people[role])
    assert client.get(f"/api/v1/runtimes/{edge.pk}").status_code == 200
    assert client.get(f"/api/v1/runtimes/{edge.pk}/instances").status_code == 200
    refused = [
        client.post(f"/api/v1/orgs/{world.marketing.pk}/runtimes", {"name": "mine"}, format="json"),
        client.patch(f"/api/v1/runtimes/{edge.pk}", {"paused": True}, format="json"),
        client.delete(f"/api/v1/runtimes/{edge.pk}"),
        client.post(f"/api/v1/runtimes/{edge.pk}/enrollment-tokens"),
        client.post(f"/api/v1/runtimes/{edge.pk}/revoke"),
        client.post("/api/v1/runtimes", {"name": "global-mine", "tenants": "all"}, format="json"),
    ]
    assert [r.status_code for r in refused] == [403] * 6
    assert all(r.json()["code"] in ("permission_denied", "superuser_only") for r in refused)
    edge.refresh_from_db()
    assert not edge.paused and Runtime.objects.count() == 2  # edge and the platform's
    assert EnrollmentToken.objects.filter(runtime=edge).count() == 1
    assert AgentToken.objects.get(pk=agent.pk).revoked_at is None


def test_an_admin_registers_a_runtime_and_sees_the_token_once(world, people, api_as) -> None:
    client = api_as(people["admin"])
    response = client.post(
        f"/api/v1/orgs/{world.marketing.pk}/runtimes",
        {"name": "edge", "labels": ["eu", "gpu"], "sovereign": True, "region": "eu-west"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    raw = body["enrollment_token"]
    assert raw.startswith("cne_") and raw in body["command"] and body["enrollment_token_expires_at"]
    assert (body["kind"], body["sovereign"], body["labels"], body["status"]) == ("local", True, ["eu", "gpu"],
                                                                                   "never_connected")  # fmt: skip
    runtime = Runtime.objects.get(pk=body["id"])
    assert EnrollmentToken.objects.get(runtime=runtime).token_hash == hash_token(raw)
    detail = client.get(f"/api/v1/runtimes/{runtime.pk}")
    listing = client.get(f"/api/v1/orgs/{world.marketing.pk}/runtimes")
    assert raw not in detail.content.decode() and raw not in listing.content.decode()
    assert "enrollment_token" not in detail.json()
    again = client.post(f"/api/v1/runtimes/{runtime.pk}/enrollment-tokens")
    assert again.status_code == 201 and set(again.json()) == {"enrollment_token", "expires_at", "command"}
    assert again.json()["enrollment_token"] != raw


def test_invalid_bodies_are_field_errors(world, people, api_as) -> None:
    client = api_as(people["admin"])
    url = f"/api/v1/orgs/{world.marketing.pk}/runtimes"
    assert client.post(url, {"name": ""}, format="json").status_code == 400
    bad = client.post(url, {"name": "ok", "labels": ["not a label"]}, format="json")
    assert bad.status_code == 400 and "labels" in bad.json()
    assert client.post(url, {"name": "ok", "allow_private_network": True}, format="json").status_code == 403
    local(world.marketing, "edge")
    taken = client.post(url, {"name": "EDGE"}, format="json")
    assert taken.status_code == 409 and taken.json()["code"] == "name_taken"
    assert Runtime.objects.filter(org=world.marketing).count() == 1


def test_detail_etag_and_if_match(world, people, api_as) -> None:
    edge = local(world.marketing)
    client = api_as(people["admin"])
    response = client.get(f"/api/v1/runtimes/{edge.pk}")
    assert response["ETag"] == '"1"'
    changed = client.patch(f"/api/v1/runtimes/{edge.pk}", {"paused": True}, format="json", HTTP_IF_MATCH='"1"')
    assert changed.status_code == 200 and changed.json()["paused"] is True and changed.json()["status"] == "paused"
    assert changed["ETag"] == '"2"'
    stale = client.patch(f"/api/v1/runtimes/{edge.pk}", {"name": "renamed"}, format="json", HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412 and stale.json()["code"] == "stale" and stale["ETag"] == '"2"'
    assert client.delete(f"/api/v1/runtimes/{edge.pk}", HTTP_IF_MATCH='"1"').status_code == 412
    edge.refresh_from_db()
    assert edge.name == "edge"
    assert client.delete(f"/api/v1/runtimes/{edge.pk}", HTTP_IF_MATCH='"2"').status_code == 204
    assert not Runtime.objects.filter(pk=edge.pk).exists()


def test_delete_with_active_runs_is_409(world, people, api_as) -> None:
    edge = local(world.marketing)
    resource_services.run_task(actor=SYSTEM, task=Task.objects.create(project=world.website, name="t", runtime=edge))
    response = api_as(people["admin"]).delete(f"/api/v1/runtimes/{edge.pk}")
    assert response.status_code == 409 and response.json()["code"] == "runtime_busy"
    assert Runtime.objects.filter(pk=edge.pk).exists()


def test_revoke_and_instances(world, people, api_as) -> None:
    edge = local(world.marketing)
    now = timezone.now()
    fresh = RuntimeInstance.objects.create(runtime=edge, hostname="fresh", version="1.1", last_heartbeat=now)
    old = RuntimeInstance.objects.create(runtime=edge, hostname="old", last_heartbeat=now - timedelta(hours=1))
    issued = [tokens.issue_agent_token(i)[0] for i in (fresh, old)]
    task = Task.objects.create(project=world.website, name="t", runtime=edge)
    Run.objects.create(task=task, runtime=edge, instance=fresh, status=Run.Status.RUNNING)
    client = api_as(people["admin"])
    instances = client.get(f"/api/v1/runtimes/{edge.pk}/instances").json()["results"]
    assert [(i["hostname"], i["online"], i["running"]) for i in instances] == [("fresh", True, 1), ("old", False, 0)]
    assert "token" not in str(instances)
    response = client.post(f"/api/v1/runtimes/{edge.pk}/revoke")
    assert response.status_code == 200 and response.json() == {"revoked": 2}
    assert all(AgentToken.objects.get(pk=t.pk).revoked_at is not None for t in issued)


def test_global_runtimes_are_created_by_superusers_and_seen_where_offered(world, people, api_as) -> None:
    refused = api_as(world.tenant_admin).post("/api/v1/runtimes", {"name": "g", "tenants": "all"}, format="json")
    assert refused.status_code == 403 and not Runtime.objects.filter(name="g").exists()
    response = api_as(world.superuser).post(
        "/api/v1/runtimes", {"name": "acme-eu", "kind": "global", "tenants": [str(world.acme.pk)]}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["kind"] == "global" and body["org"] is None and body["enrollment_token"].startswith("cne_")
    runtime_id = body["id"]
    assert api_as(people["guest"]).get(f"/api/v1/runtimes/{runtime_id}").status_code == 200
    listed = api_as(people["guest"]).get(f"/api/v1/orgs/{world.campaigns.pk}/runtimes").json()["results"]
    assert "acme-eu" in {row["name"] for row in listed}
    assert api_as(world.other_admin).get(f"/api/v1/runtimes/{runtime_id}").status_code == 404
    patched = api_as(world.tenant_admin).patch(f"/api/v1/runtimes/{runtime_id}", {"paused": True}, format="json")
    assert patched.status_code == 403
    assert Runtime.objects.get(pk=runtime_id).paused is False
    bad = api_as(world.superuser).post("/api/v1/runtimes", {"name": "x", "tenants": ["nope"]}, format="json")
    assert bad.status_code == 400 and "tenants" in bad.json()
    offer = api_as(world.superuser).patch(
        f"/api/v1/runtimes/{runtime_id}", {"tenants": "all"}, format="json"
    )  # fmt: skip
    assert offer.status_code == 200 and offer["ETag"] == '"2"'
    assert api_as(world.other_admin).get(f"/api/v1/runtimes/{runtime_id}").status_code == 200


def test_the_task_api_takes_a_runtime_and_run_answers_409_when_it_cannot_be_placed(world, people, api_as) -> None:
    edge = local(world.marketing)
    other = local(world.globex_root, "globex-box")
    client = api_as(people["admin"])
    url = f"/api/v1/projects/{world.website.pk}/tasks"
    hidden = client.post(url, {"name": "t", "runtime": str(other.pk)}, format="json")
    assert hidden.status_code == 400 and hidden.json()["runtime"] == ["No such runtime."]
    created = client.post(url, {"name": "t", "runtime": str(edge.pk), "retry_on_lost": True}, format="json")
    assert created.status_code == 201, created.json()
    assert (created.json()["runtime"], created.json()["retry_on_lost"]) == (str(edge.pk), True)
    task_id = created.json()["id"]
    resource_services.set_setting(actor=SYSTEM, org=world.root, key="allowed_runtimes", value=["platform"], locked=True)
    outside = client.patch(f"/api/v1/tasks/{task_id}", {"runtime": str(edge.pk), "name": "u"}, format="json")
    assert outside.status_code == 200  # unchanged runtime: the edit goes through, the run is refused below
    refused = client.post(f"/api/v1/tasks/{task_id}/run")
    assert refused.status_code == 409 and refused.json()["code"] == "placement"
    assert not Run.objects.filter(task_id=task_id).exists()
    back_to_default = client.patch(f"/api/v1/tasks/{task_id}", {"runtime": None}, format="json")
    assert back_to_default.status_code == 200 and back_to_default.json()["runtime"] is None
    run = client.post(f"/api/v1/tasks/{task_id}/run")
    assert run.status_code == 201
    assert Run.objects.get(pk=run.json()["id"]).runtime_name == "platform"


def test_query_budgets_of_the_list_and_the_detail(world, people, api_as, django_assert_max_num_queries) -> None:
    client = api_as(people["guest"])
    task = Task.objects.create(project=world.website, name="t")
    for i in range(3):
        runtime = local(world.marketing, f"r{i}")
        RuntimeInstance.objects.create(runtime=runtime, hostname=f"h{i}", last_heartbeat=timezone.now())
        Run.objects.create(task=task, runtime=runtime, status=Run.Status.RUNNING)
    client.get(f"/api/v1/orgs/{world.marketing.pk}/runtimes")  # warm: the token's and the user's rows
    with django_assert_max_num_queries(12) as few:
        client.get(f"/api/v1/orgs/{world.marketing.pk}/runtimes")
    for i in range(3, 30):
        runtime = local([world.root, world.marketing][i % 2], f"r{i}")
        RuntimeInstance.objects.create(runtime=runtime, hostname=f"h{i}", last_heartbeat=timezone.now())
        Run.objects.create(task=task, runtime=runtime, status=Run.Status.RUNNING)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(f"/api/v1/orgs/{world.marketing.pk}/runtimes?page_size=100")
    assert response.json()["count"] == 31
    with django_assert_max_num_queries(10):
        assert client.get(f"/api/v1/runtimes/{runtime.pk}").status_code == 200


def test_every_runtime_endpoint_is_in_the_schema(api_as, world) -> None:
    schema = api_as(world.superuser).get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/orgs/{id}/runtimes", "/api/v1/runtimes", "/api/v1/runtimes/{id}",
        "/api/v1/runtimes/{id}/enrollment-tokens", "/api/v1/runtimes/{id}/revoke", "/api/v1/runtimes/{id}/instances",
    ):  # fmt: skip
        assert path in paths, path
    assert {"get", "patch", "delete"} <= set(paths["/api/v1/runtimes/{id}"])


def test_the_hidden_api_hides_the_platform_runtime_for_a_subtree(world, people, api_as) -> None:
    """POST /orgs/{id}/hidden with type "runtime" hides an offered global runtime below (docs/API.md): the list
    no longer shows it there, it still shows above, and a Guest may not hide it."""
    admin, guest = api_as(people["admin"]), api_as(people["guest"])
    url = f"/api/v1/orgs/{world.emea.pk}/hidden"
    refused = guest.post(url, {"type": "runtime", "name": "platform"}, format="json")
    assert refused.status_code == 403
    created = admin.post(url, {"type": "runtime", "name": "platform"}, format="json")
    assert created.status_code == 201, created.content
    below = admin.get(f"/api/v1/orgs/{world.campaigns.pk}/runtimes").json()["results"]
    above = admin.get(f"/api/v1/orgs/{world.marketing.pk}/runtimes").json()["results"]
    assert "platform" not in {row["name"] for row in below}
    assert "platform" in {row["name"] for row in above}
