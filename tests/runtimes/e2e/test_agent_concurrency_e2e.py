"""PostgreSQL: two agent processes drain 200 queued runs; every run is executed exactly once (the claim is one
``UPDATE … FOR UPDATE SKIP LOCKED`` statement: two agents never take the same run), and neither holds more runs
than its ``--concurrency`` (a claim never hands out more than it was asked for)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from resources.models import Run
from tests.runtimes.e2e.conftest import Canopy
from tests.runtimes.queue_helpers import enroll, make_runtime, make_task, queue_run

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

RUNS = 200
CONCURRENCY = 4


def test_two_agents_execute_every_one_of_200_runs_exactly_once(
    postgres_only: Any, canopy: Canopy, target: HTTPServer, start_agent: Any
) -> None:
    runtime = make_runtime(canopy.world.marketing, "edge")
    hits: Counter[str] = Counter()
    lock = threading.Lock()

    def count(request: Request) -> Response:
        with lock:
            hits[request.args["run"]] += 1
        return Response("ok")

    target.expect_request("/hit").respond_with_handler(count)
    task = make_task(canopy.world.website, "Side effect", steps=[
        {"type": "http", "method": "POST", "url": target.url_for("/hit") + "?run={{ run.id }}"},
        {"type": "log", "message": "done {{ run.id }}"},
    ])  # fmt: skip
    runs = [queue_run(task, runtime) for _ in range(RUNS)]
    agents = [start_agent(runtime, "--concurrency", str(CONCURRENCY), "--name", f"agent-{n}") for n in (1, 2)]

    deadline = time.monotonic() + 180
    while Run.objects.filter(pk__in=[r.pk for r in runs]).exclude(status__in=Run.FINISHED).exists():
        assert time.monotonic() < deadline, Counter(Run.objects.values_list("status", flat=True))
        assert all(agent.process.poll() is None for agent in agents)
        time.sleep(0.5)
    for agent in agents:
        assert agent.terminate() == 0

    finished = Run.objects.filter(pk__in=[r.pk for r in runs]).select_related("instance")
    assert Counter(run.status for run in finished) == {Run.Status.SUCCEEDED: RUNS}
    assert hits == {str(run.pk): 1 for run in runs}  # each run's side effect happened once
    by_agent = Counter(run.instance.hostname for run in finished)
    assert set(by_agent) == {"agent-1", "agent-2"} and sum(by_agent.values()) == RUNS
    # Neither agent ever held more runs than its --concurrency.
    for name in by_agent:
        edges = sorted(
            [(run.claimed_at, 1) for run in finished if run.instance.hostname == name]
            + [(run.finished_at, -1) for run in finished if run.instance.hostname == name]
        )
        in_hand = peak = 0
        for _, step in edges:
            in_hand += step
            peak = max(peak, in_hand)
        assert peak <= CONCURRENCY, (name, peak)


def test_a_claim_takes_no_more_runs_than_asked(postgres_only: Any, world: Any) -> None:
    runtime = make_runtime(world.marketing, "edge")
    agent = enroll(runtime)
    task = make_task(world.website)
    for _ in range(30):
        queue_run(task, runtime)
    assert len(agent.claim(max=4).json()["runs"]) == 4
    assert len(agent.claim(max=20).json()["runs"]) == 20
    assert Run.objects.filter(runtime=runtime, status=Run.Status.QUEUED).count() == 6
