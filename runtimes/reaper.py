"""The reaper: what happens when agents stop answering (docs/DESIGN.md §6; README "Runtimes").

One sweep (``reap``):
- a leased run (claimed, running, stop requested) whose lease expired is ``lost``: its agent stopped renewing it
  (killed, partitioned, starved). When its task says it is safe to run again (``retry_on_lost``) and this was its
  first attempt, it is queued once more instead (attempt 2, the lease cleared, waiting agents woken); a run whose
  stop was requested is never queued again;
- an instance with no heartbeat for RUNTIME_OFFLINE_AFTER_S is marked offline (``offline_at``; its next call
  clears it);
- a queued run whose runtime had no online instance for RUNTIME_NO_RUNTIME_TIMEOUT_S — counted from the later of
  the run's creation and the runtime's last contact — fails with ``no_runtime_available``, as does a queued run
  whose runtime was deleted.

These claim-less changes are audited (``run.lost``, ``run.requeue``, ``run.no_runtime``, by the system). Every
change is a conditional update that re-checks what made the run a candidate, so a heartbeat renewing a lease at the
same moment wins or loses cleanly, never half. On PostgreSQL one sweep runs at a time
(``pg_try_advisory_xact_lock``: the others skip theirs). ``manage.py runtimes_reaper`` sweeps in a loop; claims and
heartbeats also sweep, at most every RUNTIME_REAPER_INTERVAL_S per deployment (``maybe_reap``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from access import audit
from config.actors import SYSTEM
from resources.models import Run, RunLogLine
from runtimes import wakeup
from runtimes.models import RuntimeInstance

logger = logging.getLogger(__name__)

ADVISORY_LOCK = 0x63616E6F7079  # "canopy": the reaper's PostgreSQL advisory lock key
BATCH = 500  # runs per kind and sweep: a storm is reaped over a few sweeps, each transaction short
NO_RUNTIME = "no_runtime_available"
LOST_ERROR = (
    "The runtime stopped answering: its agent did not renew the lease (stopped, killed or cut off). Whether the "
    "steps ran is unknown."
)


@dataclass
class Reaped:
    lost: int = 0
    requeued: int = 0
    offline: int = 0
    no_runtime: int = 0
    skipped: bool = False  # another sweep held the lock

    def __str__(self) -> str:
        if self.skipped:
            return "another sweep is running"
        return (
            f"{self.lost} lost, {self.requeued} queued again, {self.offline} instance(s) offline, "
            f"{self.no_runtime} failed with no runtime"
        )


def reap(now: datetime | None = None) -> Reaped:
    """One sweep (see the module's docstring), in one transaction."""
    now = now or timezone.now()
    result = Reaped()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ADVISORY_LOCK])
                if not cursor.fetchone()[0]:
                    return Reaped(skipped=True)
        _expired_leases(now, result)
        _offline_instances(now, result)
        _no_runtime(now, result)
    return result


_last_sweep = 0.0
_sweep_lock = threading.Lock()


def maybe_reap() -> Reaped | None:
    """Sweep when none ran for RUNTIME_REAPER_INTERVAL_S: cheap checks first (this process's clock, then one cache
    key shared by the deployment's processes), so that a busy API sweeps once per interval, not per request.
    0 turns these sweeps off (the command sweeps). Never raises: the caller's answer matters more."""
    global _last_sweep
    interval = settings.RUNTIME_REAPER_INTERVAL_S
    if interval <= 0:
        return None
    with _sweep_lock:
        if time.monotonic() - _last_sweep < interval:
            return None
        _last_sweep = time.monotonic()
    if not cache.add("runtimes:reaper:sweep", 1, timeout=interval):
        return None
    try:
        return reap()
    except Exception:
        logger.exception("An opportunistic reaper sweep failed.")
        return None


def _audit(run: Run, action: str, changes: dict[str, Any]) -> None:
    org = run.task.project.org
    audit.record(actor=SYSTEM, action=action, tenant=org.tenant_id, org=org, target=run, changes=changes)


def _line(run: Run, message: str, level: str, now: datetime) -> None:
    last = run.log_lines.order_by("-seq").values_list("seq", flat=True).first() or 0
    RunLogLine.objects.create(run=run, seq=last + 1, at=now, level=level, message=message)


