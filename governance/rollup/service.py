"""The roll-up of a subtree (issue #12 §1): for an org and a viewer, the org's own objects ("Here"), each child
subtree, the rest of the children together ("Elsewhere below") and the totals, over a period of 24 h, 7 days or 30
days.

What is counted, per part of the subtree (every number narrowed by ``access.policy.visible`` for the viewer, with
the capability the console's own list of that kind asks for):

- organizations (``org.view``), projects (``project.view``), integration tasks (``task.view``, shares included),
  failing tasks (a visible task whose last finished run failed or was lost, that run in the period: a task that
  failed long ago and never ran since is not "failing" this week; the period bounds the work, too);
- runs created in the period by status (``task.view``: a run goes with its task);
- local runtimes declared in the part, online / offline / other (paused or never connected) (``runtime.view``);
- people and teams holding a role on an org of the part (``member.view`` there), pending invitations
  (``member.manage`` there, as the invitations page) and role grants (on orgs and projects) expiring within 30 days
  (``member.view``);

plus, for the whole subtree, runs per day (per hour over 24 h) by status and runs by runtime (global or local).

Cost: a fixed number of aggregate queries, whatever the size of the subtree (tests/governance/test_rollup_budget.py).
Each groups its rows by part with one CASE over the nested set: ``lft = org.lft`` is "Here", ``lft`` between a
shown child's ``lft`` and ``rght`` is that child, anything else below is "Elsewhere below". The children shown by
name are the ``CHILD_ROWS`` largest visible ones (by subtree size, which the nested set gives without a query per
child); with more children the rest share the "Elsewhere below" row, which also takes what the viewer sees under a
child they may not open themselves. So 10 000 direct children cost the same queries as three, with a CASE of at most
``CHILD_ROWS`` branches.

The result is kept (governance/rollup/snapshots.py, the read model) per org, period and *audience*, a digest of what
the viewer may see, and served again while it is fresh (``ROLLUP_SNAPSHOT_MAX_AGE_S``, 300 s by default) and its org
has not moved: one query instead of the aggregates, and every viewer who may see the same (every tenant
administrator, say) shares it. A refresher keeps the roll-ups read lately fresh; pages say how old the figures are.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import Case, Count, Exists, F, IntegerField, Model, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from access import fences, policy
from access.models import Invitation, OrgTeamGrant, OrgUserGrant, ProjectTeamGrant, ProjectUserGrant
from config.actors import SYSTEM
from config.groupings import COUNT, DISTINCT, SUM, Way, several_ways
from governance.rollup import snapshots
from orgs.models import Organization, Project
from resources.models import Run, Task
from runtimes.models import Runtime

PERIODS: dict[str, timedelta] = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_PERIOD = "7d"
CHILD_ROWS = 25  # children shown by name; the others share the "Elsewhere below" row
RUNTIME_ROWS = 12  # runtimes named in the "where the work runs" chart; the others are summed
EXPIRING_DAYS = 30

RUN_STATUSES = [status.value for status in Run.Status]
FAILED = ("failed", "lost")  # a run that did not do its work
SETTLED = ("succeeded", "failed", "lost")  # the runs a failure rate is taken over (a stop is nobody's failure)

HERE, ELSEWHERE = 0, -1


class BadPeriod(ValueError):
    """The period is none of ``PERIODS``."""


def parse_period(value: str | None) -> str:
    """``value`` if it names a period (absent: the default), else ``BadPeriod``."""
    if value is None or value == "":
        return DEFAULT_PERIOD
    if value not in PERIODS:
        raise BadPeriod(f"Choose a period among {', '.join(PERIODS)}.")
    return value


@dataclass
class Counts:
    orgs: int = 0
    projects: int = 0
    tasks: int = 0
    failing_tasks: int = 0
    runs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RUN_STATUSES, 0))
    runtimes_online: int = 0
    runtimes_offline: int = 0
    runtimes_other: int = 0  # paused or never connected
    people: int = 0
    teams: int = 0
    invitations: int = 0
    expiring_grants: int = 0

    @property
    def runs_total(self) -> int:
        return sum(self.runs.values())

    @property
    def runs_failed(self) -> int:
        return sum(self.runs[s] for s in FAILED)

    @property
    def runs_active(self) -> int:
        return sum(self.runs[s] for s in Run.ACTIVE)

    @property
    def failure_rate(self) -> float | None:
        """Failed or lost runs over settled ones (None without a settled run)."""
        settled = sum(self.runs[s] for s in SETTLED)
        return self.runs_failed / settled if settled else None

    @property
    def failure_percent(self) -> int | None:
        rate = self.failure_rate
        return None if rate is None else round(rate * 100)

    def add(self, other: Counts) -> None:
        for name in ("orgs", "projects", "tasks", "failing_tasks", "runtimes_online", "runtimes_offline",
                     "runtimes_other", "invitations", "expiring_grants"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for status, n in other.runs.items():
            self.runs[status] += n


@dataclass
class Row:
    """A part of the subtree: ``kind`` is ``here`` (the org's own objects), ``child`` (a child and its subtree,
    ``org_id`` set: it opens that child's roll-up) or ``elsewhere`` (the other children together)."""

    kind: str
    label: str
    org_id: Any = None
    size: int = 0  # organizations in the part (the nested set's, deleted ones included; for ordering only)
    counts: Counts = field(default_factory=Counts)


@dataclass
class Rollup:
    org_id: Any
    org_name: str
    period: str
    since: datetime
    computed_at: datetime
    rows: list[Row]
    total: Counts
    more_children: bool  # children beyond CHILD_ROWS are summed in the "Elsewhere below" row
    per_day: list[tuple[datetime, dict[str, int]]]  # runs by status per day (per hour over 24 h), oldest first
    step: str  # "day" or "hour"
    runtimes: list[dict[str, Any]]  # {"name", "kind", "runs", "failed"}, most runs first
    cache_seconds: int = 0  # the longest a change may take to show (the snapshots' greatest age)
    from_snapshot: bool = False  # served from what was kept for the viewer's audience (snapshots.py)

    def as_payload(self) -> dict[str, Any]:
        """The roll-up as JSON values (a snapshot's row)."""
        return {
            "org_id": str(self.org_id),
            "org_name": self.org_name,
            "period": self.period,
            "since": self.since.isoformat(),
            "computed_at": self.computed_at.isoformat(),
            "rows": [
                {
                    "kind": r.kind,
                    "label": r.label,
                    "org_id": str(r.org_id) if r.org_id else None,
                    "size": r.size,
                    "counts": asdict(r.counts),
                }
                for r in self.rows
            ],
            "total": asdict(self.total),
            "more_children": self.more_children,
            "per_day": [[at.isoformat(), runs] for at, runs in self.per_day],
            "step": self.step,
            "runtimes": self.runtimes,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any], **extra: Any) -> Rollup:
        return cls(
            org_id=UUID(data["org_id"]),
            org_name=data["org_name"],
            period=data["period"],
            since=datetime.fromisoformat(data["since"]),
            computed_at=datetime.fromisoformat(data["computed_at"]),
            rows=[
                Row(r["kind"], r["label"], UUID(r["org_id"]) if r["org_id"] else None, r["size"], Counts(**r["counts"]))
                for r in data["rows"]
            ],
            total=Counts(**data["total"]),
            more_children=data["more_children"],
            per_day=[(datetime.fromisoformat(at), runs) for at, runs in data["per_day"]],
            step=data["step"],
            runtimes=data["runtimes"],
            **extra,
        )

    @property
    def children(self) -> list[Row]:
        return [row for row in self.rows if row.kind == "child"]


