"""The access review of an organization (issue #12 §3): who holds which role there, from where, since when and by
whose grant, until when, when they were last seen and when somebody last attested it; and the reviewer's two
answers, attest and revoke, in bulk.

Reads: ``review(org, viewer=…, subtree=…)`` lists the rows in a fixed number of queries whatever the size of the
tree or the number of grants (the cuts on the path, one query per grant table, the team seats, the tenant
administrators, the attestations, the two settings). The rows are the grants in effect:

- ``direct``: made on the organization (with ``subtree``: on it or an organization below it);
- ``inherited``: made on an ancestor and reaching the organization (no ``access_inheritance`` cut stops it);
- ``team``: a team's grant (direct or inherited), one row per member of the team (a team without members: one row
  naming only the team), all acting on the one team grant;
- ``project``: made on a project of the organization (or of the subtree);
- ``tenant``: the tenant administrators, who hold every capability everywhere in the tenant.

With ``subtree``, only the organizations and projects where the viewer holds ``member.view`` are listed (a cut
below may hide a department from a reviewer above it). Expired grants are not in effect and are not listed.

Writes: ``attest`` and ``revoke`` take grant ids (a tenant administrator's row: the user's id) and act on each
grant on its own. An id that names nothing the reviewer may see in the organization's scope (another tenant's, a
hidden department's, a typo) refuses the whole request with ``grants_not_found`` and changes nothing. Otherwise
each grant is decided like its single-grant counterpart: attesting needs what revoking needs (``member.manage``
on the grant's organization or project, and the delegation rule: the reviewer holds every capability of the role;
a tenant administrator's row needs ``tenant.admin``), and revoking goes through the grant services themselves
(``revoke_grant``; ``set_tenant_admin`` for a tenant administrator, which keeps the last one), so their checks and
audit events apply. Each grant is done in its own transaction; a refused one is reported with its code and
changes nothing.

An id may carry the version the reviewer read, ``<id>@<version>`` (the review's ``version`` column; the console's
ticks always do): a grant changed since (its role, its end) is then refused on its own with ``stale``, read again
under its row lock, so nobody attests a role they did not see, nor revokes a grant someone just changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from access import audit, policy
from access.models import OrgTeamGrant, OrgUserGrant, ProjectTeamGrant, ProjectUserGrant, TenantMembership
from access.services.grants import authorize_role, revoke_grant, set_tenant_admin
from config.concurrency import lock_for_update
from config.errors import DomainError, Forbidden, NotFound
from governance.models import Attestation, GrantKind
from orgs.models import Organization, Project
from resources.settings_registry import effective_settings

ATTEST_ACTION = "grant.attest"
#: The most grants one bulk request may name.
MAX_BULK = 500

_MODELS: dict[str, Any] = {
    GrantKind.ORG_USER: OrgUserGrant,
    GrantKind.ORG_TEAM: OrgTeamGrant,
    GrantKind.PROJECT_USER: ProjectUserGrant,
    GrantKind.PROJECT_TEAM: ProjectTeamGrant,
}


@dataclass
class Row:
    """One person (or team without members) holding one role through one grant."""

    kind: str  # GrantKind
    grant_id: str
    source: str  # direct | inherited | team | project | tenant
    role_key: str
    role_name: str
    user: Any = None  # the person (None for a team without members)
    team: Any = None  # the team, for a team grant
    org: Organization | None = None  # where the grant was made (a project grant: the project's org)
    project: Project | None = None
    granted_by: Any = None
    granted_at: datetime | None = None
    expires_at: datetime | None = None
    inherited: bool = False  # made above the reviewed organization
    last_seen: datetime | None = None
    attested_at: datetime | None = None
    attested_by: str = ""
    version: int | None = None

    @property
    def holder(self) -> str:
        return self.user.get_username() if self.user is not None else f"team:{self.team.name}" if self.team else ""

    @property
    def place(self) -> str:
        if self.project is not None:
            return f"{self.org.name if self.org else ''} / {self.project.name}"
        return self.org.name if self.org is not None else "every organization"


@dataclass(frozen=True)
class Review:
    org: Organization
    subtree: bool
    rows: list[Row]
    review_days: int
    inactive_days: int
    now: datetime

    def unattested(self, row: Row) -> bool:
        return row.attested_at is None or row.attested_at < self.now - timedelta(days=self.review_days)

    def inactive(self, row: Row) -> bool:
        if row.user is None:
            return False
        return row.last_seen is None or row.last_seen < self.now - timedelta(days=self.inactive_days)

    def filtered(self, *, unattested: bool = False, inactive: bool = False) -> list[Row]:
        return [
            row
            for row in self.rows
            if (not unattested or self.unattested(row)) and (not inactive or self.inactive(row))
        ]

    @property
    def unattested_count(self) -> int:
        return len({(row.kind, row.grant_id) for row in self.rows if self.unattested(row)})

    @property
    def inactive_people(self) -> list[Any]:
        """The people holding a role here who were not seen in ``inactive_days`` (by username)."""
        people = {row.user.pk: row.user for row in self.rows if self.inactive(row)}
        return sorted(people.values(), key=lambda user: user.get_username())


# What no row shows, left unread: a whole-tenant review reads a thousand grants, and parsing its holders' and
# granters' unused timestamps was the largest cost of the call.
_UNSHOWN = [
    f"{holder}__{name}"
    for holder in ("user", "granted_by")
    for name in ("password", "last_login", "date_joined", "email_verified_at", "first_name", "last_name")
] + ["role__created_at", "role__description", "content_object__created_at", "content_object__description"]


def _unexpired(now: datetime) -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now)


def _lets_in(mode: str, role: Any) -> bool:
    if mode == Organization.AccessInheritance.NONE:
        return False
    return mode != Organization.AccessInheritance.ADMINS_ONLY or (role.is_builtin and role.key == "admin")


def _settings(org: Organization) -> tuple[int, int]:
    values = {s.spec.key: s.value for s in effective_settings(org)}
    return int(values["access_review_days"]), int(values["inactive_days"])


def review(org: Organization, *, viewer: Any, subtree: bool = False, now: datetime | None = None) -> Review:
    """The rows of ``org``'s access review (see the module). ``viewer`` holds member.view on ``org`` (the caller
    checked); with ``subtree`` the orgs and projects below are narrowed to those where they hold it too."""
    now = now or timezone.now()
    review_days, inactive_days = _settings(org)
    # The path above: its cuts decide which ancestors' grants reach ``org`` (one query).
    ancestors = list(Organization.objects.filter(org.ancestors_q(include_self=False)).order_by("lft"))
    cuts = [a for a in [*ancestors, org] if a.access_inheritance != Organization.AccessInheritance.ALL]
    here = Q(content_object=org)
    projects_here = Q(content_object__org=org)
    if subtree:
        seen_orgs = policy.visible(viewer, "member.view", Organization.objects.filter(org.descendants_q()).alive())
        here = Q(content_object__in=seen_orgs.values("pk"))
        seen_projects = policy.visible(viewer, "member.view", Project.objects.filter(org__in=seen_orgs.values("pk")))
        projects_here = Q(content_object__in=seen_projects.values("pk"))
    above = Q(content_object__in=[a.pk for a in ancestors])
    live = _unexpired(now)

    rows: list[Row] = []
    org_grants = (
        OrgUserGrant.objects.filter(here | above, live)
        .select_related("user", "role", "content_object", "granted_by")
        .defer(*_UNSHOWN)
    )
    team_grants = OrgTeamGrant.objects.filter(here | above, live).select_related(
        "group__team", "role", "content_object", "granted_by"
    )
    reaching: list[Any] = [g for g in [*org_grants, *team_grants] if _reaches(g, org, cuts)]
    project_user = ProjectUserGrant.objects.filter(projects_here, live).select_related(
        "user", "role", "content_object__org", "granted_by"
    )
    project_team = ProjectTeamGrant.objects.filter(projects_here, live).select_related(
        "group__team", "role", "content_object__org", "granted_by"
    )
    project_grants: list[Any] = [*project_user, *project_team]
    seats = _seats({g.group_id for g in [*reaching, *project_grants] if getattr(g, "group_id", None)})

    for grant in reaching:
        inherited = grant.content_object_id != org.pk and grant.content_object.lft < org.lft
        kind = GrantKind.ORG_TEAM if isinstance(grant, OrgTeamGrant) else GrantKind.ORG_USER
        source = "team" if kind == GrantKind.ORG_TEAM else "inherited" if inherited else "direct"
        rows += _rows_of(grant, kind, source, grant.content_object, None, inherited, seats)
    for grant in project_grants:
        kind = GrantKind.PROJECT_TEAM if isinstance(grant, ProjectTeamGrant) else GrantKind.PROJECT_USER
        rows += _rows_of(grant, kind, "project", grant.content_object.org, grant.content_object, False, seats)
    for membership in TenantMembership.objects.filter(tenant_id=org.tenant_id, is_admin=True).select_related("user"):
        rows.append(
            Row(
                kind=GrantKind.TENANT_ADMIN, grant_id=str(membership.user_id), source="tenant", role_key="tenant_admin",
                role_name="Tenant administrator", user=membership.user, granted_at=membership.created_at,
                inherited=True, version=membership.version,
            )
        )  # fmt: skip

    for row in rows:
        row.last_seen = getattr(row.user, "last_seen_at", None)
    _attach_attestations(org.tenant_id, rows)
    rows.sort(key=_order)
    return Review(org, subtree, rows, review_days, inactive_days, now)


_SOURCE_ORDER = {"tenant": 0, "inherited": 1, "direct": 2, "team": 3, "project": 4}


def _order(row: Row) -> tuple[Any, ...]:
    return (
        row.user.get_username().lower() if row.user is not None else "~" + (row.team.name.lower() if row.team else ""),
        _SOURCE_ORDER.get(row.source, 9),
        row.org.lft if row.org is not None else 0,
        row.project.name if row.project is not None else "",
    )


def _reaches(grant: Any, org: Organization, cuts: list[Organization]) -> bool:
    """A grant made at or below ``org`` applies where it is made; one made above reaches ``org`` unless a cut on the
    path between (strictly below the grant's org, down to ``org`` itself) stops it."""
    made = grant.content_object
    if made.lft >= org.lft:
        return True
    return all(_lets_in(cut.access_inheritance, grant.role) for cut in cuts if cut.lft > made.lft)


def _seats(group_ids: set[Any]) -> dict[Any, list[Any]]:
    """{group id: its users, by username}, in one query."""
    if not group_ids:
        return {}
    through = get_user_model().groups.through
    seats: dict[Any, list[Any]] = {}
    for seat in through.objects.filter(group_id__in=group_ids).select_related("user").order_by("user__username"):
        seats.setdefault(seat.group_id, []).append(seat.user)
    return seats


def _rows_of(
    grant: Any,
    kind: str,
    source: str,
    org: Organization,
    project: Project | None,
    inherited: bool,
    seats: dict[Any, list[Any]],
) -> list[Row]:
    base = {
        "kind": kind, "grant_id": str(grant.pk), "source": source, "role_key": grant.role.key,
        "role_name": grant.role.name, "org": org, "project": project, "granted_by": grant.granted_by,
        "granted_at": grant.created_at, "expires_at": grant.expires_at, "inherited": inherited,
        "version": grant.version,
    }  # fmt: skip
    user = getattr(grant, "user", None)
    if user is not None:
        return [Row(user=user, **base)]
    team = grant.group.team
    return [Row(user=member, team=team, **base) for member in seats.get(grant.group_id, [])] or [Row(team=team, **base)]


def _attach_attestations(tenant_id: Any, rows: list[Row]) -> None:
    """Each row's last attestation (when, by whom), in one query (the latest per grant wins)."""
    if not rows:
        return
    ids = {row.grant_id for row in rows}
    latest: dict[tuple[str, str], Attestation] = {}
    found = (
        Attestation.objects.filter(tenant_id=tenant_id, grant_id__in=ids)
        .only("grant_kind", "grant_id", "attested_at", "attested_by_name")
        .order_by("grant_kind", "grant_id", "-attested_at")
    )
    for attestation in found:
        latest.setdefault((attestation.grant_kind, attestation.grant_id), attestation)
    for row in rows:
        last = latest.get((row.kind, row.grant_id))
        if last is not None:
            row.attested_at, row.attested_by = last.attested_at, last.attested_by_name


# -- writes ------------------------------------------------------------------------------------------------------


class GrantsNotFound(NotFound):
    """Some grant ids name nothing the reviewer may see in this organization's scope: nothing was done."""

    def __init__(self, missing: Sequence[str]):
        super().__init__(
            "These grants are not in this organization's access review: " + ", ".join(missing) + ". Nothing was "
            "changed.",
            code="grants_not_found",
        )
        self.missing = list(missing)

    def payload(self) -> dict[str, Any]:
        return {**super().payload(), "grants": self.missing}


@dataclass
class Outcome:
    """What a bulk attest or revoke did: the grants done, and each refused one with its code and reason."""

    done: list[str] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"done": self.done, "refused": self.refused}


