"""Thirty days of finished runs for the demo's tasks, so that `make run` opens dashboards with a history to show
(issue #12's roll-up: runs per day, failure rates, where the work ran).

History is not made through the services: a run finishes when an agent reports it, and the past cannot be queued.
The rows are written as an agent's reports would have left them (placed on the runtime the task runs on today,
started, finished, failed ones with an error), deterministically (a fixed seed), once: a tenant whose runs already
reach back a day is left alone.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.utils import timezone

from orgs.models import Tenant
from resources.models import Run, Task
from runtimes.placement import place

DAYS = 30
SEED = 12
FAILURES = {"Carrier sync": 0.25}  # a flaky partner API: the dashboard's failure rate has something to say
DEFAULT_FAILURE = 0.08


def seed_history(tenant: Tenant) -> int:
    """Finished runs over the last ``DAYS`` days for every task of ``tenant``; the number written."""
    now = timezone.now()
    tasks = list(Task.objects.filter(project__org__tenant=tenant).select_related("project").order_by("name"))
    if not tasks or Run.objects.filter(task__in=tasks, created_at__lt=now - timedelta(days=1)).exists():
        return 0
    rng = random.Random(SEED)  # noqa: S311 - demo data, reproducible on purpose
    runs: list[Run] = []
    queued_at: list[datetime] = []
    for task in tasks:
        runtime = place(task)  # where it runs today, as placement decides for a new run
        failure = FAILURES.get(task.name, DEFAULT_FAILURE)
        for day in range(DAYS, 0, -1):
            for _ in range(rng.randint(1, 4)):
                queued = now - timedelta(days=day, seconds=rng.randint(0, 86_000))
                failed = rng.random() < failure
                runs.append(
                    Run(
                        task=task,
                        status=Run.Status.FAILED if failed else Run.Status.SUCCEEDED,
                        steps=task.steps,
                        error="HTTP 503 from the partner API after 3 attempts" if failed else "",
                        started_at=queued + timedelta(seconds=2),
                        finished_at=queued + timedelta(seconds=rng.randint(5, 90)),
                        runtime=runtime,
                        runtime_name=runtime.name,
                        sovereign=runtime.sovereign,
                    )
                )
                queued_at.append(queued)
    Run.objects.bulk_create(runs)
    # created_at is auto_now_add (the insert sets it to now): the past is written once the rows exist.
    for run, queued in zip(runs, queued_at, strict=True):
        run.created_at = queued
    Run.objects.bulk_update(runs, ["created_at"], batch_size=500)
    return len(runs)
