"""Impact previews of the changes to a grant (issue #12 §2): its removal, its role, its expiry.

Each preview makes the change through the grant services (access/services/grants.py: their checks, their delegation
rule, their refusals) inside a rolled-back transaction (governance/impact/engine.py), and compares who holds which
capability where before and after. The scope: the grant's org (for a project grant, the project's org, and the
project itself), the grant's holder or the members of its team.

Only the capability part is consulted: a grant changes nothing that the organizations inherit, no setting and no
run's placement, so the other parts would only cost queries to report nothing.

An expiry is a change that happens later: setting ``expires_at`` changes nobody's access now. Its preview is "the
grant as if expired": the expiry set through the service (refused as the real request is, a past date among others),
then, still inside the rolled-back transaction, the grant's end brought to the present; the preview says when
(``on <date>``). Applying it records that preview's summary in the ``grant.update`` event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from access import audit
from access.models import Role
from access.services.grants import Grant, change_grant, revoke_grant, roles_available
from config.concurrency import Versions
from governance.impact import engine
from governance.impact.engine import Impact, Part, Scope
from governance.impact.parts import PARTS
from orgs.locks import lock_tenant
from orgs.models import Organization, Project

#: The parts a grant's change can make a difference to.
GRANT_PARTS = ("capabilities",)

#: ``expires_at`` left out of a change (``change_grant``'s own marker).
UNCHANGED: Any = ...


def grant_parts() -> list[Part]:
    return [part for part in PARTS if part.key in GRANT_PARTS]


def grant_scope(grant: Grant, viewer: Any = None) -> Scope:
    """Where removing or changing ``grant`` can make a difference: the subtree of its org (a project grant: the
    project's org, and the project), for its holder or its team's members (and the path's holders, found by the
    capability part); shown to ``viewer``."""
    target = grant.content_object
    user = getattr(grant, "user", None)
    users: set[Any] = {user} if user is not None else set(getattr(grant, "group").user_set.all())  # noqa: B009
    if isinstance(target, Project):
        return Scope(root=target.org, users=users, project=target, viewer=viewer)
    return Scope(root=target, users=users, viewer=viewer)


def holder_name(grant: Grant) -> str:
    user = getattr(grant, "user", None)
    if user is not None:
        return str(user.get_username())
    team = getattr(getattr(grant, "group"), "team", None)  # noqa: B009 - a team's grant (the union has no group)
    return f"the team {team.name}" if team is not None else "a deleted team"


def _place(grant: Grant) -> str:
    target = grant.content_object
    return f"the project {target.name}" if isinstance(target, Project) else str(target.name)


def describe_removal(grant: Grant) -> str:
    return f"Remove {holder_name(grant)}'s role {grant.role.name} on {_place(grant)}"


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def describe_change(grant: Grant, *, role_name: str | None, expires_at: Any) -> str:
    holder, place = holder_name(grant), _place(grant)
    words = []
    if role_name is not None and role_name != grant.role.name:
        words.append(f"Change {holder}'s role on {place} from {grant.role.name} to {role_name}")
    if expires_at is not UNCHANGED:
        if expires_at is None:
            lead = "and keep it" if words else f"Keep {holder}'s role on {place}"
            words.append(f"{lead} without an expiry")
        else:
            lead = "and end it" if words else f"End {holder}'s role {grant.role.name} on {place}"
            words.append(f"{lead} on {_when(expires_at)}")
    return " ".join(words) or f"Keep {holder}'s role {grant.role.name} on {place} as it is"


# -- removal -------------------------------------------------------------------------------------------------------


def preview_removal(*, actor: Any, grant: Grant, version: Versions = None) -> Impact:
    """What removing ``grant`` would do (refused as the removal itself would be)."""
    return engine.preview(
        lambda: revoke_grant(actor=actor, grant=grant, version=version),
        grant_scope(grant, actor),
        describe=describe_removal(grant),
        parts=grant_parts(),
    )


def apply_removal(*, actor: Any, grant: Grant, version: Versions = None) -> Impact:
    """Remove ``grant``, its preview's summary in the ``grant.delete`` event."""
    _, impact = engine.apply(
        lambda: revoke_grant(actor=actor, grant=grant, version=version),
        grant_scope(grant, actor),
        describe=describe_removal(grant),
        parts=grant_parts(),
        action="grant.delete",
    )
    return impact


# -- role and expiry -----------------------------------------------------------------------------------------------


def _sets_an_end(grant: Grant, role: Any, expires_at: Any) -> bool:
    """Whether the change's preview is the grant as if expired: a (new) end is set and the role stays."""
    same_role = role is None or (role.pk == grant.role_id if isinstance(role, Role) else role == grant.role.key)
    return same_role and isinstance(expires_at, datetime) and expires_at != grant.expires_at


def _expired_after(change: Callable[[], Grant]) -> Callable[[], Grant]:
    """``change()``, then the grant's end brought to the present (for a preview only: its transaction is rolled
    back): what the policy decides once the expiry has passed."""

    def run() -> Grant:
        fresh = change()
        type(fresh).objects.filter(pk=fresh.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        return fresh

    return run


def preview_change(
    *,
    actor: Any,
    grant: Grant,
    role: Any = None,
    expires_at: Any = UNCHANGED,
    version: Versions = None,
) -> Impact:
    """What changing ``grant``'s role or expiry would do. A role change: what it does now (with its new expiry, if
    one is given). A new expiry alone: what its end does, on that date (a past date is refused, 400)."""
    change = _change(actor, grant, role, expires_at, version)
    if _sets_an_end(grant, role, expires_at):
        change = _expired_after(change)
    return engine.preview(
        change, grant_scope(grant, actor), describe=_describe(grant, role, expires_at), parts=grant_parts()
    )


def apply_change(
    *,
    actor: Any,
    grant: Grant,
    role: Any = None,
    expires_at: Any = UNCHANGED,
    version: Versions = None,
) -> tuple[Grant, Impact]:
    """Change ``grant``'s role or expiry, its preview's summary in the ``grant.update`` event (when anything
    changed)."""
    scope, describe = grant_scope(grant, actor), _describe(grant, role, expires_at)
    change = _change(actor, grant, role, expires_at, version)
    if not _sets_an_end(grant, role, expires_at):
        return engine.apply(change, scope, describe=describe, parts=grant_parts(), action="grant.update")
    with transaction.atomic():  # engine.apply, with the preview of the grant's end instead of the change's now
        lock_tenant(scope.root.tenant_id)
        impact = engine.preview(_expired_after(change), scope, describe=describe, parts=grant_parts())
        with audit.annotating("grant.update", {"impact": {"change": describe, **impact.summary()}}):
            result = change()
    return result, impact


def _change(actor: Any, grant: Grant, role: Any, expires_at: Any, version: Versions) -> Callable[[], Grant]:
    return lambda: change_grant(actor=actor, grant=grant, role=role, expires_at=expires_at, version=version)


def _describe(grant: Grant, role: Any, expires_at: Any) -> str:
    role_name = getattr(role, "name", None) if role is not None and not isinstance(role, str) else role
    if isinstance(role, str):
        org = grant.content_object.org if isinstance(grant.content_object, Project) else grant.content_object
        role_name = _role_name(org, role)
    return describe_change(grant, role_name=role_name, expires_at=expires_at)


def _role_name(org: Organization, key: str) -> str:
    """The name of the role ``key`` usable at ``org`` (the key itself when there is none: the service refuses it)."""
    return next((r.name for r in roles_available(org) if r.key == key), key)
