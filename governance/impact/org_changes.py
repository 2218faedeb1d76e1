"""Previews of the structural changes of an organization: a move, and an edit that changes its access inheritance.

Each change is the service's own (``orgs.services.move_org`` / ``update_org``), run through the impact engine: the
preview makes it in a transaction rolled back (same checks, same refusals), ``apply_*`` makes it for real in the
transaction of its preview, the preview's summary kept in the change's audit event (``org.move`` / ``org.update``).
The scope is the org itself: the moved subtree, or the subtree whose inheritance changes.

Every caller that makes these changes goes through here: the API (``?dry_run=true`` answers the preview), the
console's move and edit forms (the preview is the confirmation page), the admin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from access import policy
from config.concurrency import Versions
from governance.impact import engine
from governance.impact.engine import Impact, Scope
from governance.impact.parts import PARTS
from orgs import services
from orgs.models import Organization

MOVE_ACTION = "org.move"
UPDATE_ACTION = "org.update"


def _fresh(actor: Any, call: Callable[[], Organization]) -> Callable[[], Organization]:
    """The service call, the actor's cached decisions dropped first: a preview made the change and rolled it back,
    so nothing the policy cached meanwhile (tree positions, grants in reach) may decide the real call."""

    def change() -> Organization:
        policy.forget(actor)
        return call()

    return change


def describe_move(org: Organization, parent: Organization) -> str:
    return f"Move {org.name} under {parent.name}"


def describe_update(org: Organization, fields: dict[str, Any]) -> str:
    words = []
    if "access_inheritance" in fields and fields["access_inheritance"] != org.access_inheritance:
        label = Organization.AccessInheritance(fields["access_inheritance"]).label
        words.append(f"access inheritance of {org.name}: {label}")
    if "name" in fields and fields["name"] is not None and fields["name"] != org.name:
        words.append(f"rename {org.name} to {fields['name']}")
    if "description" in fields and fields["description"] is not None and fields["description"] != org.description:
        words.append(f"description of {org.name}")
    return "Change " + "; ".join(words) if words else f"Edit {org.name}"


def is_structural(org: Organization, fields: dict[str, Any]) -> bool:
    """Whether an edit changes what anyone may do or inherit (so is previewed): its access inheritance changes. A
    rename or a new description changes neither."""
    value = fields.get("access_inheritance")
    return value is not None and value != org.access_inheritance


def preview_move(*, actor: Any, org: Organization, parent: Organization, version: Versions = None) -> Impact:
    """What moving ``org`` under ``parent`` would do; refused as the move itself would be."""
    change = _fresh(actor, lambda: services.move_org(actor=actor, org=org, parent=parent, version=version))
    try:
        return engine.preview(change, Scope(root=org, viewer=actor), describe=describe_move(org, parent), parts=PARTS)
    finally:
        policy.forget(actor)


def apply_move(
    *, actor: Any, org: Organization, parent: Organization, version: Versions = None
) -> tuple[Organization, Impact]:
    """Move ``org`` under ``parent``; the ``org.move`` audit event keeps the preview's summary."""
    change = _fresh(actor, lambda: services.move_org(actor=actor, org=org, parent=parent, version=version))
    try:
        return engine.apply(
            change, Scope(root=org, viewer=actor), describe=describe_move(org, parent), parts=PARTS, action=MOVE_ACTION
        )
    finally:
        policy.forget(actor)


def preview_update(*, actor: Any, org: Organization, version: Versions = None, **fields: Any) -> Impact:
    """What ``update_org(org, **fields)`` would do (``name``, ``description``, ``access_inheritance``)."""
    change = _fresh(actor, lambda: services.update_org(actor=actor, org=org, version=version, **fields))
    try:
        return engine.preview(change, Scope(root=org, viewer=actor), describe=describe_update(org, fields), parts=PARTS)
    finally:
        policy.forget(actor)


def apply_update(
    *, actor: Any, org: Organization, version: Versions = None, **fields: Any
) -> tuple[Organization, Impact]:
    """Update ``org``; the ``org.update`` audit event keeps the preview's summary."""
    change = _fresh(actor, lambda: services.update_org(actor=actor, org=org, version=version, **fields))
    try:
        return engine.apply(
            change,
            Scope(root=org, viewer=actor),
            describe=describe_update(org, fields),
            parts=PARTS,
            action=UPDATE_ACTION,
        )
    finally:
        policy.forget(actor)