class GrantsRefused(Forbidden):
    """Every grant of the request was refused: nothing was done."""

    def __init__(self, outcome: Outcome):
        reasons = "; ".join(f"{r['grant']}: {r['detail']}" for r in outcome.refused)
        super().__init__(f"No grant could be changed, nothing was changed. {reasons}", "grants_refused")
        self.outcome = outcome

    def payload(self) -> dict[str, Any]:
        return {**super().payload(), **self.outcome.as_dict()}


@dataclass(frozen=True)
class Target:
    """A grant a bulk request names, resolved: its kind, its row (a TenantMembership for a tenant administrator)."""

    kind: str
    grant_id: str
    row: Any
    version: int | None = None  # the version the reviewer read: a row changed since is refused (stale)

    @property
    def place(self) -> Organization | Project | Any:
        return self.row.tenant if self.kind == GrantKind.TENANT_ADMIN else self.row.content_object

    @property
    def org(self) -> Organization | None:
        place = self.place
        return place if isinstance(place, Organization) else place.org if isinstance(place, Project) else None

    @property
    def holder(self) -> str:
        user = getattr(self.row, "user", None)
        return user.get_username() if user is not None else f"team:{self.row.group.team.name}"

    @property
    def role_key(self) -> str:
        return "tenant_admin" if self.kind == GrantKind.TENANT_ADMIN else self.row.role.key


