"""Where the ``require_2fa`` setting is in force: its effective value at one org (the org API) and the regions of a
tenant it closes (the fence provider, twofactor/fences.py).

Resolution is the settings' own (resources/inheritance.py): the nearest declaration at or above an org decides,
unless a declaration above it is locked (the topmost lock wins and nothing below counts). The grace period runs
from the deciding row's ``updated_at``: it starts when the requirement is set or changed (a change of the value or
of the lock restarts it), so members always get the full grace announced with the last change. Past
``updated_at + grace_hours`` the requirement is enforced; one second before, it is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.utils import timezone

from orgs.models import Organization
from resources.models import OrgSetting
from resources.settings_registry import REGISTRY, effective_settings

KEY = "require_2fa"


def enforced_after(value: Any, updated_at: datetime) -> datetime | None:
    """When a declaration's requirement takes effect (None: it requires nothing)."""
    if not isinstance(value, dict) or value.get("required") is not True:
        return None
    return updated_at + timedelta(hours=int(value.get("grace_hours") or 0))


@dataclass(frozen=True)
class Requirement:
    """The effective ``require_2fa`` at an org: what it says, where it is declared (None: the default) and since
    when it is enforced (None: not required)."""

    required: bool
    grace_hours: int
    source: UUID | None
    enforced_after: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "required": self.required,
            "grace_hours": self.grace_hours,
            "source": self.source,
            "enforced_after": self.enforced_after,
        }


def requirement_at(org: Organization) -> Requirement:
    """The effective requirement at ``org`` (one query)."""
    setting = next(s for s in effective_settings(org) if s.spec.key == KEY)
    value = setting.value if isinstance(setting.value, dict) else REGISTRY[KEY].default
    declaration = setting.declaration
    return Requirement(
        required=bool(value.get("required")),
        grace_hours=int(value.get("grace_hours") or 0),
        source=declaration.org_id if declaration is not None else None,
        enforced_after=enforced_after(value, declaration.updated_at) if declaration is not None else None,
    )


# -- the regions of a tenant ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """An lft interval of one tree (``lft``..``rght`` inclusive, as access.fences.Fence reads it) where the
    declaration at ``org_id`` decides and requires a second factor since ``since``."""

    tree_id: int
    lft: int
    rght: int
    org_id: UUID
    org_name: str
    since: datetime


def tenant_rows(tenant_id: UUID) -> list[dict[str, Any]]:
    """The tenant's ``require_2fa`` declarations at live orgs, with their orgs' tree ranges: one query."""
    rows: Any = (
        OrgSetting.objects.filter(key=KEY, org__tenant_id=tenant_id, org__deleted_at__isnull=True)
        .order_by("org__tree_id", "org__lft")
        .values("value", "locked", "updated_at", "org_id", "org__name", "org__tree_id", "org__lft", "org__rght")
    )
    return list(rows)


def enforced_regions(rows: list[dict[str, Any]], now: datetime | None = None) -> list[Region]:
    """The intervals where the effective requirement is on and its grace is over, at ``now``.

    A declaration decides its subtree except where a live declaration below it decides instead (a hole); a
    declaration under a locked one above it is dead. The holes of a deciding declaration are cut out of its range,
    so a sub-org that turned the requirement off (where no lock forbids it) stays open, and nothing outside the
    declaring org's subtree (its parents, its siblings) is ever part of a region."""
    now = now or timezone.now()
    by_tree: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_tree.setdefault(row["org__tree_id"], []).append(row)
    regions: list[Region] = []
    for tree_id, chain in by_tree.items():
        chain.sort(key=lambda r: r["org__lft"])
        live: list[dict[str, Any]] = []
        for row in chain:
            above = [r for r in live if r["org__lft"] < row["org__lft"] and row["org__rght"] < r["org__rght"]]
            if any(r["locked"] for r in above):
                continue  # a lock above: this one cannot count (it predates the lock)
            live.append(row)
        for row in live:
            since = enforced_after(row["value"], row["updated_at"])
            if since is None or now < since:
                continue
            holes = _maximal_inside(row, live)
            start = row["org__lft"]
            for hole in holes:
                if start <= hole["org__lft"] - 1:
                    regions.append(_region(tree_id, start, hole["org__lft"] - 1, row, since))
                start = hole["org__rght"] + 1
            if start <= row["org__rght"]:
                regions.append(_region(tree_id, start, row["org__rght"], row, since))
    return regions


def _maximal_inside(row: dict[str, Any], live: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The live declarations strictly inside ``row``'s subtree that no other one inside it contains, by lft."""
    if row["locked"]:
        return []  # a locked declaration decides its whole subtree
    inside = [r for r in live if row["org__lft"] < r["org__lft"] and r["org__rght"] < row["org__rght"]]
    maximal: list[dict[str, Any]] = []
    for candidate in inside:  # sorted by lft: an enclosing one comes first
        if maximal and candidate["org__rght"] < maximal[-1]["org__rght"]:
            continue
        maximal.append(candidate)
    return maximal


def _region(tree_id: int, lft: int, rght: int, row: dict[str, Any], since: datetime) -> Region:
    return Region(tree_id, lft, rght, row["org_id"], row["org__name"], since)