def _candidates(queryset: Any) -> Any:
    """Rows a concurrent sweep or call holds are left for the next sweep (PostgreSQL)."""
    if connection.vendor == "postgresql":
        return queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset


def _expired_leases(now: datetime, result: Reaped) -> None:
    expired = _candidates(
        Run.objects.filter(status__in=Run.LEASED, lease_expires_at__lt=now)
        .select_related("task__project__org", "instance")
        .order_by("lease_expires_at")[:BATCH]
    )
    for run in expired:
        # Still what made it a candidate: the same lease, still expired (a heartbeat may have just renewed it).
        still = Run.objects.filter(pk=run.pk, status=run.status, lease=run.lease, lease_expires_at__lt=now)
        host = (run.instance.hostname or str(run.instance.pk)) if run.instance else "its agent"
        since = f"{(now - run.lease_expires_at).total_seconds():.0f} s" if run.lease_expires_at else "a while"
        requeue = (
            run.task.retry_on_lost
            and run.attempt == 1
            and run.status != Run.Status.STOP_REQUESTED
            and run.runtime_id is not None
        )
        if requeue:
            if not still.update(
                status=Run.Status.QUEUED, attempt=F("attempt") + 1, lease="", lease_expires_at=None, claimed_at=None,
                instance=None, started_at=None, log_next_seq=1, step_results=[],
            ):  # fmt: skip
                continue
            _line(
                run, f"Lost contact with {host} (lease expired {since} ago): queued again, attempt "
                f"{run.attempt + 1} (the task allows retries).", RunLogLine.Level.WARNING, now,
            )  # fmt: skip
            _audit(run, "run.requeue", {"task": run.task.name, "attempt": run.attempt + 1, "instance": host})
            wakeup.wake(run.runtime_id)
            result.requeued += 1
        else:
            if not still.update(
                status=Run.Status.LOST, finished_at=now, error=LOST_ERROR, lease="", lease_expires_at=None
            ):
                continue
            _line(run, f"Lost contact with {host} (lease expired {since} ago).", RunLogLine.Level.ERROR, now)
            _audit(run, "run.lost", {"task": run.task.name, "attempt": run.attempt, "instance": host})
            result.lost += 1


def _offline_instances(now: datetime, result: Reaped) -> None:
    cutoff = now - timedelta(seconds=settings.RUNTIME_OFFLINE_AFTER_S)
    result.offline = RuntimeInstance.objects.filter(
        Q(last_heartbeat__lt=cutoff) | Q(last_heartbeat__isnull=True, created_at__lt=cutoff),
        offline_at__isnull=True,
    ).update(offline_at=now)


def _no_runtime(now: datetime, result: Reaped) -> None:
    timeout = settings.RUNTIME_NO_RUNTIME_TIMEOUT_S
    cutoff = now - timedelta(seconds=timeout)
    online = RuntimeInstance.objects.filter(
        runtime_id=OuterRef("runtime_id"),
        offline_at__isnull=True,
        last_heartbeat__gte=now - timedelta(seconds=settings.RUNTIME_OFFLINE_AFTER_S),
    )
    stranded = _candidates(
        Run.objects.filter(status=Run.Status.QUEUED, created_at__lt=cutoff)
        .filter(
            Q(runtime__isnull=True)
            | (~Exists(online) & (Q(runtime__last_seen__isnull=True) | Q(runtime__last_seen__lt=cutoff)))
        )
        .select_related("task__project__org", "runtime")
        .order_by("created_at")[:BATCH]
    )
    minutes = max(1, round(timeout / 60))
    for run in stranded:
        if run.runtime is None:
            why = "the run has no runtime (it was deleted, or none was placed)."
        else:
            why = f"no agent of runtime “{run.runtime.name}” was online for {minutes} minute(s) while it waited."
        error = f"{NO_RUNTIME}: {why}"
        if not Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).update(
            status=Run.Status.FAILED, finished_at=now, error=error
        ):
            continue
        _line(run, f"Failed: {why}", RunLogLine.Level.ERROR, now)
        _audit(run, "run.no_runtime", {"task": run.task.name, "runtime": run.runtime_name or None})
        result.no_runtime += 1
