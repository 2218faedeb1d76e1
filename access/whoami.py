"""Who you are here (issue #11 §1): on every org page, the viewer's effective roles at the org and where each comes
from (a direct grant here, inherited from an ancestor, through a team, a grant on one of the org's projects only,
the tenant's administration), and what they can do here in words (access/vocabulary.py).

Decided by ``policy.standing`` from the user's facts the page loaded already (the switcher's), so it costs no query
of its own, except one for the names of custom roles when the user holds one and one for the names of the org's
projects when the user holds a project grant: at most two, whatever the tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from access import policy, selectors, vocabulary
from access.models import Role, TenantMembership
from access.roles import BUILTIN_ROLE_NAMES, COMPONENT_PUSH, TENANT_ADMIN, TENANT_PLAN
from orgs.models import Organization, Project


@dataclass(frozen=True)
class Source:
    """One grant that bears on the user here."""

    role: str  # the role's name
    team: str  # the team it is held through, or ""
    where: str  # "here" | "inherited" | "project"
    place: str  # the org it was granted on (inherited) or the project (project)
    cut_by: str = ""  # the org whose inheritance setting stops it, or ""
    capabilities: list[vocabulary.Capability] = field(default_factory=list)

    @property
    def applies(self) -> bool:
        return not self.cut_by

    @property
    def origin(self) -> str:
        """Where it comes from, in words: "direct", "inherited from Marketing", "through team Ops", …"""
        parts = []
        if self.where == "inherited":
            parts.append(f"inherited from {self.place}")
        elif self.where == "project":
            parts.append(f"on project {self.place} only")
        if self.team:
            parts.append(f"through team {self.team}")
        return ", ".join(parts) or "direct"

    @property
    def text(self) -> str:
        if self.cut_by:
            return f"{self.role} ({self.origin}) does not apply here: {self.cut_by} does not inherit it."
        return f"{self.role} · {self.origin}"


@dataclass(frozen=True)
class WhoAmI:
    summary: list[str]  # the compact line's parts: "Admin · inherited from Marketing", "Tenant administrator", …
    sources: list[Source]  # every grant that bears on the user here, applying or not
    can: list[vocabulary.Area]  # what the user can do at the org, in words
    project_only: bool = False  # the user holds nothing at the org itself, only on some of its projects
    fence: str = ""  # why this request's sign-in does not reach the org, when it does not

    @property
    def sources_worth_listing(self) -> bool:
        """More than the line says: several grants, or one that an inheritance cut stops."""
        return len(self.sources) > 1 or any(not s.applies for s in self.sources)


#: How many roles the compact line names before "and N more".
SUMMARY_PARTS = 3


def _role_names(org: Organization, keys: set[str]) -> dict[str, str]:
    """Role key -> name: the built-in ones from code, the custom ones of the tenant in one query (only if any)."""
    names = {key: BUILTIN_ROLE_NAMES[key] for key in keys if key in BUILTIN_ROLE_NAMES}
    custom = keys - names.keys()
    if custom:
        names.update(Role.objects.filter(tenant_id=org.tenant_id, key__in=custom).values_list("key", "name"))
    return names


def whoami(user: Any, org: Organization) -> WhoAmI:
    """The viewer's standing at ``org``, ready for templates/orgs/_whoami.html."""
    standing = policy.standing(user, org)
    can = vocabulary.by_area(standing.capabilities)
    if standing.superuser:
        return WhoAmI(summary=["Superuser: every capability everywhere"], sources=[], can=can)
    if standing.fence:
        return WhoAmI(summary=["No access with this sign-in"], sources=[], can=can, fence=standing.fence)
    project_names: dict[Any, str] = {}
    if standing.project_ids:
        project_names = dict(
            Project.objects.filter(org=org, pk__in=standing.project_ids).values_list("pk", "name").order_by("name")
        )
    project_grants = [row for row in standing.project_grants if row.object_id in project_names]
    names = _role_names(org, {r.role for r in standing.grants} | {row.key for row in project_grants})
    sources = [
        Source(
            role=names.get(reason.role, reason.role),
            team=reason.team,
            where="here" if reason.org_id == org.pk else "inherited",
            place=reason.org_name,
            cut_by=reason.cut_by,
            capabilities=vocabulary.in_order(reason.capabilities),
        )
        for reason in standing.grants
    ]
    # Those that apply first, granted here before inherited ones.
    sources.sort(key=lambda s: (not s.applies, s.where != "here", s.place, s.role))
    sources += [
        Source(
            role=names.get(row.key, row.key),
            team=row.team_name,
            where="project",
            place=project_names[row.object_id],
            capabilities=vocabulary.in_order(row.capabilities),
        )
        for row in sorted(project_grants, key=lambda r: project_names[r.object_id])
    ]
    summary = [f"Tenant administrator of {org.tenant.name}"] if standing.tenant_admin else []
    summary += [source.text for source in sources if source.applies]
    if len(summary) > SUMMARY_PARTS:  # the line stays one line; the panel lists them all
        summary = [*summary[: SUMMARY_PARTS - 1], f"and {len(summary) - SUMMARY_PARTS + 1} more"]
    at_org = [s for s in sources if s.applies and s.where != "project"]
    return WhoAmI(
        summary=summary or ["No role here"],
        sources=sources,
        can=can,
        project_only=not standing.tenant_admin and not at_org and any(s.where == "project" for s in sources),
    )


