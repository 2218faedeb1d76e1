"""Roll-ups kept for their readers: the read model that keeps the roll-up of a large subtree fast.

Computed live, the roll-up of a 100k-org tenant's root costs about 0.6 s on PostgreSQL (eleven aggregates over every
org, project, task, grant and run of the period): above the dashboard's 200 ms. So each roll-up, once computed, is
kept in a row per (org, period, audience) and served from it while it is fresh: one query instead of eleven
aggregates.

- **The audience** (``governance.rollup.service.audience_of``) is a digest of the SQL of each ``policy.visible`` the
  roll-up asks for the viewer (the roll-up depends on the viewer through those alone: a test holds it to that). Two
  viewers with the same digest may see the same objects, so they see the same roll-up: every tenant administrator
  of a tenant shares one row, an integrator has their own. A grant given or taken, a cut, a share, a fence closing a
  region to a session without its second factor: each changes the SQL, hence the audience, hence the row. Nobody is
  ever served figures computed for what someone else may see.
- **Fresh** means computed less than ``ROLLUP_SNAPSHOT_MAX_AGE_S`` ago (default 300 s) with the org still where it
  was (``tree_id``/``lft``/``rght``: a move, or an org created or deleted below, changes them). Otherwise the reader
  computes it, as before the read model, and it is kept: the figures are never older than the page says.
- **The refresher** (``manage.py refresh_rollups``, one beside the web processes like the runtimes reaper) computes
  again, every ``ROLLUP_REFRESH_S`` (default 60 s), the snapshots read in the last ``ROLLUP_WATCH_S`` (default a
  day) that are older than the refresh interval, as the viewer they were last computed for (authenticated as then),
  so their readers do not wait; it drops the snapshots nobody read for as long. Without it nothing is wrong, only
  slower: each roll-up is then computed by its first reader once its snapshot went stale.

This module keeps the rows; ``governance.rollup.service`` computes and decides the audience.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance.models import RollupSnapshot
from orgs.models import Organization

#: A served snapshot's ``read_at`` is written again at most this often (a read is not a write each time).
TOUCH_EVERY = timedelta(minutes=5)


def after_the_read(write: Callable[[], Any]) -> None:
    """Run ``write`` once the caller's transaction commits (at once outside one): a GET reads in a READ ONLY
    transaction on PostgreSQL (config/snapshots.py), so what a read keeps is written after it."""
    transaction.on_commit(write)


def max_age() -> timedelta:
    return timedelta(seconds=settings.ROLLUP_SNAPSHOT_MAX_AGE_S)


def read(org: Organization, period: str, audience: str, *, now: datetime | None = None) -> RollupSnapshot | None:
    """The snapshot of ``org`` over ``period`` for ``audience`` if it may serve: fresh, and the org where it was.
    One query (two when its ``read_at`` is due)."""
    now = now or timezone.now()
    snapshot = RollupSnapshot.objects.filter(org=org, period=period, audience=audience).first()
    if snapshot is None or not _place_kept(snapshot, org) or snapshot.computed_at < now - max_age():
        return None
    if snapshot.read_at < now - TOUCH_EVERY:
        pk = snapshot.pk
        after_the_read(lambda: RollupSnapshot.objects.filter(pk=pk).update(read_at=now))
    return snapshot


def _place_kept(snapshot: RollupSnapshot, org: Organization) -> bool:
    return (snapshot.tree_id, snapshot.lft, snapshot.rght) == (org.tree_id, org.lft, org.rght)


def store(
    org: Organization,
    period: str,
    audience: str,
    payload: dict[str, Any],
    *,
    computed_at: datetime,
    compute_ms: int,
    viewer: Any,
    auth_context: dict[str, Any],
) -> None:
    """Keep ``payload`` as the snapshot of ``org`` over ``period`` for ``audience``, computed for ``viewer`` (a
    user; None: the platform) authenticated as ``auth_context``. Two readers computing at once: the last wins. The
    write runs once the caller's transaction commits: a GET reads in a READ ONLY transaction (config/snapshots.py),
    and what it keeps is written after it, like the other writes a read causes."""
    values = {
        "tenant_id": org.tenant_id,
        "tree_id": org.tree_id,
        "lft": org.lft,
        "rght": org.rght,
        "computed_at": computed_at,
        "compute_ms": compute_ms,
        "computed_for": viewer,
        "auth_context": auth_context,
        "payload": payload,
    }

    def write() -> None:
        try:
            with transaction.atomic():
                kept = RollupSnapshot.objects.filter(org=org, period=period, audience=audience)
                if not kept.update(**values):
                    # A new audience's row: the org's rows nobody read for ROLLUP_WATCH_S go, so that the table
                    # stays bounded without the refresher too.
                    RollupSnapshot.objects.filter(org=org, period=period, read_at__lt=_unwatched_before()).delete()
                    RollupSnapshot.objects.create(
                        org=org, period=period, audience=audience, read_at=computed_at, **values
                    )
        except IntegrityError:  # created meanwhile by another reader of the same audience: theirs is as fresh
            pass

    after_the_read(write)


def due(*, now: datetime | None = None, limit: int | None = None) -> tuple[list[RollupSnapshot], int]:
    """The snapshots read within ``ROLLUP_WATCH_S`` that are ``ROLLUP_REFRESH_S`` old or more, or whose org moved
    (oldest first, with their org and viewer), and how many were deleted: those not read for that long, or of a
    deleted org."""
    now = now or timezone.now()
    watched_since = _unwatched_before(now)
    unread = RollupSnapshot.objects.filter(read_at__lt=watched_since)
    gone = RollupSnapshot.objects.filter(org__deleted_at__isnull=False)
    dropped = unread.delete()[0] + gone.delete()[0]
    refresh_before = now - timedelta(seconds=settings.ROLLUP_REFRESH_S)
    watched = RollupSnapshot.objects.filter(read_at__gte=watched_since).select_related("org", "computed_for")
    rows = [
        row
        for row in watched.defer("payload").order_by("computed_at")
        if row.computed_at < refresh_before or not _place_kept(row, row.org)
    ]
    return (rows[:limit] if limit else rows), dropped


def _unwatched_before(now: datetime | None = None) -> datetime:
    """Rows last read before this are nobody's any more (``ROLLUP_WATCH_S``)."""
    return (now or timezone.now()) - timedelta(seconds=settings.ROLLUP_WATCH_S)


def forget(snapshot: RollupSnapshot) -> None:
    RollupSnapshot.objects.filter(pk=snapshot.pk).delete()