# -- the public entry point ----------------------------------------------------------------------------------------


def rollup(viewer: Any, org: Organization, period: str = DEFAULT_PERIOD, *, use_cache: bool = True) -> Rollup:
    """The roll-up of ``org``'s subtree as ``viewer`` may see it (the caller has checked ``org.view`` on ``org``):
    the snapshot of the viewer's audience while it is fresh (snapshots.py: one query), else computed now and kept.
    ``use_cache=False`` computes it whatever is kept."""
    period = parse_period(period)
    audience = audience_of(viewer, org.tenant_id)
    if use_cache:
        snapshot = snapshots.read(org, period, audience)
        if snapshot is not None:
            return Rollup.from_payload(snapshot.payload, cache_seconds=_max_age(), from_snapshot=True)
    return _computed_and_kept(viewer, org, period, audience)


#: Every (capability, model) the roll-up narrows by ``policy.visible`` for its viewer: what the viewer's audience
#: digests (tests/governance/test_rollup_snapshots.py checks that ``compute`` asks nothing else of the policy).
VISIBILITY: tuple[tuple[str, type[Model]], ...] = (
    ("org.view", Organization),
    ("project.view", Project),
    ("task.view", Task),
    ("runtime.view", Runtime),
    ("member.view", Organization),
    ("member.manage", Organization),
)


