"""Helpers of the queue and agent API tests (tests/runtimes/test_agent_api*.py, test_queue*.py, test_reaper*.py):
runtimes, enrolled agents (an API client with the agent's own token) and runs queued directly on a runtime (the
placement in run_task is another part's)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections, connection
from rest_framework.test import APIClient

from config.actors import SYSTEM
from orgs.models import Organization, Project
from resources import services
from resources.models import Run, RunLogLine, Task
from resources.services.tasks import log as run_log
from runtimes import queue
from runtimes.models import Runtime, RuntimeInstance
from runtimes.tokens import issue_enrollment_token

BASE = "/api/v1/runtime-agent/"


def make_runtime(org: Organization | None, name: str = "edge", **fields: Any) -> Runtime:
    kind = Runtime.Kind.LOCAL if org is not None else Runtime.Kind.GLOBAL
    return Runtime.objects.create(org=org, name=name, kind=kind, **fields)


@dataclass
class Agent:
    runtime: Runtime
    instance: RuntimeInstance
    token: str
    client: APIClient

    def post(self, path: str, body: Any = None, **extra: Any) -> Any:
        return self.client.post(BASE + path, body if body is not None else {}, format="json", **extra)

    def claim(self, max: int = 1, wait_s: float = 0) -> Any:
        return self.post("claim", {"instance": str(self.instance.pk), "max": max, "wait_s": wait_s})

    def heartbeat(self, running: list[tuple[Any, str]] = ()) -> Any:
        body = {"instance": str(self.instance.pk), "running": [{"run": str(r), "lease": lease} for r, lease in running]}
        return self.post("heartbeat", body)


def agent_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def enroll(runtime: Runtime, hostname: str = "host-1", instance_id: Any = None) -> Agent:
    _, raw = issue_enrollment_token(runtime, actor=SYSTEM)
    enrolled = queue.enroll(
        enrollment_token=raw, instance_id=instance_id or uuid.uuid4(), hostname=hostname, version="1.0"
    )
    return Agent(runtime, enrolled.instance, enrolled.raw_token, agent_client(enrolled.raw_token))


def make_task(project: Project, name: str = "Sync", steps: list[Any] | None = None, **fields: Any) -> Task:
    steps = steps if steps is not None else [{"type": "log", "message": "hi"}]
    task = services.create_task(actor=SYSTEM, project=project, name=name, steps=steps)
    if fields:
        Task.objects.filter(pk=task.pk).update(**fields)
        task.refresh_from_db()
    return task


def queue_run(task: Task, runtime: Runtime | None, **fields: Any) -> Run:
    """A run queued on ``runtime`` as placement will queue it, with its "Queued by" line."""
    run = Run.objects.create(
        task=task,
        steps=task.steps,
        runtime=runtime,
        runtime_name=runtime.name if runtime else "",
        sovereign=runtime.sovereign if runtime else False,
        **fields,
    )
    run_log(run, f"Queued with {len(task.steps)} step(s).")
    return run


def lines_of(run: Run) -> list[tuple[int, str, str]]:
    return list(RunLogLine.objects.filter(run=run).order_by("seq").values_list("seq", "level", "message"))


def together(workers: list[Callable[[], Any]]) -> tuple[list[Any], list[BaseException]]:
    """Start every worker at the same instant; their results and what they raised."""
    barrier = threading.Barrier(len(workers))
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def wrap(work: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            result = work()
            with lock:
                results.append(result)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=wrap, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    close_old_connections()
    return results, errors