def clean_ids(values: Any) -> list[str]:
    """The grants of a bulk request: a non-empty list of at most MAX_BULK references, each a UUID or
    ``<UUID>@<version>`` (duplicates dropped), normalized; else a ValidationError on ``grants`` saying what is
    wrong."""
    if not isinstance(values, list | tuple) or not values:
        raise ValidationError({"grants": ["Give a non-empty list of grant ids."]})
    if len(values) > MAX_BULK:
        raise ValidationError({"grants": [f"Give at most {MAX_BULK} grant ids at a time."]})
    refs: list[str] = []
    for value in values:
        raw, _, version = str(value).partition("@")
        try:
            ref = str(UUID(raw))
            if version:
                if not version.isdigit() or len(version) > 9:
                    raise ValueError(version)
                ref += f"@{int(version)}"
        except (TypeError, ValueError):
            raise ValidationError({"grants": [f"“{str(value)[:60]}” is not a grant id."]}) from None
        if ref not in refs:
            refs.append(ref)
    return refs


def _split(ref: str) -> tuple[str, int | None]:
    grant_id, _, version = ref.partition("@")
    return grant_id, int(version) if version else None


def resolve(org: Organization, viewer: Any, grant_ids: Any) -> list[Target]:
    """The grants ``grant_ids`` name in ``org``'s review scope (its path and its subtree, in its tenant) that
    ``viewer`` may see in its review (see ``shown``): all of them, or GrantsNotFound naming the others. One query
    per grant table, one for the tenant administrators, one for the path's cuts."""
    versions = dict(_split(ref) for ref in grant_ids)
    ids = list(versions)
    found: dict[str, Target] = {}
    path = Q(content_object__tree_id=org.tree_id, content_object__lft__lte=org.lft, content_object__rght__gte=org.rght)
    below = Q(content_object__tree_id=org.tree_id, content_object__lft__gte=org.lft, content_object__lft__lte=org.rght)
    project_below = Q(
        content_object__org__tree_id=org.tree_id,
        content_object__org__lft__gte=org.lft,
        content_object__org__lft__lte=org.rght,
    )
    for kind, model in _MODELS.items():
        on_project = kind in (GrantKind.PROJECT_USER, GrantKind.PROJECT_TEAM)
        where = project_below if on_project else path | below
        related = "content_object__org" if on_project else "content_object"
        holder = "group__team" if kind in (GrantKind.ORG_TEAM, GrantKind.PROJECT_TEAM) else "user"
        for grant in model.objects.filter(where, pk__in=ids).select_related("role", related, holder):
            found[str(grant.pk)] = Target(kind, str(grant.pk), grant, versions[str(grant.pk)])
    admins = TenantMembership.objects.filter(tenant_id=org.tenant_id, is_admin=True, user_id__in=ids)
    for membership in admins.select_related("user", "tenant"):
        user_id = str(membership.user_id)
        found.setdefault(user_id, Target(GrantKind.TENANT_ADMIN, user_id, membership, versions[user_id]))
    # What the review shows the viewer: the org's own rows (tenant administrators, grants from above that reach it)
    # to whoever may see its review, those below where they hold member.view.
    ancestors = list(Organization.objects.filter(org.ancestors_q(include_self=False)))
    cuts = [a for a in [*ancestors, org] if a.access_inheritance != Organization.AccessInheritance.ALL]
    sees_org = policy.can(viewer, "member.view", org)

    def shown(target: Target) -> bool:
        place = target.place
        if target.kind == GrantKind.TENANT_ADMIN:
            return sees_org
        if isinstance(place, Organization) and place.lft < org.lft:
            return sees_org and _reaches(target.row, org, cuts)
        return policy.can(viewer, "member.view", place)

    visible = {grant_id: target for grant_id, target in found.items() if shown(target)}
    missing = [grant_id for grant_id in ids if grant_id not in visible]
    if missing:
        raise GrantsNotFound(missing)
    return [visible[grant_id] for grant_id in ids]


