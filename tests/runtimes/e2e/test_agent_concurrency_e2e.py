"""PostgreSQL: two agent processes drain 200 queued runs; every run is executed exactly once (the claim is one
``UPDATE … FOR UPDATE SKIP LOCKED`` statement: two agents never take the same run)."""

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
from tests.runtimes.queue_helpers import make_runtime, make_task, queue_run

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

RUNS = int(__import__("os").environ.get("E2E_RUNS", "200"))


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
    agents = [start_agent(runtime, "--concurrency", "4", "--name", f"agent-{n}") for n in (1, 2)]

    deadline = time.monotonic() + 180
    while Run.objects.filter(pk__in=[r.pk for r in runs]).exclude(status__in=Run.FINISHED).exists():
        assert time.monotonic() < deadline, Counter(Run.objects.values_list("status", flat=True))
        assert all(agent.process.poll() is None for agent in agents)
        time.sleep(0.5)
    for agent in agents:
        assert agent.terminate() == 0
    open("/tmp/agent1.log", "w").write(agents[0].text)

    finished = Run.objects.filter(pk__in=[r.pk for r in runs]).select_related("instance")
    assert Counter(run.status for run in finished) == {Run.Status.SUCCEEDED: RUNS}
    assert hits == {str(run.pk): 1 for run in runs}  # each run's side effect happened once
    by_agent = Counter(run.instance.hostname for run in finished)
    assert set(by_agent) == {"agent-1", "agent-2"} and sum(by_agent.values()) == RUNS