# -- who can grant a capability (the 403 page) ---------------------------------------------------------------------

#: How many names of each sort the 403 page lists at most.
GRANTERS_SHOWN = 10


@dataclass(frozen=True)
class Granters:
    """Whom to ask for a capability at an org: the people and teams whose role there lets them grant it (they
    manage members and hold it themselves: docs/DESIGN.md §4.8), and the tenant's administrators. Named only to a
    viewer who may see the org's members (member.view); ``hidden`` says the names were withheld."""

    people: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)
    tenant_admins: list[str] = field(default_factory=list)
    hidden: bool = False
    note: str = ""  # a capability no role grants: who holds it instead

    @property
    def anyone(self) -> bool:
        return bool(self.people or self.teams or self.tenant_admins)


def _first(names: list[str]) -> list[str]:
    return sorted(set(names))[:GRANTERS_SHOWN]


def granters(viewer: Any, org: Organization, capability: str | None) -> Granters:
    """Who can give ``viewer`` ``capability`` at ``org``: four queries at most (the org's grants, as the members
    page reads them, and its tenant's administrators), none when the viewer may not see the members."""
    note = ""
    if capability == TENANT_PLAN:
        return Granters(note="Only a superuser of the platform changes a tenant's plan.")
    if capability == COMPONENT_PUSH:
        note = "Only a component's development team publishes its versions: ask whoever manages the component."
    if not policy.can(viewer, "member.view", org):
        return Granters(hidden=True, note=note)
    admins = list(
        TenantMembership.objects.filter(tenant_id=org.tenant_id, is_admin=True, user__is_active=True)
        .values_list("user__username", flat=True)
        .order_by("user__username")[: GRANTERS_SHOWN + 1]
    )
    if capability in (TENANT_ADMIN, COMPONENT_PUSH):
        return Granters(tenant_admins=_first(admins), note=note)
    needed = {"member.manage"} | ({capability} if capability else set())
    people: list[str] = []
    teams: list[str] = []
    for member in selectors.org_members(org):
        if not needed <= member.role.capabilities:
            continue
        if member.user is not None:
            if member.user.is_active:
                people.append(member.user.username)
        elif member.team is not None:
            teams.append(member.team.name)
    people = [name for name in people if name not in admins]  # named once, as tenant administrators
    return Granters(people=_first(people), teams=_first(teams), tenant_admins=_first(admins), note=note)
