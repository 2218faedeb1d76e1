"""What an org sees of runtimes: its effective runtime list, each runtime with its source and live status.

The effective list at an org = the org's effective *local* runtimes (declared here or above: nearest wins, locks and
hides honoured, resources.inheritance) + the *global* runtimes the platform offers to the org's tenant, minus those
hidden on the org's path (``Hidden(kind="runtime", name)``) and those a local runtime of the same name shadows.

Each row carries what the console and the API show: source (here / inherited from X / platform), status
(never connected, online, offline, paused), last seen, agent version, online instances and leased runs. The list
costs a fixed number of queries whatever its length: the local declarations on the path (one, with their counts
as subqueries) and the offered globals not hidden on the path (one, with their counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone

from access import policy
from orgs.models import Organization
from resources import inheritance
from resources.models import Hidden, Run
from runtimes.models import Runtime, RuntimeInstance

SOURCE_HERE = "here"
SOURCE_INHERITED = "inherited"
SOURCE_PLATFORM = "platform"


def offline_after() -> timedelta:
    return timedelta(seconds=settings.RUNTIME_OFFLINE_AFTER_S)


def status_of(runtime: Runtime, now: datetime | None = None) -> str:
    """``paused`` (an Admin paused it) before anything else; otherwise ``never_connected`` until an agent called,
    ``online`` while the last call is within RUNTIME_OFFLINE_AFTER_S, ``offline`` after."""
    if runtime.paused:
        return Runtime.Status.PAUSED
    if runtime.last_seen is None:
        return Runtime.Status.NEVER_CONNECTED
    now = now or timezone.now()
    return Runtime.Status.ONLINE if runtime.last_seen >= now - offline_after() else Runtime.Status.OFFLINE


def with_counts(queryset: QuerySet, now: datetime | None = None) -> QuerySet:
    """``queryset`` of runtimes annotated with ``online_instances`` (a heartbeat within RUNTIME_OFFLINE_AFTER_S) and
    ``running_runs`` (claimed, running or stopping): subqueries, so a list stays one query."""
    since = (now or timezone.now()) - offline_after()
    instances = (
        RuntimeInstance.objects.filter(runtime=OuterRef("pk"), last_heartbeat__gte=since)
        .order_by()
        .values("runtime")
        .annotate(n=Count("pk"))
        .values("n")
    )
    running = (
        Run.objects.filter(runtime=OuterRef("pk"), status__in=Run.LEASED)
        .order_by()
        .values("runtime")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return queryset.annotate(
        online_instances=Coalesce(Subquery(instances, output_field=IntegerField()), Value(0)),
        running_runs=Coalesce(Subquery(running, output_field=IntegerField()), Value(0)),
    )


def _count(runtime: Runtime, name: str) -> int:
    """An annotation of ``with_counts`` (0 on a runtime read without it)."""
    return int(getattr(runtime, name, 0) or 0)


@dataclass(frozen=True)
class RuntimeRow:
    """One runtime as seen from ``at``."""

    runtime: Runtime
    at: Organization | None  # None: a detail read outside any org (a global runtime)
    source: str  # here | inherited | platform
    locked: bool
    overrides: UUID | None
    status: str
    instances: int  # online agent processes
    running: int  # runs leased to it now

    @property
    def inherited(self) -> bool:
        return self.source != SOURCE_HERE

    @property
    def source_org(self) -> Organization | None:
        """Where it is declared (None for a global runtime: the platform's)."""
        return self.runtime.org if self.source != SOURCE_PLATFORM else None

    @property
    def source_label(self) -> str:
        if self.source == SOURCE_PLATFORM:
            return "platform"
        org = self.runtime.org
        if self.source == SOURCE_INHERITED and org is not None:
            return f"inherited from {org.name}"
        return "here"

    @property
    def last_seen(self) -> datetime | None:
        return self.runtime.last_seen

    @property
    def version(self) -> str:
        return self.runtime.agent_version


def offered_globals(tenant_id: Any) -> QuerySet:
    """The global runtimes offered to the tenant (to every tenant, or to it by name)."""
    offers = Runtime.tenants.through.objects.filter(tenant_id=tenant_id).values("runtime_id")
    return Runtime.objects.filter(
        Q(kind=Runtime.Kind.GLOBAL, org__isnull=True) & (Q(all_tenants=True) | Q(pk__in=offers))
    )


def hidden_on_path(org: Organization) -> Exists:
    """Whether the runtime's name is hidden at ``org`` or above it (a hide applies to the subtree where it is made):
    a condition on a runtime queryset."""
    return Exists(
        Hidden.objects.filter(
            kind=Runtime.KIND, name=Lower(OuterRef("name")), org__tree_id=org.tree_id, org__lft__lte=org.lft,
            org__rght__gte=org.rght,
        )
    )  # fmt: skip


def effective_runtimes(org: Organization, viewer: Any = None) -> list[RuntimeRow]:
    """The runtimes usable at ``org``, sorted by name (``viewer``: narrowed to what that user may see; None: all,
    for placement). Two queries (plus the viewer's grants, loaded once per request)."""
    now = timezone.now()
    local = with_counts(Runtime.objects.filter(kind=Runtime.Kind.LOCAL), now)
    globals_ = with_counts(offered_globals(org.tenant_id).exclude(hidden_on_path(org)), now)
    if viewer is not None:
        local = policy.visible(viewer, "runtime.view", local)
        globals_ = policy.visible(viewer, "runtime.view", globals_)
    rows: list[RuntimeRow] = []
    for e in inheritance.effective(Runtime, org, local):
        item = e.item
        rows.append(
            RuntimeRow(
                runtime=item, at=org, source=SOURCE_INHERITED if e.inherited else SOURCE_HERE, locked=e.locked,
                overrides=e.overrides, status=status_of(item, now), instances=_count(item, "online_instances"),
                running=_count(item, "running_runs"),
            )
        )  # fmt: skip
    taken = {row.runtime.name.lower() for row in rows}
    for item in globals_.order_by("name"):
        if item.name.lower() in taken:
            continue
        rows.append(
            RuntimeRow(
                runtime=item, at=org, source=SOURCE_PLATFORM, locked=False, overrides=None,
                status=status_of(item, now), instances=_count(item, "online_instances"),
                running=_count(item, "running_runs"),
            )
        )  # fmt: skip
    return sorted(rows, key=lambda row: (row.runtime.name.lower(), row.source))


def effective_runtime(org: Organization, runtime: Runtime, rows: list[RuntimeRow] | None = None) -> RuntimeRow | None:
    """``runtime``'s row in ``org``'s effective list, None when the org cannot use it."""
    rows = rows if rows is not None else effective_runtimes(org)
    return next((row for row in rows if row.runtime.pk == runtime.pk), None)


def row_for(runtime: Runtime, at: Organization | None = None) -> RuntimeRow:
    """A runtime's row outside a list (a detail): its source as seen from ``at`` (default: where it is declared)."""
    runtime = with_counts(Runtime.objects.filter(pk=runtime.pk)).select_related("org").get()
    if runtime.org_id is None:
        source = SOURCE_PLATFORM
    elif at is None or at.pk == runtime.org_id:
        source = SOURCE_HERE
    else:
        source = SOURCE_INHERITED
    return RuntimeRow(
        runtime=runtime, at=at or runtime.org, source=source, locked=runtime.locked, overrides=None,
        status=status_of(runtime), instances=_count(runtime, "online_instances"),
        running=_count(runtime, "running_runs"),
    )  # fmt: skip


def instances_of(runtime: Runtime) -> list[RuntimeInstance]:
    """The agent processes of ``runtime``, most recently heard first, each with ``running`` (its leased runs) and
    ``online``: one query."""
    running = (
        Run.objects.filter(instance=OuterRef("pk"), status__in=Run.LEASED)
        .order_by()
        .values("instance")
        .annotate(n=Count("pk"))
        .values("n")
    )
    since = timezone.now() - offline_after()
    items: list[RuntimeInstance] = list(
        RuntimeInstance.objects.filter(runtime=runtime)
        .annotate(running=Coalesce(Subquery(running, output_field=IntegerField()), Value(0)))
        .order_by("-last_heartbeat", "-created_at")
    )
    for item in items:
        setattr(item, "online", item.last_heartbeat is not None and item.last_heartbeat >= since)  # noqa: B010
    return items
