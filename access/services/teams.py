"""Teams: org-level groups of users that hold grants like a user does.

Joining or leaving a team gives or takes every role the team holds, at every place it holds one: changing the
members (or deleting the team) is allowed only to whoever holds each of those roles at its place (the delegation
rule, access.policy.authorize_delegation). So a team granted Admin on an org whose inheritance is cut is no door
into it for a manager of the team's org who cannot reach that org.

Renaming and deleting re-read the team under a lock, decide on that fresh row and take ``version=`` (If-Match, the
console's hidden field): a team changed since the caller read it is refused with Stale.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from access import audit, policy
from access.models import OrgTeamGrant, ProjectTeamGrant, Team, TenantMembership
from access.services.backing import revoke_unbacked_invitations
from config.actors import is_system
from config.concurrency import Versions, lock_for_update, save_changes, touch
from config.errors import Conflict, NotFound
from orgs.models import Organization


def _authorize_team_rights(actor: Any, team: Team, action: str) -> None:
    """The actor holds, at each place, every role the team holds there (unexpired grants on live orgs)."""
    if is_system(actor):
        return
    now = timezone.now()
    unexpired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    org_grants = OrgTeamGrant.objects.filter(unexpired, group_id=team.group_id, content_object__deleted_at__isnull=True)
    project_grants = ProjectTeamGrant.objects.filter(
        unexpired, group_id=team.group_id, content_object__org__deleted_at__isnull=True
    )
    places = [(g.content_object, g.role) for g in org_grants.select_related("content_object", "role")]
    places += [(g.content_object, g.role) for g in project_grants.select_related("content_object__org", "role")]
    if len(places) > 1:  # decide every org from the actor's grants, loaded once
        policy.capabilities_of_many(actor, [place for place, _ in places if isinstance(place, Organization)])
    for place, role in places:
        policy.authorize_delegation(actor, role.capabilities, place, action=f"{action} (it holds {role.name} there)")


def _clean(name: Any) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise ValidationError({"name": ["This field may not be blank."]})
    if len(name) > 100:
        raise ValidationError({"name": ["Ensure this field has no more than 100 characters."]})
    return name


def create_team(*, actor: Any, org: Organization, name: str, description: str = "") -> Team:
    policy.authorize(actor, "member.manage", org)
    name = _clean(name)
    with transaction.atomic():
        if Team.objects.filter(org=org, name__iexact=name).exists():
            raise Conflict(f"A team named “{name}” already exists in {org.name}.", code="name_taken")
        group = Group.objects.create(name=f"team:{uuid.uuid4()}")
        team = Team.objects.create(org=org, name=name, description=(description or "").strip(), group=group)
        audit.record(
            actor=actor, action="team.create", tenant=org.tenant_id, org=org, target=team, changes={"name": name}
        )
    return team


def rename_team(
    *, actor: Any, team: Team, name: str | None = None, description: str | None = None, version: Versions = None
) -> Team:
    """Change a team's name or description (only what differs is written); returns the fresh row."""
    policy.authorize(actor, "member.manage", team.org)
    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = _clean(name)
    if description is not None:
        fields["description"] = description.strip()
    with transaction.atomic():
        team = _lock_team(team, version)
        if "name" in fields and (
            Team.objects.filter(org=team.org, name__iexact=fields["name"]).exclude(pk=team.pk).exists()
        ):
            raise Conflict(f"A team named “{fields['name']}” already exists in {team.org.name}.", code="name_taken")
        changes = save_changes(team, fields)
        if changes:
            audit.record(
                actor=actor, action="team.update", tenant=team.org.tenant_id, org=team.org, target=team, changes=changes
            )
    return team


def delete_team(*, actor: Any, team: Team, version: Versions = None) -> None:
    """Delete a team and, with it, every grant it holds (guardian's group rows cascade). The delegation rule is
    decided under the team's lock, on the grants it holds then."""
    policy.authorize(actor, "member.manage", team.org)
    with transaction.atomic():
        team = _lock_team(team, version)
        _authorize_team_rights(actor, team, f"delete the team {team.name}")
        members = list(team.group.user_set.all())
        audit.record(
            actor=actor,
            action="team.delete",
            tenant=team.org.tenant_id,
            org=team.org,
            target=team,
            changes={"name": team.name},
        )
        group = team.group
        team.delete()
        group.delete()
        for member in members:
            policy.forget(member)
        revoke_unbacked_invitations(actor=actor, tenant_id=team.org.tenant_id, inviters=members)


def _lock_team(team: Team, version: Versions) -> Team:
    """The team's row FOR UPDATE at ``version`` (its org and group kept from the caller's copy: a team never changes
    either); a team of a deleted org answers 404."""
    team = lock_for_update(team, version)
    if team.org.is_deleted:
        raise NotFound()
    return team


def add_team_member(*, actor: Any, team: Team, user: Any, version: Versions = None) -> Team:
    """Add ``user`` to the team; returns the fresh team. Its members are part of it (the API shows them under its
    ETag): the change raises the team's version, so a form opened before it (the admin's, which sets the whole
    member list) is refused instead of dropping the newcomer."""
    policy.authorize(actor, "member.manage", team.org)
    with transaction.atomic():
        team = _lock_team(team, version)
        _authorize_team_rights(actor, team, f"add {user.get_username()} to the team {team.name}")
        if not TenantMembership.objects.filter(tenant_id=team.org.tenant_id, user=user).exists():
            raise ValidationError({"user": ["This user is not a member of the tenant: invite them first."]})
        if team.group.user_set.filter(pk=user.pk).exists():
            raise Conflict(f"{user.get_username()} is already in {team.name}.", code="already_member")
        team.group.user_set.add(user)
        touch(team)  # the members live in auth's group table: the team's version stands for them
        audit.record(
            actor=actor,
            action="team.member_add",
            tenant=team.org.tenant_id,
            org=team.org,
            target=team,
            changes={"user": user.get_username()},
        )
    policy.forget(user)
    return team


def remove_team_member(*, actor: Any, team: Team, user: Any, version: Versions = None) -> Team:
    """Take ``user`` out of the team (raising its version, as adding does); returns the fresh team."""
    policy.authorize(actor, "member.manage", team.org)
    with transaction.atomic():
        team = _lock_team(team, version)
        _authorize_team_rights(actor, team, f"remove {user.get_username()} from the team {team.name}")
        if not team.group.user_set.filter(pk=user.pk).exists():
            raise ValidationError({"user": [f"{user.get_username()} is not in {team.name}."]})
        team.group.user_set.remove(user)
        touch(team)  # the members live in auth's group table: the team's version stands for them
        audit.record(
            actor=actor,
            action="team.member_remove",
            tenant=team.org.tenant_id,
            org=team.org,
            target=team,
            changes={"user": user.get_username()},
        )
        policy.forget(user)
        revoke_unbacked_invitations(actor=actor, tenant_id=team.org.tenant_id, inviters=[user])
    return team
