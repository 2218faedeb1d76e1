"""The run queue on the database, and the agent protocol's writes (docs/API.md "Runtime agents"; docs/DESIGN.md §6).

A run is queued on one runtime (placement). An agent of that runtime ``claim``s it: the run becomes ``claimed``
with a *lease*, a secret fencing token new at every claim, that every later call about the run presents (start,
logs, finish, heartbeats renew it). A call with a lease that is no longer the run's (the reaper declared the run
lost or queued it again, another claim took it) is refused 409 ``lease_lost`` and changes nothing: a slow or
partitioned agent can never overwrite what its successor did.

- Claim: on PostgreSQL ONE statement, ``UPDATE … WHERE id = ANY(ARRAY(SELECT … ORDER BY created_at LIMIT n FOR
  UPDATE SKIP LOCKED)) RETURNING id``: concurrent claims never wait on each other and never take the same run. On SQLite
  a plain transaction whose first statement takes the database's write lock. Claims long-poll up to ``wait_s``,
  woken by runtimes.wakeup (LISTEN/NOTIFY on PostgreSQL), never inside a transaction while waiting.
- A paused runtime, or a deleted one (its runs lost their runtime), is never claimed from.
- A claim may start its runs (``start``: ``running`` at once, no start call) and a finish may carry the last log
  batch (``lines``): a run then costs its agent one request besides its share of a batched claim.
- Log lines carry the agent's sequence numbers, per attempt from 1: a repeat is ignored, a gap refused (409
  ``seq_gap`` with ``next_seq``). Stored lines are numbered in the run's own order, shared with the server's lines
  ("Claimed by …"). A sovereign run's lines keep no message body.
- Claims, starts and finishes are written on the run (timestamps, log lines), not in the audit log: they are the
  hot path. Enrollment and token rotation are audited.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from access import audit
from access.models import hash_token
from config.actors import SYSTEM
from config.errors import Conflict, DomainError, NotFound
from resources.models import Run, RunLogLine
from runtimes import context as claim_context
from runtimes import reaper, wakeup
from runtimes.authentication import AgentPrincipal, TokenInvalid
from runtimes.models import AgentToken, EnrollmentToken, Runtime, RuntimeInstance
from runtimes.tokens import ENROLLMENT_PREFIX, issue_agent_token

logger = logging.getLogger(__name__)

MAX_CLAIM = 20
MAX_TEXT = 10_000
SQLITE_POLL_S = 0.2  # SQLite has no NOTIFY: a waiting claim looks again this often
LISTEN_POLL_S = 2.0  # PostgreSQL: a safety net behind the NOTIFY (a listener reconnecting misses some)
PAUSED_WAIT_S = 1.0  # a paused runtime's claim answers after this, so that an agent does not spin on it
SOVEREIGN_ERROR = "The run failed on a sovereign runtime: the details stay in the runtime's own log."
STEP_STATUSES = ("succeeded", "failed", "skipped", "stopped")
FINISH_STATUSES = (Run.Status.SUCCEEDED, Run.Status.FAILED, Run.Status.STOPPED)


class Refused(DomainError):
    """Bad input that is not a field error: 400 {"detail", "code"}."""

    status = 400


class SeqGap(Conflict):
    """Log lines that start after the next expected one: the agent resends from ``next_seq``."""

    def __init__(self, next_seq: int):
        super().__init__(f"Log lines are missing before this batch: send from seq {next_seq}.", code="seq_gap")
        self.next_seq = next_seq

    def payload(self) -> dict[str, Any]:
        return {**super().payload(), "next_seq": self.next_seq}


def lease_lost() -> Conflict:
    return Conflict(
        "This lease is no longer the run's (it was declared lost, queued again or finished): drop the run.",
        code="lease_lost",
    )


def _lease_s() -> timedelta:
    return timedelta(seconds=settings.RUNTIME_LEASE_S)


def _host(instance: RuntimeInstance | None) -> str:
    if instance is None:
        return "an agent"
    return instance.hostname or str(instance.pk)


def _audit_runtime(runtime: Runtime, action: str, changes: dict[str, Any]) -> None:
    """An audit event of a runtime's agents. A global runtime belongs to no tenant's log (AuditEvent needs one):
    its events go to the application log."""
    org = runtime.org
    if org is None:
        logger.info("%s of global runtime %s (%s): %s", action, runtime.name, runtime.pk, changes)
        return
    audit.record(actor=SYSTEM, action=action, tenant=org.tenant_id, org=org, target=runtime, changes=changes)


def _check_instance(principal: AgentPrincipal, instance_id: UUID | None) -> None:
    if instance_id is not None and instance_id != principal.instance.pk:
        raise Refused("This token belongs to another agent instance.", code="instance_mismatch")


# -- enrollment and tokens -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolled:
    runtime: Runtime
    instance: RuntimeInstance
    token: AgentToken
    raw_token: str


def enroll(*, enrollment_token: str, instance_id: UUID, hostname: str = "", version: str = "") -> Enrolled:
    """Exchange a one-time enrollment token for the agent's own token. The enrollment token's row is locked and
    marked used by a conditional update, so two agents racing with one token get one enrollment. An expired, used
    or unknown token is the same 400 ``enrollment_token_invalid``; an instance id enrolled on another runtime is a
    400 ``instance_taken`` (and the token stays unused)."""
    invalid = Refused(
        "This enrollment token is unknown, expired or used already: ask an Admin for a new one.",
        code="enrollment_token_invalid",
    )
    if not isinstance(enrollment_token, str) or not enrollment_token.startswith(ENROLLMENT_PREFIX):
        raise invalid
    now = timezone.now()
    with transaction.atomic():
        token = (
            EnrollmentToken.objects.select_for_update(of=("self",))
            .select_related("runtime__org")
            .filter(token_hash=hash_token(enrollment_token))
            .first()
        )
        if token is None or token.used_at is not None or token.expires_at <= now:
            raise invalid
        runtime = token.runtime
        if runtime.org is not None and runtime.org.deleted_at is not None:
            raise invalid
        if not EnrollmentToken.objects.filter(pk=token.pk, used_at__isnull=True).update(used_at=now):
            raise invalid  # SQLite took no row lock: the conditional update decides
        instance = RuntimeInstance.objects.select_for_update().filter(pk=instance_id).first()
        if instance is not None and instance.runtime_id != runtime.pk:
            raise Refused(
                "This agent instance id is enrolled on another runtime: start the agent with a new state directory.",
                code="instance_taken",
            )
        if instance is None:
            instance = RuntimeInstance.objects.create(
                id=instance_id, runtime=runtime, hostname=hostname, version=version, last_heartbeat=now
            )
        else:
            # The same agent enrolling again (its state directory was lost): its earlier tokens end here.
            instance.hostname, instance.version, instance.last_heartbeat, instance.offline_at = (
                hostname, version, now, None
            )  # fmt: skip
            instance.save(update_fields=["hostname", "version", "last_heartbeat", "offline_at"])
            AgentToken.objects.filter(instance=instance, revoked_at__isnull=True).update(revoked_at=now)
        EnrollmentToken.objects.filter(pk=token.pk).update(used_by=instance)
        Runtime.objects.filter(pk=runtime.pk).update(last_seen=now, agent_version=version)
        agent_token, raw = issue_agent_token(instance)
        _audit_runtime(
            runtime, "runtime.enroll", {"instance": str(instance.pk), "hostname": hostname, "version": version}
        )
    return Enrolled(runtime=runtime, instance=instance, token=agent_token, raw_token=raw)


def rotate(*, principal: AgentPrincipal) -> tuple[AgentToken, str]:
    """A new token for the calling agent; the one it called with keeps working RUNTIME_TOKEN_ROTATION_GRACE_S more
    (the answer may be lost on the way: the agent retries with the old one meanwhile)."""
    now = timezone.now()
    with transaction.atomic():
        old = AgentToken.objects.select_for_update().filter(pk=principal.token.pk).first()
        if old is None or old.revoked_at is not None or old.expires_at <= now:
            raise TokenInvalid()
        token, raw = issue_agent_token(principal.instance)
        grace = now + timedelta(seconds=settings.RUNTIME_TOKEN_ROTATION_GRACE_S)
        if old.expires_at > grace:
            old.expires_at = grace
            old.save(update_fields=["expires_at"])
        _audit_runtime(
            principal.runtime,
            "runtime.token_rotate",
            {"instance": str(principal.instance.pk), "old": old.prefix, "new": token.prefix},
        )
    return token, raw


# -- liveness ------------------------------------------------------------------------------------------------------


SEEN_EVERY = timedelta(seconds=1)  # a busy agent's claims write its liveness at most this often


def _seen(principal: AgentPrincipal, now: datetime, *, always: bool = False) -> None:
    """The agent called: its instance is alive, its runtime seen (the rows as the authentication read them tell
    whether they need the write: a claim in a busy loop does not commit two updates every time)."""
    instance, runtime = principal.instance, principal.runtime
    fresh = instance.last_heartbeat is not None and now - instance.last_heartbeat <= SEEN_EVERY
    if always or instance.offline_at is not None or not fresh:
        RuntimeInstance.objects.filter(pk=instance.pk).update(last_heartbeat=now, offline_at=None)
    if runtime.last_seen is None or now - runtime.last_seen > SEEN_EVERY or runtime.agent_version != instance.version:
        Runtime.objects.filter(pk=runtime.pk).update(last_seen=now, agent_version=instance.version)


@dataclass(frozen=True)
class Beat:
    cancel: list[UUID]
    lost: list[UUID]
    paused: bool


def heartbeat(*, principal: AgentPrincipal, running: list[tuple[UUID, str]], instance_id: UUID | None = None) -> Beat:
    """Renew the leases of the runs the agent says it runs (when they are still its own), and say which of them to
    cancel (a stop was requested) and which are lost (the lease is no longer the run's: drop them)."""
    _check_instance(principal, instance_id)
    now = timezone.now()
    _seen(principal, now, always=True)
    alive: dict[UUID, str] = {}
    if running:
        mine = Q()
        for run_id, lease in running:
            mine |= Q(pk=run_id, lease=lease)
        leased = Run.objects.filter(mine, runtime_id=principal.runtime.pk, status__in=Run.LEASED).exclude(lease="")
        leased.update(lease_expires_at=now + _lease_s())
        alive = dict(leased.values_list("pk", "status"))
    paused = Runtime.objects.filter(pk=principal.runtime.pk).values_list("paused", flat=True).first()
    reaper.maybe_reap()
    return Beat(
        cancel=[run_id for run_id, status in alive.items() if status == Run.Status.STOP_REQUESTED],
        lost=[run_id for run_id, _ in running if run_id not in alive],
        paused=bool(paused) if paused is not None else True,
    )


# -- claims --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    run: Run
    context: dict[str, Any]


def claim(
    *,
    principal: AgentPrincipal,
    max_runs: int = 1,
    wait_s: float = 0,
    instance_id: UUID | None = None,
    start: bool = False,
) -> list[Claimed]:
    """Up to ``max_runs`` of the runtime's queued runs, oldest first, each with its context; waiting up to
    ``wait_s`` seconds for one when none is queued. [] when nothing came (or the runtime is paused or gone).
    ``start``: the runs go straight to ``running`` in the claim's transaction (no separate start call)."""
    _check_instance(principal, instance_id)
    max_runs = max(1, min(int(max_runs), MAX_CLAIM))
    wait_s = max(0.0, min(float(wait_s), float(settings.RUNTIME_CLAIM_MAX_WAIT_S)))
    deadline = time.monotonic() + wait_s
    _seen(principal, timezone.now())
    reaper.maybe_reap()
    runtime_id = principal.runtime.pk
    poll = LISTEN_POLL_S if connection.vendor == "postgresql" else SQLITE_POLL_S
    began = timezone.now()
    with wakeup.waiting(runtime_id) as event:
        first = True
        while True:
            event.clear()  # before looking: a run queued after the look sets it again
            if not first and not _still_entitled(principal, began):
                return []
            first = False
            claimed = _claim_ready(principal, max_runs, start=start)  # the claim itself skips a paused runtime
            if claimed:
                return claimed
            paused = Runtime.objects.filter(pk=runtime_id).values_list("paused", flat=True).first()
            if paused is None:
                return []
            if paused:
                time.sleep(min(PAUSED_WAIT_S, max(0.0, deadline - time.monotonic())))
                return []
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            event.wait(min(remaining, poll))


def _still_entitled(principal: AgentPrincipal, began: datetime) -> bool:
    """Whether a claim that has been waiting since ``began`` may still take runs: its token was not revoked (or
    expired) meanwhile, and the reaper did not declare its instance offline meanwhile (an agent killed during its
    long poll leaves the request running here: it must not take runs nobody will execute). One query."""
    now = timezone.now()
    return (
        AgentToken.objects.filter(pk=principal.token.pk, revoked_at__isnull=True, expires_at__gt=now)
        .exclude(instance__offline_at__gt=began)
        .exists()
    )


def _claim_ready(principal: AgentPrincipal, max_runs: int, *, start: bool = False) -> list[Claimed]:
    """Claim what is queued now and give each run its context; a run whose context cannot be given fails."""
    runs = claim_batch(principal, max_runs, start=start)
    result = []
    for run in runs:
        try:
            result.append(Claimed(run=run, context=claim_context.build(run)))
        except claim_context.ContextError as error:
            _fail_unclaimable(run, error.problems)
    return result


def claim_batch(principal: AgentPrincipal, max_runs: int, *, start: bool = False) -> list[Run]:
    """Claim up to ``max_runs`` queued runs of the principal's runtime now (no waiting), in one transaction with
    their "Claimed by" log lines. The runs come back with task, project and org loaded. ``start``: they are
    ``running`` at once, started_at set and their "Started on" line written in the same transaction."""
    now = timezone.now()
    expires = now + _lease_s()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            ids = _claim_postgresql(principal, max_runs, now, expires, start=start)
        else:
            ids = _claim_sqlite(principal, max_runs, now, expires, start=start)
        if not ids:
            return []
        runs = list(
            Run.objects.filter(pk__in=ids).select_related("task__project__org", "instance").order_by("created_at")
        )
        host = _host(principal.instance)
        lines: list[tuple[Run, str, str]] = []
        for run in runs:
            lines.append((run, f"Claimed by {host} (attempt {run.attempt}).", RunLogLine.Level.INFO))
            if start:
                lines.append((run, f"Started on {host}.", RunLogLine.Level.INFO))
        _server_lines(lines, now)
    return runs


def _claim_postgresql(
    principal: AgentPrincipal, max_runs: int, now: datetime, expires: datetime, *, start: bool = False
) -> list[Any]:
    """ONE statement: the queued runs of a runtime that is not paused, oldest first, locked with SKIP LOCKED (a
    concurrent claim takes the next ones instead of waiting), updated and returned. ``= ANY(ARRAY(subquery))``, not
    ``IN (subquery)``: the planner may run an IN's subquery again per row (a semi-join), each run locking and
    returning the next rows, so a claim of 3 took 4; an ARRAY subquery is an init plan, run exactly once. Each run's
    lease is the SHA-256 of a secret of this claim and the run's id: different for every run, unguessable without the
    secret."""
    run_table = connection.ops.quote_name(Run._meta.db_table)
    runtime_table = connection.ops.quote_name(Runtime._meta.db_table)
    sql = f"""
        UPDATE {run_table} AS r
        SET status = %s, lease = encode(sha256(convert_to(%s || r.id::text, 'UTF8')), 'hex'),
            lease_expires_at = %s, claimed_at = %s, instance_id = %s, log_next_seq = 1,
            started_at = CASE WHEN %s THEN %s ELSE r.started_at END
        WHERE r.status = %s AND r.id = ANY(ARRAY(
            SELECT q.id FROM {run_table} AS q
            WHERE q.runtime_id = %s AND q.status = %s
              AND EXISTS (SELECT 1 FROM {runtime_table} AS rt WHERE rt.id = q.runtime_id AND NOT rt.paused)
            ORDER BY q.created_at
            LIMIT %s
            FOR UPDATE OF q SKIP LOCKED
        ))
        RETURNING r.id
    """  # noqa: S608 (table names from the models, values as parameters)
    queued = Run.Status.QUEUED
    params: list[Any] = [
        Run.Status.RUNNING if start else Run.Status.CLAIMED, secrets.token_hex(32), expires, now, principal.instance.pk,
        start, now, queued, principal.runtime.pk, queued, max_runs,
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _claim_sqlite(
    principal: AgentPrincipal, max_runs: int, now: datetime, expires: datetime, *, start: bool = False
) -> list[Any]:
    """A plain transaction. Its first statement writes (the runtime's last_seen), which takes SQLite's one write
    lock: no other claim reads the queue between this one's read and its updates."""
    if not Runtime.objects.filter(pk=principal.runtime.pk, paused=False).update(last_seen=now):
        return []
    ids = list(
        Run.objects.filter(runtime_id=principal.runtime.pk, status=Run.Status.QUEUED)
        .order_by("created_at")
        .values_list("pk", flat=True)[:max_runs]
    )
    claimed = []
    started: dict[str, Any] = {"status": Run.Status.RUNNING, "started_at": now} if start else {}
    for pk in ids:
        values: dict[str, Any] = {
            "status": Run.Status.CLAIMED, "lease": secrets.token_hex(32), "lease_expires_at": expires,
            "claimed_at": now, "instance_id": principal.instance.pk, "log_next_seq": 1, **started,
        }  # fmt: skip
        updated = Run.objects.filter(pk=pk, status=Run.Status.QUEUED).update(**values)
        if updated:
            claimed.append(pk)
    return claimed


def _fail_unclaimable(run: Run, problems: list[str]) -> None:
    """The run names what it may not have (a credential hidden since the task was saved, …): it fails with why."""
    now = timezone.now()
    with transaction.atomic():
        updated = Run.objects.filter(pk=run.pk, status__in=Run.LEASED, lease=run.lease).update(
            status=Run.Status.FAILED, finished_at=now, error=" ".join(problems)[:MAX_TEXT], lease_expires_at=None
        )
        if updated:
            _server_lines([(run, problem, RunLogLine.Level.ERROR) for problem in problems], now)


def _server_lines(lines: list[tuple[Run, str, str]], now: datetime) -> None:
    """Append the server's own lines to runs (whose rows the caller holds: claimed, locked or updated in this
    transaction), numbered after each run's last line: one query for the numbers, one insert."""
    if not lines:
        return
    run_ids = {run.pk for run, _, _ in lines}
    last = dict(
        RunLogLine.objects.filter(run_id__in=run_ids)
        .values("run_id")
        .annotate(last=Max("seq"))
        .values_list("run_id", "last")
    )
    rows = []
    for run, message, level in lines:
        last[run.pk] = (last.get(run.pk) or 0) + 1
        rows.append(RunLogLine(run_id=run.pk, seq=last[run.pk], at=now, level=level, message=message[:MAX_TEXT]))
    RunLogLine.objects.bulk_create(rows)


# -- a claimed run: start, logs, finish ----------------------------------------------------------------------------


def fenced_run(
    runtime_id: Any, run_id: UUID, lease: str, *, finished_ok: bool = False, related: tuple[str, ...] = ()
) -> Run:
    """The run, locked (with ``related`` read along, unlocked), when ``lease`` is its current lease: 404 for a run of
    another runtime (or none), 409 ``lease_lost`` for a lease that is no longer the run's. Every agent call about a
    run asks this (workload identity tokens too). Call inside transaction.atomic."""
    run = Run.objects.select_for_update(of=("self",)).select_related(*related).filter(pk=run_id).first()
    if run is None or run.runtime_id != runtime_id:
        raise NotFound("No such run on this runtime.")
    same = bool(run.lease) and isinstance(lease, str) and hmac.compare_digest(run.lease, lease)
    if not same or not (run.status in Run.LEASED or (finished_ok and run.status in FINISHED_BY_AGENT)):
        raise lease_lost()
    return run


FINISHED_BY_AGENT = (Run.Status.SUCCEEDED, Run.Status.FAILED, Run.Status.STOPPED)


def start(*, principal: AgentPrincipal, run_id: UUID, lease: str) -> bool:
    """The agent starts executing: ``claimed`` → ``running`` (a repeat changes nothing). Returns whether to cancel."""
    now = timezone.now()
    with transaction.atomic():
        run = fenced_run(principal.runtime.pk, run_id, lease)
        run.lease_expires_at = now + _lease_s()
        fields = ["lease_expires_at"]
        if run.status == Run.Status.CLAIMED:
            run.status, run.started_at = Run.Status.RUNNING, now
            fields += ["status", "started_at"]
            _server_lines([(run, f"Started on {_host(principal.instance)}.", RunLogLine.Level.INFO)], now)
        run.save(update_fields=fields)
    return run.status == Run.Status.STOP_REQUESTED


@dataclass(frozen=True)
class LogLine:
    seq: int
    at: datetime
    level: str
    message: str


def _check_batch(lines: list[LogLine]) -> None:
    if len(lines) > settings.RUNTIME_LOG_BATCH_MAX:
        raise Refused(f"At most {settings.RUNTIME_LOG_BATCH_MAX} lines per batch.", code="batch_too_large")
    seqs = [line.seq for line in lines]
    if any(b != a + 1 for a, b in itertools.pairwise(seqs)):
        raise Refused("The lines of a batch must have consecutive seq numbers, in order.", code="seq_order")


def _store_lines(run: Run, lines: list[LogLine]) -> None:
    """Store the agent's lines from the run's next expected seq on, on the locked ``run`` (its log_next_seq set,
    not saved): a repeated line is ignored, a batch starting after it a 409 ``seq_gap``. A sovereign run's lines
    keep no message."""
    fresh = [line for line in lines if line.seq >= run.log_next_seq]
    if fresh and fresh[0].seq != run.log_next_seq:
        raise SeqGap(run.log_next_seq)
    if fresh:
        last = run.log_lines.aggregate(last=Max("seq"))["last"] or 0
        RunLogLine.objects.bulk_create(
            RunLogLine(
                run_id=run.pk,
                seq=last + number,
                at=line.at,
                level=line.level,
                message="" if run.sovereign else line.message[:MAX_TEXT],
            )
            for number, line in enumerate(fresh, start=1)
        )
        run.log_next_seq = fresh[-1].seq + 1


def append_logs(*, principal: AgentPrincipal, run_id: UUID, lease: str, lines: list[LogLine]) -> tuple[int, bool]:
    """Store the agent's lines from the run's next expected seq on (a repeated line is ignored; a batch starting
    after it is a 409 ``seq_gap``), renew the lease. Returns (next seq, whether to cancel)."""
    _check_batch(lines)
    now = timezone.now()
    with transaction.atomic():
        run = fenced_run(principal.runtime.pk, run_id, lease)
        _store_lines(run, lines)
        run.lease_expires_at = now + _lease_s()
        run.save(update_fields=["log_next_seq", "lease_expires_at"])
    return run.log_next_seq, run.status == Run.Status.STOP_REQUESTED


@dataclass(frozen=True)
class StepResult:
    index: int
    status: str
    ms: int
    error: str = ""


def finish(
    *,
    principal: AgentPrincipal,
    run_id: UUID,
    lease: str,
    status: str,
    error: str = "",
    steps: list[StepResult] | None = None,
    log_location: str = "",
    lines: list[LogLine] | None = None,
) -> Run:
    """The agent's result. A run whose stop was requested finishes ``stopped`` whatever the agent says; a sovereign
    run keeps metadata only (a generic error, no step errors). Finishing again with the same lease answers the
    run as it is (the first answer may have been lost on the way). ``lines``: the agent's last log batch, stored
    first as append_logs does, in the same transaction: a seq_gap finishes nothing."""
    if status not in FINISH_STATUSES:
        raise Refused(f"Give one of: {', '.join(FINISH_STATUSES)}.", code="invalid_status")
    _check_batch(lines or [])
    now = timezone.now()
    with transaction.atomic():
        run = fenced_run(principal.runtime.pk, run_id, lease, finished_ok=True)
        if run.status in Run.FINISHED:
            return run  # its lines were stored with the first finish (or refused with it)
        if any(not 0 <= step.index < len(run.steps or []) for step in steps or []):
            raise Refused("A step result names a step the run does not have.", code="invalid_step")
        _store_lines(run, lines or [])
        final = Run.Status.STOPPED if run.status == Run.Status.STOP_REQUESTED else status
        results = []
        for step in steps or []:
            result: dict[str, Any] = {"index": step.index, "status": step.status, "ms": step.ms}
            if step.error and not run.sovereign:
                result["error"] = step.error[:MAX_TEXT]
            results.append(result)
        if run.sovereign:
            error = SOVEREIGN_ERROR if final == Run.Status.FAILED else ""
        run.status, run.finished_at, run.lease_expires_at = final, now, None
        run.error, run.step_results, run.log_location = error[:MAX_TEXT], results, log_location[:500]
        run.save(
            update_fields=[
                "status", "finished_at", "lease_expires_at", "error", "step_results", "log_location", "log_next_seq",
            ]
        )  # fmt: skip
        took = f" in {(now - run.started_at).total_seconds():.1f} s" if run.started_at else ""
        level = RunLogLine.Level.INFO if final == Run.Status.SUCCEEDED else RunLogLine.Level.WARNING
        _server_lines([(run, f"Finished {run.get_status_display()}{took} on {_host(principal.instance)}.", level)], now)
    return run
