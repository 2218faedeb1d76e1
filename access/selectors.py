"""Reads of the access app that faces list: members (direct and inherited), teams, roles, invitations, audit events.

Whether the caller may read them at all is the policy's question (member.view, audit.view …); these answer what
there is, each in a fixed number of queries whatever the depth of the tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import Q, QuerySet
from django.utils import timezone

from access import policy
from access.models import (
    AuditEvent,
    Invitation,
    OrgTeamGrant,
    OrgUserGrant,
    ProjectTeamGrant,
    ProjectUserGrant,
    Role,
    Team,
    TenantMembership,
)
from orgs.models import Organization, Project


@dataclass(frozen=True)
class Member:
    """A grant that applies at an org (or project): the grant row, where it was made, and whether it is inherited."""

    grant: Any  # OrgUserGrant | OrgTeamGrant | ProjectUserGrant | ProjectTeamGrant
    org: Organization
    inherited: bool

    @property
    def id(self) -> UUID:
        return self.grant.pk

    @property
    def user(self) -> Any:
        return getattr(self.grant, "user", None)

    @property
    def team(self) -> Team | None:
        group = getattr(self.grant, "group", None)
        return group.team if group is not None else None

    @property
    def role(self) -> Role:
        return self.grant.role

    @property
    def expires_at(self) -> datetime | None:
        return self.grant.expires_at


def _unexpired() -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())


def _lets_in(mode: str, role: Role) -> bool:
    """Does an org whose access_inheritance is ``mode`` let a grant of ``role`` made above it flow in?"""
    if mode == Organization.AccessInheritance.NONE:
        return False
    return mode != Organization.AccessInheritance.ADMINS_ONLY or (role.is_builtin and role.key == "admin")


def _cut_applies(grant_org: Organization, role: Role, cuts: list[Organization]) -> bool:
    return all(_lets_in(cut.access_inheritance, role) for cut in cuts if cut.lft > grant_org.lft)


def org_members(org: Organization) -> list[Member]:
    """Grants in effect at ``org``: its own and those inherited from ancestors that no access_inheritance cut
    stops, users first by name then teams. Three queries whatever the depth."""
    path = Q(content_object__tree_id=org.tree_id, content_object__lft__lte=org.lft, content_object__rght__gte=org.rght)
    cuts = list(Organization.objects.filter(org.ancestors_q()).exclude(access_inheritance="all"))
    user_grants = (
        OrgUserGrant.objects.filter(path, _unexpired())
        .select_related("user", "role", "content_object")
        .order_by("user__username", "-content_object__lft")
    )
    team_grants = (
        OrgTeamGrant.objects.filter(path, _unexpired())
        .select_related("group__team", "role", "content_object")
        .order_by("group__team__name", "-content_object__lft")
    )
    members = []
    for grant in [*user_grants, *team_grants]:
        if _cut_applies(grant.content_object, grant.role, cuts):
            members.append(Member(grant=grant, org=grant.content_object, inherited=grant.content_object_id != org.pk))
    return members


def capabilities_crossing(org: Organization, new_mode: str) -> frozenset[str]:
    """What changing ``org``'s access_inheritance to ``new_mode`` starts or stops letting in: the capabilities of
    the unexpired grants held strictly above ``org`` that reach it today (no cut between stops them) and that the
    old and the new mode treat differently. Two queries whatever the depth."""
    above = Q(content_object__tree_id=org.tree_id, content_object__lft__lt=org.lft, content_object__rght__gt=org.rght)
    cuts = list(
        Organization.objects.filter(tree_id=org.tree_id, lft__lt=org.lft, rght__gt=org.rght).exclude(
            access_inheritance="all"
        )
    )

    grants = [
        *OrgUserGrant.objects.filter(above, _unexpired()).select_related("role", "content_object"),
        *OrgTeamGrant.objects.filter(above, _unexpired()).select_related("role", "content_object"),
    ]
    capabilities: set[str] = set()
    for grant in grants:
        if _cut_applies(grant.content_object, grant.role, cuts) and _lets_in(
            org.access_inheritance, grant.role
        ) != _lets_in(new_mode, grant.role):
            capabilities |= grant.role.capabilities
    return frozenset(capabilities)


def project_members(project: Project) -> list[Member]:
    """Grants on the project itself (those of its org are listed on the org)."""
    user_grants = ProjectUserGrant.objects.filter(content_object=project).select_related("user", "role")
    team_grants = ProjectTeamGrant.objects.filter(content_object=project).select_related("group__team", "role")
    return [
        Member(grant=g, org=project.org, inherited=False)
        for g in [*user_grants.order_by("user__username"), *team_grants.order_by("group__team__name")]
    ]


def grant_by_id(grant_id: Any) -> Any:
    """An org or project grant by its id, with what the policy needs to authorize it (or None)."""
    for model in (OrgUserGrant, OrgTeamGrant):
        grant = model.objects.select_related("content_object", "role").filter(pk=grant_id).first()
        if grant is not None:
            return grant
    for model in (ProjectUserGrant, ProjectTeamGrant):
        grant = model.objects.select_related("content_object__org", "role").filter(pk=grant_id).first()
        if grant is not None:
            return grant
    return None


def teams_in(org: Organization, *, viewer: Any) -> QuerySet[Team]:
    """Teams defined at ``org`` or above it (the ones that may hold roles here) that ``viewer`` may open: those of
    orgs where they hold member.view. A team they cannot open is neither listed nor usable, so its name and
    members are not shown to them."""
    seen = policy.visible(viewer, "member.view", Organization.objects.filter(org.ancestors_q()))
    return (
        Team.objects.filter(org__tree_id=org.tree_id, org__lft__lte=org.lft, org__rght__gte=org.rght, org__in=seen)
        .select_related("org")
        .order_by("name")
    )


def custom_roles_in(org: Organization) -> QuerySet[Role]:
    """Custom roles defined at ``org`` or above it (usable here)."""
    return Role.objects.filter(
        tenant_id=org.tenant_id, org__tree_id=org.tree_id, org__lft__lte=org.lft, org__rght__gte=org.rght
    ).select_related("org")


def tenant_memberships(tenant: Any, search: str = "") -> QuerySet[TenantMembership]:
    """The tenant's members with their accounts, administrators first, then by username."""
    members = TenantMembership.objects.filter(tenant=tenant).select_related("user")
    if search:
        members = members.filter(Q(user__username__icontains=search) | Q(user__email__icontains=search))
    return members.order_by("-is_admin", "user__username")


def invitations_of(org: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(org=org).select_related("role", "invited_by", "accepted_by")


def audit_events(org: Organization) -> QuerySet[AuditEvent]:
    """Events about ``org`` and its subtree, newest first; at the root also the tenant-wide ones (no org)."""
    condition = Q(org__tree_id=org.tree_id, org__lft__gte=org.lft, org__lft__lte=org.rght)
    if org.is_root:
        condition |= Q(tenant_id=org.tenant_id, org__isnull=True)
    return AuditEvent.objects.filter(condition).select_related("org").order_by("-created_at")