def audience_of(viewer: Any, tenant_id: UUID) -> str:
    """A digest of what ``viewer`` may see of the tenant, in this request (fences included): the SQL and parameters
    of each of ``VISIBILITY`` narrowed for them. Viewers with the same digest see the same roll-up. The tenant's
    administrators (unfenced) see all of it whatever else they hold, so they share one audience. No query when the
    viewer's grants are loaded (the page's permission check loads them)."""
    if policy.sees_whole_tenant(viewer, tenant_id):
        return hashlib.sha256(f"whole tenant {tenant_id}".encode()).hexdigest()
    parts = []
    for capability, model in VISIBILITY:
        visible = policy.visible(viewer, capability, model._default_manager.all())
        try:
            sql, params = visible.query.sql_with_params()
        except EmptyResultSet:  # nothing visible
            sql, params = "none", ()
        parts.append(f"{capability}|{sql}|{params!r}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _computed_and_kept(viewer: Any, org: Organization, period: str, audience: str) -> Rollup:
    started = time.perf_counter()
    result = compute(viewer, org, period)
    took = round((time.perf_counter() - started) * 1000)
    user = viewer if viewer is not SYSTEM else None
    context = fences.context_of(viewer).as_session() if user is not None else {}
    snapshots.store(org, period, audience, result.as_payload(), computed_at=result.computed_at, compute_ms=took,
                    viewer=user, auth_context=context)  # fmt: skip
    return replace(result, cache_seconds=_max_age())


def refresh_snapshots(*, limit: int | None = None) -> dict[str, int]:
    """One pass of the refresher (``manage.py refresh_rollups``): each snapshot read lately and due computed again
    as the viewer it was computed for, authenticated as then (one who may no longer open the org: dropped; one
    whose audience changed: kept under the new one); the unread dropped. Answers ``refreshed``, ``dropped`` and
    ``ms``, the slowest computation."""
    due, dropped = snapshots.due(limit=limit)
    refreshed = slowest = 0
    for snapshot in due:
        viewer = snapshot.computed_for if snapshot.computed_for is not None else SYSTEM
        if viewer is not SYSTEM:
            fences.attach(viewer, fences.AuthContext.from_session(snapshot.auth_context))
        if not policy.can(viewer, "org.view", snapshot.org):
            snapshots.forget(snapshot)
            dropped += 1
            continue
        audience = audience_of(viewer, snapshot.org.tenant_id)
        if audience != snapshot.audience:  # what they may see changed since: the old audience's row goes
            snapshots.forget(snapshot)
        started = time.perf_counter()
        _computed_and_kept(viewer, snapshot.org, snapshot.period, audience)
        slowest = max(slowest, round((time.perf_counter() - started) * 1000))
        refreshed += 1
    return {"refreshed": refreshed, "dropped": dropped, "ms": slowest}


def _max_age() -> int:
    return int(snapshots.max_age().total_seconds())


# -- the computation -----------------------------------------------------------------------------------------------


def compute(viewer: Any, org: Organization, period: str) -> Rollup:
    if connection.vendor != "postgresql":
        return _compute(viewer, org, period)
    with transaction.atomic():
        # PostgreSQL's JIT compiles a big aggregate (costed high at 100k orgs) for ~130 ms, longer than it runs:
        # off for these queries only (SET LOCAL ends with the transaction).
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
        return _compute(viewer, org, period)


def _compute(viewer: Any, org: Organization, period: str) -> Rollup:
    now = timezone.now()
    since = now - PERIODS[period]
    children = list(
        policy.visible(viewer, "org.view", org.children.alive())
        .annotate(size=F("rght") - F("lft"))
        .order_by("-size", "name", "pk")
        .values("pk", "name", "lft", "rght")[: CHILD_ROWS + 1]
    )
    more = len(children) > CHILD_ROWS
    children = children[:CHILD_ROWS]
    rows = [Row("here", org.name, org.pk, 1)]
    rows += [Row("child", c["name"], c["pk"], (c["rght"] - c["lft"] + 1) // 2) for c in children]
    elsewhere = Row("elsewhere", "Elsewhere below")
    by_bucket = {HERE: rows[0], ELSEWHERE: elsewhere, **{i + 1: rows[i + 1] for i in range(len(children))}}
    grouping = _Grouping(org, children)

    def each(values: Iterable[dict[str, Any]]) -> Iterable[tuple[Counts, dict[str, Any]]]:
        for value in values:
            yield by_bucket[value["bucket"]].counts, value

    for counts, v in each(grouping.grouped(policy.visible(viewer, "org.view", Organization.objects.alive()), "",
                                           n=Count("pk"))):  # fmt: skip
        counts.orgs = v["n"]
    projects = policy.visible(viewer, "project.view", Project.objects.filter(org__deleted_at__isnull=True))
    for counts, v in each(grouping.grouped(projects, "org__", n=Count("pk"))):
        counts.projects = v["n"]

    tasks = policy.visible(viewer, "task.view", Task.objects.all())
    for counts, v in each(grouping.grouped(tasks, "project__org__", n=Count("pk"))):
        counts.tasks = v["n"]

    # One pass over the period's runs gives the table's runs, the chart's steps and the failing tasks: a failed or
    # lost run is its task's last word when no finished run of the task came after it (an index probe on
    # run_task_newest, made only for those runs), so each failing task is counted once, in its part. The runs are
    # reached from the visible tasks (a run is visible with its task: the policy's rule for runs), so visibility is
    # decided once on the task's own joins instead of in a second chain of joins for a subquery.
    step = "hour" if period == "24h" else "day"
    later = Run.objects.filter(
        task=OuterRef("pk"), status__in=Run.FINISHED, created_at__gt=OuterRef("runs__created_at")
    )
    last_failure = Q(Q(runs__status__in=FAILED), ~Exists(later))
    runs = grouping.within(tasks.filter(runs__created_at__gte=since), "project__org__")
    trunc = TruncHour if step == "hour" else TruncDay
    run_rows = runs.annotate(
        bucket=grouping.bucket("project__org__"),
        run_at=trunc("runs__created_at"),
        run_status=F("runs__status"),
        runtime_label=F("runs__runtime_name"),
        runtime_kind=F("runs__runtime__kind"),
        failed=_flag(Q(runs__status__in=FAILED)),
        failing=_flag(last_failure),
    ).values("bucket", "run_at", "run_status", "runtime_label", "runtime_kind", "failed", "failing")
    by_part, by_runtime = several_ways(
        run_rows,
        Way(["bucket", "run_at", "run_status"], n=COUNT, failing=SUM("failing")),
        Way(["runtime_label", "runtime_kind"], n=COUNT, failed=SUM("failed")),
    )
    found: dict[datetime, dict[str, int]] = {}
    for counts, v in each(by_part):
        status = v["run_status"]
        counts.runs[status] += v["n"]
        counts.failing_tasks += v["failing"]
        steps = found.setdefault(_moment(v["run_at"]), dict.fromkeys(RUN_STATUSES, 0))
        steps[status] += v["n"]

    cutoff = now - timedelta(seconds=settings.RUNTIME_OFFLINE_AFTER_S)
    online = Q(paused=False, last_seen__gte=cutoff)
    offline = Q(paused=False, last_seen__lt=cutoff)
    runtimes = policy.visible(viewer, "runtime.view", Runtime.objects.filter(kind=Runtime.Kind.LOCAL))
    for counts, v in each(
        grouping.grouped(runtimes, "org__", n=Count("pk"), online=Count("pk", filter=online),
                         offline=Count("pk", filter=offline))
    ):  # fmt: skip
        counts.runtimes_online, counts.runtimes_offline = v["online"], v["offline"]
        counts.runtimes_other = v["n"] - v["online"] - v["offline"]

    expiring = Q(expires_at__gt=now, expires_at__lte=now + timedelta(days=EXPIRING_DAYS))
    member_orgs = policy.visible(viewer, "member.view", Organization.objects.alive()).values("pk")
    total = Counts()
    for model, holder, name in ((OrgUserGrant, "user", "people"), (OrgTeamGrant, "group", "teams")):
        holders = grouping.within(model.objects.filter(content_object__in=member_orgs), "content_object__").annotate(
            bucket=grouping.bucket("content_object__"), holder=F(holder), expiring=_flag(expiring)
        )
        parts, whole = several_ways(
            holders.values("bucket", "holder", "expiring"),
            Way(["bucket"], n=DISTINCT("holder"), expiring=SUM("expiring")),
            Way([], n=DISTINCT("holder")),  # a person (or team) with roles in two parts counts once in the total
        )
        for counts, v in each(parts):
            setattr(counts, name, v["n"])
            counts.expiring_grants += v["expiring"]
        setattr(total, name, whole[0]["n"] if whole else 0)
    for project_model in (ProjectUserGrant, ProjectTeamGrant):
        project_grants = project_model.objects.filter(expiring, content_object__org__in=member_orgs)
        for counts, v in each(grouping.grouped(project_grants, "content_object__org__", n=Count("pk"))):
            counts.expiring_grants += v["n"]

    invitations = Invitation.objects.filter(
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=now,
        org__in=policy.visible(viewer, "member.manage", Organization.objects.alive()).values("pk"),
    )
    for counts, v in each(grouping.grouped(invitations, "org__", n=Count("pk"))):
        counts.invitations = v["n"]

    for row in [*rows, elsewhere]:
        total.add(row.counts)
    if more or elsewhere.counts != Counts():
        rows.append(elsewhere)

    return Rollup(
        org_id=org.pk,
        org_name=org.name,
        period=period,
        since=since,
        computed_at=now,
        rows=rows,
        total=total,
        more_children=more,
        per_day=_per_step(found, since, now, step),
        step=step,
        runtimes=_by_runtime(by_runtime),
    )


class _Grouping:
    """The subtree's filter and the CASE that names each row's part, for a queryset reaching the org by ``prefix``."""

    def __init__(self, org: Organization, children: list[dict[str, Any]]):
        self.org = org
        self.children = children

    def within(self, queryset: QuerySet, prefix: str) -> QuerySet:
        org = self.org
        return queryset.filter(
            **{f"{prefix}tree_id": org.tree_id, f"{prefix}lft__gte": org.lft, f"{prefix}lft__lte": org.rght}
        )

    def bucket(self, prefix: str) -> Case:
        whens = [When(**{f"{prefix}lft": self.org.lft}, then=Value(HERE))]
        whens += [
            When(**{f"{prefix}lft__gte": c["lft"], f"{prefix}lft__lte": c["rght"]}, then=Value(i + 1))
            for i, c in enumerate(self.children)
        ]
        return Case(*whens, default=Value(ELSEWHERE), output_field=IntegerField())

    def grouped(
        self, queryset: QuerySet, prefix: str, extra: list[str] | None = None, **aggregates: Any
    ) -> list[dict[str, Any]]:
        """One aggregate query: ``aggregates`` per part (and per ``extra`` fields)."""
        rows = (
            self.within(queryset, prefix)
            .annotate(bucket=self.bucket(prefix))
            .order_by()
            .values("bucket", *(extra or []))
            .annotate(**aggregates)
        )
        return list(rows)


def _per_step(
    found: dict[datetime, dict[str, int]], since: datetime, now: datetime, step: str
) -> list[tuple[datetime, dict[str, int]]]:
    """Runs by status per day (or hour), every step of the period present (zero where nothing ran)."""
    delta = timedelta(hours=1) if step == "hour" else timedelta(days=1)
    start = since.replace(minute=0, second=0, microsecond=0)
    if step == "day":
        start = start.replace(hour=0)
    steps = []
    at = start
    while at <= now:
        steps.append((at, found.get(at, dict.fromkeys(RUN_STATUSES, 0))))
        at += delta
    return steps


def _by_runtime(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs by the runtime they were placed on, most first; beyond ``RUNTIME_ROWS`` summed as "Other runtimes".
    ``rows``: the period's visible runs counted by runtime name and kind."""
    result = [
        {
            "name": v["runtime_label"] or "(not placed)",
            "kind": v["runtime_kind"] or "unknown",
            "runs": v["n"],
            "failed": v["failed"] or 0,
        }
        for v in sorted(rows, key=lambda v: (-v["n"], v["runtime_label"] or ""))
    ]
    if len(result) > RUNTIME_ROWS:
        rest = result[RUNTIME_ROWS - 1 :]
        other = {
            "name": f"{len(rest)} other runtimes",
            "kind": "other",
            "runs": sum(r["runs"] for r in rest),
            "failed": sum(r["failed"] for r in rest),
        }
        result = [*result[: RUNTIME_ROWS - 1], other]
    return result


def _flag(condition: Q) -> Case:
    """1 where ``condition`` holds, else 0 (summed in SQL)."""
    return Case(When(condition, then=Value(1)), default=Value(0), output_field=IntegerField())


def _moment(value: datetime | str) -> datetime:
    """A truncated step read from raw SQL as the ORM would read it: aware, in the current time zone (SQLite answers
    text, PostgreSQL a naive timestamp in that zone)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_current_timezone())
    return value