def _authorize(actor: Any, target: Target) -> None:
    """What attesting and revoking a grant both need (see the module)."""
    if target.kind == GrantKind.TENANT_ADMIN:
        policy.authorize(actor, policy.TENANT_ADMIN, target.place)
        return
    policy.authorize(actor, "member.manage", target.place)
    authorize_role(actor, target.place, target.row.role, "attest")


def _each(targets: list[Target], act: Any) -> Outcome:
    outcome = Outcome()
    for target in targets:
        try:
            with transaction.atomic():
                act(target)
        except DomainError as exc:
            outcome.refused.append({"grant": target.grant_id, "code": exc.code, "detail": exc.detail})
        else:
            outcome.done.append(target.grant_id)
    if targets and not outcome.done:
        raise GrantsRefused(outcome)
    return outcome


def attest(*, actor: Any, org: Organization, grant_ids: Any, note: str = "") -> Outcome:
    """Attest each grant named (see the module): an Attestation and a ``grant.attest`` audit event each."""
    note = (note or "").strip()
    if len(note) > 1000:
        raise ValidationError({"note": ["The note holds at most 1000 characters."]})
    targets = resolve(org, actor, clean_ids(grant_ids))
    user = actor if getattr(actor, "is_authenticated", False) else None

    def act(target: Target) -> None:
        # the row as it is now, under its lock: the role attested is the one in force (and the one the reviewer
        # read, when the reference carries its version)
        target = replace(target, row=lock_for_update(target.row, target.version))
        _authorize(actor, target)
        place_org = target.org
        Attestation.objects.create(
            tenant_id=org.tenant_id, org=place_org, grant_kind=target.kind, grant_id=target.grant_id,
            holder_name=target.holder[:200], role_key=target.role_key, attested_by=user,
            attested_by_name=user.get_username() if user is not None else "system", note=note,
        )  # fmt: skip
        place = target.place
        audit.record(
            actor=actor, action=ATTEST_ACTION, tenant=org.tenant_id, org=place_org, target=target.row,
            target_name=f"{target.holder} on {getattr(place, 'name', 'the tenant')}",
            changes={"holder": target.holder, "role": target.role_key, "on": place._meta.model_name,
                     "place": getattr(place, "name", ""), "note": note},
        )  # fmt: skip

    return _each(targets, act)


def revoke(*, actor: Any, org: Organization, grant_ids: Any) -> Outcome:
    """Revoke each grant named through the grant services (see the module); each revocation's audit event says it
    came from the access review."""
    targets = resolve(org, actor, clean_ids(grant_ids))

    def act(target: Target) -> None:
        via = {"via": "access review"}
        with audit.annotating("grant.delete", via), audit.annotating("tenant.admin_change", via):
            if target.kind == GrantKind.TENANT_ADMIN:
                set_tenant_admin(actor=actor, tenant=target.row.tenant, user=target.row.user, is_admin=False,
                                 version=target.version)  # fmt: skip
            else:
                revoke_grant(actor=actor, grant=target.row, version=target.version)

    return _each(targets, act)
