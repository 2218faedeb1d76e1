"""The reaper (runtimes.reaper, manage.py runtimes_reaper): expired leases → lost (or queued once more when the task
allows it), silent instances → offline, queued runs without an online runtime → failed ``no_runtime_available``;
each claim-less change audited by the system."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from access.models import AuditEvent
from resources.models import Run
from runtimes import reaper
from runtimes.models import Runtime, RuntimeInstance
from tests.runtimes.queue_helpers import enroll, lines_of, make_runtime, make_task, queue_run


@pytest.fixture(autouse=True)
def _sweeps(settings: Any) -> None:
    settings.RUNTIME_REAPER_INTERVAL_S = 0
    cache.delete("runtimes:reaper:sweep")


@pytest.fixture
def edge(world: Any) -> Runtime:
    return make_runtime(world.marketing, "edge")


def claimed_run(task: Any, agent: Any, *, expired_s: float = 5) -> Run:
    run = queue_run(task, agent.runtime)
    response = agent.claim()
    assert response.status_code == 200
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=expired_s))
    return Run.objects.get(pk=run.pk)


def test_a_run_whose_lease_expired_is_lost_and_audited(world, edge):
    agent = enroll(edge, "box-1")
    run = claimed_run(make_task(world.website), agent)
    live = queue_run(make_task(world.website, "Other"), edge)
    assert agent.claim().status_code == 200  # leased, lease still valid: untouched
    result = reaper.reap()
    assert (result.lost, result.requeued) == (1, 0)
    run.refresh_from_db()
    assert run.status == Run.Status.LOST and run.finished_at and "stopped answering" in run.error
    assert run.lease == "" and run.lease_expires_at is None
    assert lines_of(run)[-1][1:] == ("error", "Lost contact with box-1 (lease expired 5 s ago).")
    assert Run.objects.get(pk=live.pk).status == Run.Status.CLAIMED
    event = AuditEvent.objects.get(action="run.lost")
    assert event.actor is None and event.actor_name == "system" and event.target_id == str(run.pk)
    assert event.org == world.website.org
    assert reaper.reap().lost == 0  # nothing twice


def test_a_retryable_run_is_queued_again_once_then_lost(world, edge):
    agent = enroll(edge, "box-1")
    task = make_task(world.website, retry_on_lost=True)
    run = claimed_run(task, agent)
    assert reaper.reap().requeued == 1
    run.refresh_from_db()
    assert (run.status, run.attempt, run.lease, run.instance, run.log_next_seq) == (Run.Status.QUEUED, 2, "", None, 1)
    assert "queued again, attempt 2" in lines_of(run)[-1][2]
    assert AuditEvent.objects.get(action="run.requeue").changes["attempt"] == 2
    claimed = agent.claim().json()["runs"][0]
    assert claimed["attempt"] == 2
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    result = reaper.reap()
    assert (result.lost, result.requeued) == (1, 0)
    assert Run.objects.get(pk=run.pk).status == Run.Status.LOST


def test_a_run_whose_stop_was_requested_is_never_queued_again(world, edge):
    agent = enroll(edge)
    run = claimed_run(make_task(world.website, retry_on_lost=True), agent)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.STOP_REQUESTED)
    assert reaper.reap().lost == 1
    assert Run.objects.get(pk=run.pk).status == Run.Status.LOST


def test_a_heartbeat_just_before_the_sweep_keeps_the_run(world, edge):
    agent = enroll(edge)
    run = claimed_run(make_task(world.website), agent)
    assert agent.heartbeat([(run.pk, run.lease)]).json()["lost"] == []
    assert reaper.reap().lost == 0
    assert Run.objects.get(pk=run.pk).status == Run.Status.CLAIMED


def test_silent_instances_go_offline_and_come_back_with_their_next_call(world, edge, settings):
    quiet, chatty = enroll(edge, "quiet"), enroll(edge, "chatty")
    RuntimeInstance.objects.filter(pk=quiet.instance.pk).update(
        last_heartbeat=timezone.now() - timedelta(seconds=settings.RUNTIME_OFFLINE_AFTER_S + 1)
    )
    assert reaper.reap().offline == 1
    assert RuntimeInstance.objects.get(pk=quiet.instance.pk).offline_at is not None
    assert RuntimeInstance.objects.get(pk=chatty.instance.pk).offline_at is None
    assert reaper.reap().offline == 0
    quiet.heartbeat()
    assert RuntimeInstance.objects.get(pk=quiet.instance.pk).offline_at is None


def test_a_queued_run_fails_when_its_runtime_stayed_offline_past_the_timeout(world, edge, settings):
    settings.RUNTIME_NO_RUNTIME_TIMEOUT_S = 600
    task = make_task(world.website)
    long_ago = timezone.now() - timedelta(seconds=601)
    stranded = queue_run(task, edge)
    recent = queue_run(task, edge)  # queued within the timeout: waits on
    Run.objects.filter(pk=stranded.pk).update(created_at=long_ago)
    # Another runtime, seen recently (its agent just went away): counted from its last contact, not the run's age.
    seen = make_runtime(world.marketing, "seen", last_seen=timezone.now() - timedelta(seconds=60))
    waiting = queue_run(task, seen)
    Run.objects.filter(pk=waiting.pk).update(created_at=long_ago)
    # A runtime with an online agent keeps its old runs queued (the agent is busy).
    busy = make_runtime(world.marketing, "busy")
    enroll(busy)
    queued_long = queue_run(task, busy)
    Run.objects.filter(pk=queued_long.pk).update(created_at=long_ago)
    # A run whose runtime was deleted: nothing will ever claim it.
    orphan = queue_run(task, make_runtime(world.marketing, "doomed"))
    Runtime.objects.filter(name="doomed").delete()
    Run.objects.filter(pk=orphan.pk).update(created_at=long_ago)

    assert reaper.reap().no_runtime == 2
    stranded.refresh_from_db()
    assert stranded.status == Run.Status.FAILED and stranded.error.startswith("no_runtime_available: ")
    assert "“edge”" in stranded.error and stranded.finished_at
    orphan.refresh_from_db()
    assert orphan.status == Run.Status.FAILED and orphan.error.startswith("no_runtime_available: ")
    for run in (recent, waiting, queued_long):
        assert Run.objects.get(pk=run.pk).status == Run.Status.QUEUED
    events = AuditEvent.objects.filter(action="run.no_runtime")
    assert {e.target_id for e in events} == {str(stranded.pk), str(orphan.pk)}
    assert all(e.actor_name == "system" for e in events)


def test_the_command_sweeps_once(world, edge):
    run = claimed_run(make_task(world.website), enroll(edge))
    out = StringIO()
    call_command("runtimes_reaper", "--once", stdout=out)
    assert "1 lost, 0 queued again" in out.getvalue()
    assert Run.objects.get(pk=run.pk).status == Run.Status.LOST


def test_opportunistic_sweeps_run_at_most_once_per_interval(world, edge, settings, monkeypatch):
    agent = enroll(edge)
    first = claimed_run(make_task(world.website), agent)  # set up with the sweeps off
    settings.RUNTIME_REAPER_INTERVAL_S = 3600
    monkeypatch.setattr(reaper, "_last_sweep", float("-inf"))
    agent.heartbeat()  # sweeps: the run's lease had expired
    assert Run.objects.get(pk=first.pk).status == Run.Status.LOST
    second = claimed_run(make_task(world.website, "Again"), agent)
    agent.heartbeat()  # within the interval: no sweep
    assert Run.objects.get(pk=second.pk).status == Run.Status.CLAIMED
    monkeypatch.setattr(reaper, "_last_sweep", float("-inf"))  # another process, same deployment: the cache says no
    agent.heartbeat()
    assert Run.objects.get(pk=second.pk).status == Run.Status.CLAIMED
