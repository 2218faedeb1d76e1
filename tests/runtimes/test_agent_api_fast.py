"""One request per run (docs/API.md "Runtime agents", *Added*): a claim with ``"start": true`` starts its runs in
the claim's transaction, and a finish may carry the run's last log batch. Every guarantee of the separate calls
holds: fencing by lease, the seq rules, sovereignty, a paused runtime. Attacks are requests, then the victim's state
read back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from resources.models import Run, RunLogLine
from runtimes import reaper
from runtimes.models import Runtime
from tests.runtimes.queue_helpers import enroll, lines_of, make_runtime, make_task, queue_run


@pytest.fixture(autouse=True)
def _no_opportunistic_sweeps(settings: Any) -> None:
    settings.RUNTIME_REAPER_INTERVAL_S = 0  # the reaper's own tests sweep explicitly


@pytest.fixture
def edge(world: Any) -> Runtime:
    return make_runtime(world.marketing, "edge")


@pytest.fixture
def task(world: Any) -> Any:
    return make_task(world.website)


def claim_started(agent: Any, max: int = 1, wait_s: float = 0) -> Any:
    return agent.post("claim", {"instance": str(agent.instance.pk), "max": max, "wait_s": wait_s, "start": True})


def log_lines(*seqs: int, message: str = "line {seq}", level: str = "info") -> list[dict[str, Any]]:
    at = timezone.now().isoformat()
    return [{"seq": s, "at": at, "level": level, "message": message.format(seq=s)} for s in seqs]


def started_run(agent: Any) -> dict[str, Any]:
    response = claim_started(agent)
    assert response.status_code == 200, response.content
    return response.json()["runs"][0]


# -- claim with start ----------------------------------------------------------------------------------------------


def test_a_claim_with_start_makes_its_runs_running_at_once_with_their_started_line(world, edge, task):
    agent = enroll(edge, "box-1")
    first, second = queue_run(task, edge), queue_run(task, edge)
    response = claim_started(agent, max=2)
    assert response.status_code == 200
    runs = response.json()["runs"]
    assert [(r["id"], r["status"]) for r in runs] == [(str(first.pk), "running"), (str(second.pk), "running")]
    for run in (first, second):
        stored = Run.objects.get(pk=run.pk)
        assert stored.status == Run.Status.RUNNING and stored.instance == agent.instance
        assert stored.started_at is not None and stored.started_at == stored.claimed_at
        assert lines_of(stored) == [
            (1, "info", "Queued with 1 step(s)."),
            (2, "info", "Claimed by box-1 (attempt 1)."),
            (3, "info", "Started on box-1."),
        ]
    # An older agent's start call after it changes nothing: no second start, no second line.
    lease = runs[0]["lease"]
    before = Run.objects.get(pk=first.pk).started_at
    assert agent.post(f"runs/{first.pk}/start", {"lease": lease}).json() == {"cancel": False}
    assert Run.objects.get(pk=first.pk).started_at == before
    assert [m for _, _, m in lines_of(first)].count("Started on box-1.") == 1


def test_a_claim_without_start_keeps_the_contract_of_older_agents(world, edge, task):
    agent = enroll(edge)
    run = queue_run(task, edge)
    response = agent.claim()  # no "start": the default is false
    assert response.json()["runs"][0]["status"] == "claimed"
    stored = Run.objects.get(pk=run.pk)
    assert stored.status == Run.Status.CLAIMED and stored.started_at is None
    assert not RunLogLine.objects.filter(run=run, message__startswith="Started").exists()


def test_a_paused_runtime_claims_nothing_even_with_start(world, edge, task):
    agent = enroll(edge)
    run = queue_run(task, edge)
    Runtime.objects.filter(pk=edge.pk).update(paused=True)
    response = claim_started(agent, wait_s=2)
    assert response.status_code == 204
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.started_at, stored.lease) == (Run.Status.QUEUED, None, "")


def test_a_claim_with_start_takes_only_its_own_runtimes_runs(world, edge, task):
    victim_runtime = make_runtime(world.logistics, "victim")
    theirs = queue_run(task, victim_runtime)
    attacker = enroll(edge)
    assert claim_started(attacker, max=20).status_code == 204
    stored = Run.objects.get(pk=theirs.pk)
    assert (stored.status, stored.started_at, stored.instance) == (Run.Status.QUEUED, None, None)


def test_a_run_started_by_its_claim_is_still_fenced_by_its_lease(world, edge):
    task = make_task(world.website, retry_on_lost=True)
    slow, fresh = enroll(edge, "slow"), enroll(edge, "fresh")
    run = queue_run(task, edge)
    old_lease = started_run(slow)["lease"]
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert reaper.reap().requeued == 1
    claimed = started_run(fresh)
    assert claimed["attempt"] == 2 and claimed["lease"] != old_lease and claimed["status"] == "running"
    # The slow agent comes back: its logs and its finish (with lines) are refused, the new attempt untouched.
    for action, body in [
        ("logs", {"lease": old_lease, "lines": log_lines(1, message="stale {seq}")}),
        ("finish", {"lease": old_lease, "status": "failed", "error": "stale", "lines": log_lines(1, message="stale")}),
    ]:
        response = slow.post(f"runs/{run.pk}/{action}", body)
        assert response.status_code == 409 and response.json()["code"] == "lease_lost", action
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.attempt, stored.instance, stored.error, stored.log_next_seq) == (
        Run.Status.RUNNING, 2, fresh.instance, "", 1
    )  # fmt: skip
    assert "stale" not in str(lines_of(run))


# -- finish with the last log batch --------------------------------------------------------------------------------


def test_finish_stores_its_lines_before_finishing_and_ignores_repeats(world, edge, task):
    agent = enroll(edge, "box-1")
    run = queue_run(task, edge)
    lease = started_run(agent)["lease"]
    assert agent.post(f"runs/{run.pk}/logs", {"lease": lease, "lines": log_lines(1, 2)}).json()["next_seq"] == 3
    # Lines 1-2 again (the logs answer was lost on the way) and 3-4, new: only 3-4 are stored.
    body = {"lease": lease, "status": "succeeded", "steps": [{"index": 0, "status": "succeeded", "ms": 3}],
            "lines": log_lines(1, 2, 3, 4)}  # fmt: skip
    response = agent.post(f"runs/{run.pk}/finish", body)
    assert response.status_code == 200 and response.json()["status"] == "succeeded"
    stored = Run.objects.get(pk=run.pk)
    assert stored.status == Run.Status.SUCCEEDED and stored.log_next_seq == 5 and stored.lease_expires_at is None
    lines = lines_of(run)
    assert [m for _, _, m in lines[:7]] == [
        "Queued with 1 step(s).", "Claimed by box-1 (attempt 1).", "Started on box-1.",
        "line 1", "line 2", "line 3", "line 4",
    ]  # fmt: skip
    assert lines[7][2].startswith("Finished succeeded") and len(lines) == 8
    # The finish again (its answer was lost): the same answer, nothing stored twice.
    again = agent.post(f"runs/{run.pk}/finish", body)
    assert again.status_code == 200 and again.json() == response.json()
    assert lines_of(run) == lines


def test_finish_with_a_gap_in_its_lines_is_refused_and_finishes_nothing(world, edge, task):
    agent = enroll(edge)
    run = queue_run(task, edge)
    lease = started_run(agent)["lease"]
    agent.post(f"runs/{run.pk}/logs", {"lease": lease, "lines": log_lines(1)})
    body = {"lease": lease, "status": "failed", "error": "boom"}
    response = agent.post(f"runs/{run.pk}/finish", {**body, "lines": log_lines(4, 5)})
    assert response.status_code == 409
    assert response.json()["code"] == "seq_gap" and response.json()["next_seq"] == 2
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.finished_at, stored.error, stored.log_next_seq) == (Run.Status.RUNNING, None, "", 2)
    assert RunLogLine.objects.filter(run=run, message__startswith="line").count() == 1
    assert not RunLogLine.objects.filter(run=run, message__startswith="Finished").exists()
    # Renumbered from next_seq, as the agent does: stored and finished.
    assert agent.post(f"runs/{run.pk}/finish", {**body, "lines": log_lines(2, 3)}).status_code == 200
    stored.refresh_from_db()
    assert stored.status == Run.Status.FAILED and stored.log_next_seq == 4
    assert RunLogLine.objects.filter(run=run, message__startswith="line").count() == 3


def test_finish_lines_out_of_order_or_too_many_are_a_400_and_finish_nothing(world, edge, task, settings):
    settings.RUNTIME_LOG_BATCH_MAX = 3
    agent = enroll(edge)
    run = queue_run(task, edge)
    lease = started_run(agent)["lease"]
    for lines in (log_lines(2, 1), log_lines(1, 2, 3, 4), [{"seq": 0, "at": "x", "message": "m"}]):
        response = agent.post(f"runs/{run.pk}/finish", {"lease": lease, "status": "succeeded", "lines": lines})
        assert response.status_code == 400, lines
    stored = Run.objects.get(pk=run.pk)
    assert stored.status == Run.Status.RUNNING and stored.finished_at is None
    assert not RunLogLine.objects.filter(run=run, message__startswith="line").exists()


def test_finish_lines_of_a_sovereign_run_keep_no_message(world, task):
    vault = make_runtime(world.marketing, "vault", sovereign=True)
    agent = enroll(vault)
    run = queue_run(task, vault)
    lease = started_run(agent)["lease"]
    body = {"lease": lease, "status": "failed", "error": "IBAN DE1 refused",
            "lines": log_lines(1, 2, message="customer IBAN DE{seq}", level="error")}  # fmt: skip
    assert agent.post(f"runs/{run.pk}/finish", body).status_code == 200
    stored = list(RunLogLine.objects.filter(run=run).order_by("seq").values_list("level", "message"))
    assert stored[-3:-1] == [("error", ""), ("error", "")]
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and run.log_next_seq == 3 and "IBAN" not in run.error
    assert "IBAN" not in str(stored)


def test_an_agent_cannot_finish_another_runtimes_run_with_lines(world, edge, task):
    victim = enroll(make_runtime(world.logistics, "victim"))
    attacker = enroll(edge)
    run = queue_run(task, victim.runtime)
    lease = started_run(victim)["lease"]
    body = {"lease": lease, "status": "failed", "error": "pwned", "lines": log_lines(1, message="pwned")}
    assert attacker.post(f"runs/{run.pk}/finish", body).status_code == 404
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.error, stored.log_next_seq) == (Run.Status.RUNNING, "", 1)
    assert "pwned" not in str(lines_of(run))


def test_the_schema_declares_start_and_lines(api):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]
    assert components["ClaimRequest"]["properties"]["start"]["type"] == "boolean"
    status = components["ClaimedRun"]["properties"]["status"]
    assert status["allOf"] == [{"$ref": "#/components/schemas/ClaimedRunStatus"}]
    assert components["ClaimedRunStatus"]["enum"] == ["claimed", "running"]
    lines = components["FinishRequest"]["properties"]["lines"]
    assert lines["items"] == {"$ref": "#/components/schemas/AgentLogLineRequest"}
    finish = schema["paths"]["/api/v1/runtime-agent/runs/{id}/finish"]["post"]["responses"]["409"]
    assert finish == {"$ref": "#/components/responses/SeqGap"}
    seq_gap = schema["components"]["responses"]["SeqGap"]["content"]["application/json"]["schema"]
    assert seq_gap == {"$ref": "#/components/schemas/SeqGap"}
    assert set(components["SeqGap"]["properties"]) == {"detail", "code", "next_seq"}
