"""The agent API (docs/API.md "Runtime agents"): enrollment, the agent's own token, claims and their context, and the
calls about a claimed run, each fenced by its lease. Attacks are written as requests, then the victim's state read
back."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from access.models import AuditEvent, hash_token
from config.actors import SYSTEM
from orgs import services as org_services
from resources import services
from resources.models import Credential, Run, RunLogLine
from runtimes import queue, reaper
from runtimes.models import AgentToken, EnrollmentToken, Runtime, RuntimeInstance
from runtimes.tokens import issue_enrollment_token
from tests.runtimes.queue_helpers import BASE, agent_client, enroll, lines_of, make_runtime, make_task, queue_run


@pytest.fixture(autouse=True)
def _no_opportunistic_sweeps(settings: Any) -> None:
    settings.RUNTIME_REAPER_INTERVAL_S = 0  # the reaper's own tests sweep explicitly


@pytest.fixture
def edge(world: Any) -> Runtime:
    return make_runtime(world.marketing, "edge")


@pytest.fixture
def task(world: Any) -> Any:
    return make_task(world.website)


def enroll_body(raw: str, instance_id: Any = None, hostname: str = "box-1") -> dict[str, Any]:
    return {"enrollment_token": raw, "instance": {"id": str(instance_id or uuid.uuid4()), "hostname": hostname,
                                                  "version": "0.9"}}  # fmt: skip


# -- enrollment ----------------------------------------------------------------------------------------------------


def test_enrolling_gives_the_agent_its_own_hashed_token_and_uses_the_enrollment_token(world, api, edge):
    _, raw = issue_enrollment_token(edge, actor=world.tenant_admin)
    instance_id = uuid.uuid4()
    response = api.post(BASE + "enroll", enroll_body(raw, instance_id), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["runtime"] == {
        "id": str(edge.pk), "name": "edge", "kind": "local", "sovereign": False, "allow_private_network": False
    }  # fmt: skip
    assert body["instance"] == str(instance_id)
    assert body["token"].startswith("cna_") and body["heartbeat_s"] == 10 and body["lease_s"] == 30
    stored = AgentToken.objects.get()
    assert stored.token_hash == hash_token(body["token"]) and stored.instance_id == instance_id
    assert not AgentToken.objects.filter(token_hash=body["token"]).exists()  # only the hash is kept
    instance = RuntimeInstance.objects.get(pk=instance_id)
    assert (instance.runtime, instance.hostname, instance.version) == (edge, "box-1", "0.9")
    enrollment = EnrollmentToken.objects.get()
    assert enrollment.used_at is not None and enrollment.used_by == instance
    event = AuditEvent.objects.get(action="runtime.enroll")
    assert event.org == world.marketing and event.target_id == str(edge.pk)
    assert event.changes["hostname"] == "box-1" and body["token"] not in str(event.changes)
    edge.refresh_from_db()
    assert edge.last_seen is not None and edge.agent_version == "0.9"
    beat = agent_client(body["token"]).post(BASE + "heartbeat", {"running": []}, format="json")
    assert beat.status_code == 200


def test_a_used_expired_or_unknown_enrollment_token_is_the_same_400(world, api, edge):
    _, used = issue_enrollment_token(edge, actor=SYSTEM)
    assert api.post(BASE + "enroll", enroll_body(used), format="json").status_code == 201
    expired_token, expired = issue_enrollment_token(edge, actor=SYSTEM)
    EnrollmentToken.objects.filter(pk=expired_token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    answers = [
        api.post(BASE + "enroll", enroll_body(raw), format="json")
        for raw in (used, expired, "cne_" + "x" * 43, "not-a-token")
    ]
    assert {a.status_code for a in answers} == {400}
    assert len({(a.json()["code"], a.json()["detail"]) for a in answers}) == 1
    assert answers[0].json()["code"] == "enrollment_token_invalid"
    assert AgentToken.objects.count() == 1 and RuntimeInstance.objects.count() == 1


def test_an_enrollment_token_of_a_runtime_in_a_deleted_org_is_refused(world, api, edge):
    _, raw = issue_enrollment_token(edge, actor=SYSTEM)
    org_services.delete_org(actor=world.tenant_admin, org=world.marketing)
    response = api.post(BASE + "enroll", enroll_body(raw), format="json")
    assert response.status_code == 400 and response.json()["code"] == "enrollment_token_invalid"
    assert not AgentToken.objects.exists()


def test_an_instance_id_enrolled_on_another_runtime_is_refused_and_the_token_stays_unused(world, api, edge):
    other = make_runtime(world.globex_root, "theirs")
    theirs = enroll(other)
    token, raw = issue_enrollment_token(edge, actor=SYSTEM)
    response = api.post(BASE + "enroll", enroll_body(raw, theirs.instance.pk), format="json")
    assert response.status_code == 400 and response.json()["code"] == "instance_taken"
    token.refresh_from_db()
    assert token.used_at is None
    assert RuntimeInstance.objects.get(pk=theirs.instance.pk).runtime == other
    assert AgentToken.objects.filter(runtime=edge).count() == 0


def test_enrolling_the_same_instance_again_ends_its_earlier_tokens(world, edge):
    first = enroll(edge, "box")
    second = enroll(edge, "box", instance_id=first.instance.pk)
    assert first.heartbeat().status_code == 401
    assert second.heartbeat().status_code == 200
    assert RuntimeInstance.objects.count() == 1


def test_a_global_runtime_enrolls_with_its_event_in_the_application_log(world, api, caplog):
    platform = Runtime.objects.get(name="platform", kind=Runtime.Kind.GLOBAL)  # the test world's (tests/factories.py)
    _, raw = issue_enrollment_token(platform, actor=world.superuser)
    with caplog.at_level("INFO", logger="runtimes.queue"):
        response = api.post(BASE + "enroll", enroll_body(raw), format="json")
    assert response.status_code == 201 and response.json()["runtime"]["kind"] == "global"
    assert "runtime.enroll of global runtime platform" in caplog.text


@pytest.mark.parametrize(
    "body",
    [{}, {"enrollment_token": "cne_x"}, {"enrollment_token": "cne_x", "instance": {"id": "nope"}}, [], "x",
     {"enrollment_token": ["a"], "instance": {"id": str(uuid.uuid4())}}],
)  # fmt: skip
def test_an_enrollment_of_the_wrong_shape_is_a_400(db, api, body):
    assert api.post(BASE + "enroll", body, format="json").status_code == 400


# -- the agent's token ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["token/rotate", "heartbeat", "claim", "runs/7f1c2a9e-0b4d-4c1e-9a57-3d2f6e8b1c04/start"]
)
def test_without_an_agent_token_every_agent_call_is_401_token_invalid(world, api, api_as, as_user, path):
    callers = [
        api,  # no token
        agent_client("cna_" + "x" * 43),  # unknown
        api_as(world.tenant_admin),  # a user's personal access token
    ]
    for caller in callers:
        response = caller.post(BASE + path, {"lease": "x"}, format="json")
        assert response.status_code == 401, (path, response.content)
        assert response.json()["code"] == "token_invalid"
        assert response["WWW-Authenticate"].startswith("Bearer")
    # A signed-in user's browser session is no agent either (and no CSRF token is asked: it is never looked at).
    response = as_user(world.tenant_admin).post(BASE + path, {"lease": "x"}, content_type="application/json")
    assert response.status_code == 401 and response.json()["code"] == "token_invalid"


def test_an_agent_token_opens_no_user_endpoint(world, edge):
    agent = enroll(edge)
    for path in ("/api/v1/me", f"/api/v1/orgs/{world.marketing.pk}", f"/api/v1/orgs/{world.marketing.pk}/credentials"):
        assert agent.client.get(path).status_code == 401, path


def test_rotation_gives_a_new_token_and_the_old_one_works_for_the_grace_only(world, edge, settings):
    settings.RUNTIME_TOKEN_ROTATION_GRACE_S = 1
    agent = enroll(edge)
    response = agent.post("token/rotate")
    assert response.status_code == 200
    new = response.json()["token"]
    assert new.startswith("cna_") and new != agent.token
    assert AgentToken.objects.get(token_hash=hash_token(new)).instance == agent.instance
    assert agent.heartbeat().status_code == 200  # the old token, within the grace
    old = AgentToken.objects.get(token_hash=hash_token(agent.token))
    assert old.expires_at <= timezone.now() + timedelta(seconds=1)
    time.sleep(1.1)
    assert agent.heartbeat().status_code == 401
    assert agent_client(new).post(BASE + "heartbeat", {}, format="json").status_code == 200
    event = AuditEvent.objects.get(action="runtime.token_rotate")
    assert event.changes["old"] == old.prefix and new not in str(event.changes)


def test_the_default_grace_of_a_rotated_token_is_sixty_seconds(world, edge):
    agent = enroll(edge)
    before = timezone.now()
    assert agent.post("token/rotate").status_code == 200
    old = AgentToken.objects.get(token_hash=hash_token(agent.token))
    assert before + timedelta(seconds=59) <= old.expires_at <= timezone.now() + timedelta(seconds=60)


def test_revoking_a_runtimes_tokens_stops_every_agent_of_it_at_the_next_call(world, edge, task):
    one, two = enroll(edge, "box-1"), enroll(edge, "box-2")
    other = enroll(make_runtime(world.marketing, "other"))
    AgentToken.objects.filter(runtime=edge).update(revoked_at=timezone.now())
    queue_run(task, edge)
    for agent in (one, two):
        assert agent.heartbeat().status_code == 401
        assert agent.claim().status_code == 401
        assert agent.post("token/rotate").status_code == 401  # a revoked token mints no new one
    assert Run.objects.get().status == Run.Status.QUEUED
    assert other.heartbeat().status_code == 200


def test_an_expired_token_or_a_deleted_runtime_is_401(world, edge):
    agent = enroll(edge)
    AgentToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert agent.heartbeat().status_code == 401
    second = enroll(edge, "box-2")
    org_services.delete_org(actor=world.tenant_admin, org=world.marketing)  # soft: the runtime goes with its org
    assert second.heartbeat().status_code == 401
    third = enroll(make_runtime(world.logistics, "gone"))
    Runtime.objects.filter(name="gone").delete()
    assert third.heartbeat().status_code == 401


def test_last_used_is_written_once_every_few_minutes_not_on_every_call(world, edge):
    agent = enroll(edge)
    assert agent.heartbeat().status_code == 200
    first = AgentToken.objects.get().last_used_at
    assert first is not None
    assert agent.heartbeat().status_code == 200
    assert AgentToken.objects.get().last_used_at == first


# -- heartbeat -----------------------------------------------------------------------------------------------------


def claim_one(agent: Any) -> dict[str, Any]:
    response = agent.claim()
    assert response.status_code == 200, response.content
    return response.json()["runs"][0]


def test_a_heartbeat_renews_the_listed_leases_and_answers_cancel_and_lost(world, edge, task):
    agent = enroll(edge)
    running, stopping, foreign = (queue_run(task, edge) for _ in range(3))
    claimed = [claim_one(agent) for _ in range(3)]
    assert [c["id"] for c in claimed] == [str(running.pk), str(stopping.pk), str(foreign.pk)]
    Run.objects.filter(pk=stopping.pk).update(status=Run.Status.STOP_REQUESTED)
    Run.objects.filter(pk__in=[running.pk, stopping.pk]).update(lease_expires_at=timezone.now())
    Run.objects.filter(pk=foreign.pk).update(lease="someone-elses", lease_expires_at=timezone.now())
    unknown = uuid.uuid4()
    before = timezone.now()
    response = agent.heartbeat([(c["id"], c["lease"]) for c in claimed] + [(unknown, "x")])
    assert response.status_code == 200
    body = response.json()
    assert body["cancel"] == [str(stopping.pk)]
    assert sorted(body["lost"]) == sorted([str(foreign.pk), str(unknown)])
    assert body["next_heartbeat_s"] == 10 and body["paused"] is False
    renewed = Run.objects.get(pk=running.pk).lease_expires_at
    assert renewed >= before + timedelta(seconds=29)
    assert Run.objects.get(pk=foreign.pk).lease_expires_at < before  # not its lease: not renewed
    instance = RuntimeInstance.objects.get(pk=agent.instance.pk)
    assert instance.last_heartbeat >= before and instance.offline_at is None


def test_a_heartbeat_clears_offline_and_says_paused(world, edge):
    agent = enroll(edge)
    RuntimeInstance.objects.update(offline_at=timezone.now())
    Runtime.objects.filter(pk=edge.pk).update(paused=True)
    response = agent.heartbeat()
    assert response.json()["paused"] is True
    assert RuntimeInstance.objects.get().offline_at is None


def test_a_heartbeat_cannot_renew_another_runtimes_run_even_with_its_lease(world, edge, task):
    victim = enroll(make_runtime(world.logistics, "victim"))
    attacker = enroll(edge)
    run = queue_run(task, victim.runtime)
    lease = claim_one(victim)["lease"]
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=5))
    response = attacker.heartbeat([(run.pk, lease)])
    assert response.json()["lost"] == [str(run.pk)]
    assert Run.objects.get(pk=run.pk).lease_expires_at < timezone.now()


def test_an_instance_id_that_is_not_the_tokens_is_refused(world, edge):
    agent = enroll(edge)
    other = enroll(edge, "box-2")
    response = agent.post("heartbeat", {"instance": str(other.instance.pk), "running": []})
    assert response.status_code == 400 and response.json()["code"] == "instance_mismatch"


# -- claim ---------------------------------------------------------------------------------------------------------


def test_a_claim_takes_the_oldest_queued_runs_of_its_own_runtime_only(world, edge, task):
    agent = enroll(edge, "box-1")
    elsewhere = make_runtime(world.marketing, "elsewhere")
    theirs = queue_run(task, elsewhere)
    mine = [queue_run(task, edge) for _ in range(4)]
    response = agent.claim(max=3)
    assert response.status_code == 200
    runs = response.json()["runs"]
    assert [r["id"] for r in runs] == [str(r.pk) for r in mine[:3]]
    assert len({r["lease"] for r in runs}) == 3 and all(len(r["lease"]) == 64 for r in runs)
    first = runs[0]
    assert first["task"] == {"id": str(task.pk), "name": "Sync"} and first["attempt"] == 1
    assert first["steps"] == task.steps and first["sovereign"] is False
    stored = Run.objects.get(pk=mine[0].pk)
    assert stored.status == Run.Status.CLAIMED and stored.instance == agent.instance and stored.claimed_at
    assert stored.lease == first["lease"]
    assert lines_of(stored)[-1] == (2, "info", "Claimed by box-1 (attempt 1).")
    assert Run.objects.get(pk=theirs.pk).status == Run.Status.QUEUED
    assert [r["id"] for r in agent.claim(max=3).json()["runs"]] == [str(mine[3].pk)]
    assert agent.claim().status_code == 204


def test_a_paused_runtime_claims_nothing(world, edge, task):
    agent = enroll(edge)
    run = queue_run(task, edge)
    Runtime.objects.filter(pk=edge.pk).update(paused=True)
    response = agent.claim(wait_s=5)
    assert response.status_code == 204 and response.content == b""
    assert Run.objects.get(pk=run.pk).status == Run.Status.QUEUED


def test_a_claim_waits_up_to_wait_s_then_answers_204(world, edge):
    agent = enroll(edge)
    started = time.monotonic()
    response = agent.claim(wait_s=0.5)
    elapsed = time.monotonic() - started
    assert response.status_code == 204
    assert 0.5 <= elapsed < 2


@pytest.mark.parametrize(
    "body", [{"max": 0}, {"max": 21}, {"wait_s": 31}, {"wait_s": -1}, {"max": "many"}, {"instance": "nope"}]
)
def test_a_claim_of_the_wrong_shape_is_a_400(world, edge, body):
    assert enroll(edge).post("claim", body).status_code == 400


def test_the_context_holds_what_the_steps_name_and_nothing_else(world, edge):
    org = world.marketing
    services.create_credential(
        actor=SYSTEM, org=world.root, name="CRM", kind="http_basic", fields={"username": "svc"},
        secret={"password": "s3cret"},
    )  # fmt: skip
    services.create_credential(
        actor=SYSTEM, org=org, name="Vault", kind="api_key", fields={"header": "X-Key"}, secret={"key": "k"}
    )
    services.create_credential(
        actor=SYSTEM, org=org, name="Unused", kind="api_key", fields={}, secret={"key": "never-sent"}
    )
    services.create_lookup_table(actor=SYSTEM, org=org, name="Countries", rows=[{"key": "fr", "value": "France"}])
    services.create_lookup_table(actor=SYSTEM, org=org, name="Other", rows=[{"key": "x", "value": "y"}])
    services.create_env_var(actor=SYSTEM, org=world.root, key="REGION", value="eu-west")
    services.create_env_var(actor=SYSTEM, org=org, key="API_TOKEN", value="tok-123", secret=True)
    services.create_env_var(actor=SYSTEM, org=org, key="UNNAMED", value="nope")
    # Its secret lives on the runtime (the credential services' source field is another part's: set here).
    Credential.objects.filter(name="Vault").update(
        source=Credential.Source.RUNTIME, secret_ciphertext="", secret_names=[]
    )
    steps = [
        {"type": "http", "method": "GET", "url": "https://api.example.com/{{ env.REGION }}", "credential": "crm",
         "headers": {"X-Token": "{{ env.API_TOKEN }}"}, "into": "resp"},
        {"type": "http", "method": "GET", "url": "https://vault.example.com", "credential": "Vault"},
        {"type": "lookup", "table": "Countries", "key": "{{ resp.body.country }}", "into": "country"},
        {"type": "transform", "expression": "env.MISSING", "into": "m"},
        {"type": "log", "message": "env.UNNAMED is not a template"},
    ]  # fmt: skip
    task = make_task(world.website, steps=steps)
    run = queue_run(task, edge)
    context = claim_one(enroll(edge))["context"]
    assert context["task"] == {"id": str(task.pk), "name": "Sync"}
    assert context["org"] == {"id": str(org.pk), "name": "Marketing"}
    assert context["run"] == {"id": str(run.pk), "attempt": 1}
    assert context["credentials"] == {
        "crm": {"kind": "http_basic", "source": "canopy", "fields": {"username": "svc"},
                "secret": {"password": "s3cret"}},
        "Vault": {"kind": "api_key", "source": "runtime", "fields": {"header": "X-Key"}},
    }  # fmt: skip
    assert context["lookup_tables"] == {"Countries": {"fr": "France"}}
    assert context["env"] == {"REGION": "eu-west", "API_TOKEN": "tok-123"}


def test_a_run_whose_names_resolve_to_something_else_by_now_fails_at_the_claim(world, edge):
    services.create_credential(actor=SYSTEM, org=world.root, name="CRM", kind="generic", secret={"k": "root"})
    task = make_task(
        world.website, steps=[{"type": "http", "method": "GET", "url": "https://x.example", "credential": "CRM"}]
    )
    run = queue_run(task, edge)
    # Someone declares their own CRM closer to the project: the run must not use it instead of the bound one.
    services.create_credential(actor=SYSTEM, org=world.marketing, name="CRM", kind="generic", secret={"k": "theirs"})
    agent = enroll(edge)
    assert agent.claim().status_code == 204
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and "now resolves to another credential" in run.error
    assert "theirs" not in str(lines_of(run))


# -- start, logs, finish: fenced by the lease ----------------------------------------------------------------------


def test_start_makes_the_run_running_once(world, edge, task):
    agent = enroll(edge, "box-1")
    run = queue_run(task, edge)
    lease = claim_one(agent)["lease"]
    response = agent.post(f"runs/{run.pk}/start", {"lease": lease})
    assert response.status_code == 200 and response.json() == {"cancel": False}
    stored = Run.objects.get(pk=run.pk)
    assert stored.status == Run.Status.RUNNING and stored.started_at is not None
    assert agent.post(f"runs/{run.pk}/start", {"lease": lease}).status_code == 200  # a retry changes nothing
    assert Run.objects.get(pk=run.pk).started_at == stored.started_at
    assert [m for _, _, m in lines_of(run)].count("Started on box-1.") == 1
    Run.objects.filter(pk=run.pk).update(status=Run.Status.STOP_REQUESTED)
    assert agent.post(f"runs/{run.pk}/start", {"lease": lease}).json() == {"cancel": True}


def test_every_run_call_with_a_lease_that_is_not_the_runs_is_409_lease_lost(world, edge, task):
    agent = enroll(edge)
    run = queue_run(task, edge)
    lease = claim_one(agent)["lease"]
    bad = "0" * 64
    line = {"seq": 1, "at": timezone.now().isoformat(), "level": "info", "message": "x"}
    calls = [
        ("start", {"lease": bad}),
        ("logs", {"lease": bad, "lines": [line]}),
        ("finish", {"lease": bad, "status": "succeeded"}),
    ]
    for action, body in calls:
        response = agent.post(f"runs/{run.pk}/{action}", body)
        assert response.status_code == 409 and response.json()["code"] == "lease_lost", action
    stored = Run.objects.get(pk=run.pk)
    assert stored.status == Run.Status.CLAIMED and stored.lease == lease and stored.log_next_seq == 1


def test_an_agent_cannot_touch_another_runtimes_run_even_with_its_lease(world, edge, task):
    victim = enroll(make_runtime(world.logistics, "victim"))
    attacker = enroll(edge)
    run = queue_run(task, victim.runtime)
    lease = claim_one(victim)["lease"]
    line = {"seq": 1, "at": timezone.now().isoformat(), "level": "error", "message": "pwned"}
    for action, body in [
        ("start", {"lease": lease}),
        ("logs", {"lease": lease, "lines": [line]}),
        ("finish", {"lease": lease, "status": "failed", "error": "pwned"}),
    ]:
        assert attacker.post(f"runs/{run.pk}/{action}", body).status_code == 404, action
    for bad_id in ("nope", str(uuid.uuid4())):
        assert attacker.post(f"runs/{bad_id}/start", {"lease": lease}).status_code == 404
    stored = Run.objects.get(pk=run.pk)
    assert stored.status == Run.Status.CLAIMED and stored.error == "" and stored.started_at is None
    assert "pwned" not in str(lines_of(run))


def log_lines(*seqs: int, message: str = "line {seq}", level: str = "info") -> list[dict[str, Any]]:
    at = timezone.now().isoformat()
    return [{"seq": s, "at": at, "level": level, "message": message.format(seq=s)} for s in seqs]


def test_log_lines_are_stored_once_in_order_after_the_servers_lines(world, edge, task):
    agent = enroll(edge, "box-1")
    run = queue_run(task, edge)
    lease = claim_one(agent)["lease"]
    path = f"runs/{run.pk}/logs"
    response = agent.post(path, {"lease": lease, "lines": log_lines(1, 2)})
    assert response.status_code == 200 and response.json() == {"next_seq": 3, "cancel": False}
    assert agent.post(path, {"lease": lease, "lines": log_lines(1, 2)}).json()["next_seq"] == 3  # a repeat
    assert agent.post(path, {"lease": lease, "lines": log_lines(2, 3, 4)}).json()["next_seq"] == 5  # overlapping
    assert lines_of(run) == [
        (1, "info", "Queued with 1 step(s)."),
        (2, "info", "Claimed by box-1 (attempt 1)."),
        (3, "info", "line 1"),
        (4, "info", "line 2"),
        (5, "info", "line 3"),
        (6, "info", "line 4"),
    ]
    assert Run.objects.get(pk=run.pk).log_next_seq == 5


def test_a_gap_in_the_log_is_refused_with_the_next_expected_seq(world, edge, task):
    agent = enroll(edge)
    run = queue_run(task, edge)
    lease = claim_one(agent)["lease"]
    agent.post(f"runs/{run.pk}/logs", {"lease": lease, "lines": log_lines(1)})
    response = agent.post(f"runs/{run.pk}/logs", {"lease": lease, "lines": log_lines(4, 5)})
    assert response.status_code == 409
    assert response.json()["code"] == "seq_gap" and response.json()["next_seq"] == 2
    assert RunLogLine.objects.filter(run=run, message__startswith="line").count() == 1


def test_a_batch_out_of_order_or_too_large_is_a_400(world, edge, task, settings):
    settings.RUNTIME_LOG_BATCH_MAX = 3
    agent = enroll(edge)
    run = queue_run(task, edge)
    lease = claim_one(agent)["lease"]
    assert agent.post(f"runs/{run.pk}/logs", {"lease": lease, "lines": log_lines(2, 1)}).status_code == 400
    assert agent.post(f"runs/{run.pk}/logs", {"lease": lease, "lines": log_lines(1, 3)}).status_code == 400
    assert agent.post(f"runs/{run.pk}/logs", {"lease": lease, "lines": log_lines(1, 2, 3, 4)}).status_code == 400
    assert not RunLogLine.objects.filter(run=run, message__startswith="line").exists()


def test_logs_renew_the_lease_and_carry_the_cancel(world, edge, task):
    agent = enroll(edge)
    run = queue_run(task, edge)
    lease = claim_one(agent)["lease"]
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now(), status=Run.Status.STOP_REQUESTED)
    response = agent.post(f"runs/{run.pk}/logs", {"lease": lease, "lines": log_lines(1)})
    assert response.json() == {"next_seq": 2, "cancel": True}
    assert Run.objects.get(pk=run.pk).lease_expires_at > timezone.now() + timedelta(seconds=25)


def test_a_sovereign_run_stores_no_log_body_and_no_error_payload(world, task):
    vault = make_runtime(world.marketing, "vault", sovereign=True)
    agent = enroll(vault)
    run = queue_run(task, vault)
    claimed = claim_one(agent)
    assert claimed["sovereign"] is True
    lease = claimed["lease"]
    body = {"lease": lease, "lines": log_lines(1, 2, message="customer IBAN DE{seq}", level="error")}
    assert agent.post(f"runs/{run.pk}/logs", body).status_code == 200
    stored = RunLogLine.objects.filter(run=run).order_by("seq")
    assert [(line.level, line.message) for line in stored][-2:] == [("error", ""), ("error", "")]
    response = agent.post(
        f"runs/{run.pk}/finish",
        {"lease": lease, "status": "failed", "error": "IBAN DE1 refused", "log_location": "/var/canopy/run.log",
         "steps": [{"index": 0, "status": "failed", "ms": 12, "error": "IBAN DE1 refused"}]},
    )  # fmt: skip
    assert response.status_code == 200
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and "IBAN" not in run.error and run.error
    assert run.step_results == [{"index": 0, "status": "failed", "ms": 12}]
    assert run.log_location == "/var/canopy/run.log"
    assert "IBAN" not in str(list(RunLogLine.objects.filter(run=run).values_list("message", flat=True)))


def test_finish_records_the_result_and_a_repeat_answers_the_same(world, edge):
    agent = enroll(edge, "box-1")
    task = make_task(world.website, steps=[{"type": "log", "message": "a"}, {"type": "log", "message": "b"}])
    run = queue_run(task, edge)
    lease = claim_one(agent)["lease"]
    agent.post(f"runs/{run.pk}/start", {"lease": lease})
    body = {
        "lease": lease, "status": "failed", "error": "Step 2 (b): boom",
        "steps": [{"index": 0, "status": "succeeded", "ms": 5},
                  {"index": 1, "status": "failed", "ms": 7, "error": "boom"}],
    }  # fmt: skip
    response = agent.post(f"runs/{run.pk}/finish", body)
    assert response.status_code == 200
    summary = response.json()
    assert summary["status"] == "failed" and summary["error"] == "Step 2 (b): boom" and summary["finished_at"]
    assert summary["step_results"] == [
        {"index": 0, "status": "succeeded", "ms": 5},
        {"index": 1, "status": "failed", "ms": 7, "error": "boom"},
    ]
    assert agent.post(f"runs/{run.pk}/finish", {**body, "status": "succeeded"}).json() == summary
    assert lines_of(run)[-1][2].startswith("Finished failed in ")
    line = log_lines(1)
    assert agent.post(f"runs/{run.pk}/logs", {"lease": lease, "lines": line}).json()["code"] == "lease_lost"
    assert agent.heartbeat([(run.pk, lease)]).json()["lost"] == [str(run.pk)]


def test_a_run_whose_stop_was_requested_finishes_stopped(world, edge, task):
    agent = enroll(edge)
    run = queue_run(task, edge)
    lease = claim_one(agent)["lease"]
    agent.post(f"runs/{run.pk}/start", {"lease": lease})
    services.stop_run(actor=world.tenant_admin, run=Run.objects.get(pk=run.pk))
    assert agent.heartbeat([(run.pk, lease)]).json()["cancel"] == [str(run.pk)]
    response = agent.post(f"runs/{run.pk}/finish", {"lease": lease, "status": "succeeded"})
    assert response.json()["status"] == "stopped"


@pytest.mark.parametrize(
    "extra",
    [{"status": "lost"}, {"status": "succeeded", "steps": [{"index": 5, "status": "succeeded", "ms": 1}]},
     {"status": "succeeded", "steps": [{"index": 0, "status": "exploded", "ms": 1}]}, {"status": "succeeded",
     "steps": [{"index": 0, "status": "succeeded", "ms": -1}]}],
)  # fmt: skip
def test_a_finish_of_the_wrong_shape_is_a_400_and_changes_nothing(world, edge, task, extra):
    agent = enroll(edge)
    run = queue_run(task, edge)
    lease = claim_one(agent)["lease"]
    assert agent.post(f"runs/{run.pk}/finish", {"lease": lease, **extra}).status_code == 400
    assert Run.objects.get(pk=run.pk).status == Run.Status.CLAIMED


def test_after_a_reclaim_the_first_agent_is_fenced_off(world, edge):
    task = make_task(world.website, retry_on_lost=True)
    slow, fresh = enroll(edge, "slow"), enroll(edge, "fresh")
    run = queue_run(task, edge)
    old_lease = claim_one(slow)["lease"]
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert reaper.reap().requeued == 1
    claimed = claim_one(fresh)
    assert claimed["attempt"] == 2 and claimed["lease"] != old_lease
    assert fresh.post(f"runs/{run.pk}/start", {"lease": claimed["lease"]}).status_code == 200
    # The slow agent comes back: everything it says is refused, nothing of the new attempt changes.
    assert slow.heartbeat([(run.pk, old_lease)]).json()["lost"] == [str(run.pk)]
    for action, body in [
        ("start", {"lease": old_lease}),
        ("logs", {"lease": old_lease, "lines": log_lines(1)}),
        ("finish", {"lease": old_lease, "status": "failed", "error": "stale"}),
    ]:
        assert slow.post(f"runs/{run.pk}/{action}", body).json()["code"] == "lease_lost"
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.attempt, stored.instance, stored.error) == (
        Run.Status.RUNNING, 2, fresh.instance, ""
    )  # fmt: skip
    logs = fresh.post(f"runs/{run.pk}/logs", {"lease": claimed["lease"], "lines": log_lines(1)})
    assert logs.json()["next_seq"] == 2  # the seq starts again at 1 for the new attempt


@pytest.mark.parametrize("what", ["token revoked", "instance declared offline"])
def test_a_waiting_claim_takes_nothing_once_its_agent_lost_the_right(world, edge, task, monkeypatch, what):
    """A long poll that began before the revocation (or before the reaper declared its instance offline: the agent
    was killed during the poll, the request lives on here) takes no run that arrives afterwards: the run stays queued
    for an agent that will execute it."""
    agent = enroll(edge)
    real_claim_ready = queue._claim_ready
    arrived: list[Run] = []

    def first_look_finds_nothing_then_the_world_changes(principal, max_runs, *, start=False):
        if not arrived:
            if what == "token revoked":
                AgentToken.objects.filter(runtime=edge).update(revoked_at=timezone.now())
            else:
                RuntimeInstance.objects.filter(runtime=edge).update(offline_at=timezone.now())
            arrived.append(queue_run(task, edge))
            return []
        return real_claim_ready(principal, max_runs, start=start)

    monkeypatch.setattr(queue, "_claim_ready", first_look_finds_nothing_then_the_world_changes)
    response = agent.claim(wait_s=1)
    assert response.status_code == 204
    assert Run.objects.get(pk=arrived[0].pk).status == Run.Status.QUEUED


def test_a_waiting_claim_of_an_entitled_agent_takes_a_run_that_arrives(world, edge, task, monkeypatch):
    agent = enroll(edge)
    real_claim_ready = queue._claim_ready
    arrived: list[Run] = []

    def nothing_at_first(principal, max_runs, *, start=False):
        if not arrived:
            arrived.append(queue_run(task, edge))
            return []
        return real_claim_ready(principal, max_runs, start=start)

    monkeypatch.setattr(queue, "_claim_ready", nothing_at_first)
    response = agent.claim(wait_s=2)
    assert response.status_code == 200 and [r["id"] for r in response.json()["runs"]] == [str(arrived[0].pk)]


def test_a_claim_says_what_the_runtime_allows_now(world, task):
    """A superuser turning private networks off on a global runtime reaches its enrolled agents at their next claim."""
    platform = Runtime.objects.get(name="platform")
    Runtime.objects.filter(pk=platform.pk).update(allow_private_network=True)
    agent = enroll(platform)
    queue_run(task, platform)
    Runtime.objects.filter(pk=platform.pk).update(allow_private_network=False)
    body = agent.claim().json()
    assert body["runs"][0]["runtime"] == {"kind": "global", "allow_private_network": False}
