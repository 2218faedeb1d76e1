"""Granting, changing and revoking roles on organizations and projects; tenant membership and administrators.

Rules enforced here, whatever face calls:
- the actor needs ``member.manage`` on the org or project (a project grant needs it on the project);
- no escalation: the role granted holds no capability the actor lacks there (tenant administrators excepted);
- a user must belong to the tenant before holding a role in it; a team must be defined at the org or above;
- one grant per holder and object (guardian's unique row); a second one is a conflict: change the role instead;
- a tenant never loses its last tenant administrator.

Changes and removals re-read their row under a lock, decide the delegation rule on that fresh row (the role being
changed is the one it holds now, not the one the caller saw), write only what changed (the row's version + 1) and
take ``version=`` (If-Match, the console's hidden field): a grant or membership changed since is refused with Stale.
Grant events name the grant as their target (``org`` says where), so Stale can say who changed it last.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from access import audit, policy
from access.models import (
    OrgTeamGrant,
    OrgUserGrant,
    ProjectTeamGrant,
    ProjectUserGrant,
    Role,
    Team,
    TenantMembership,
)
from access.services.backing import revoke_unbacked_invitations
from access.signals import member_leaving_tenant
from config.actors import user_or_none
from config.concurrency import Versions, check_version, save_changes
from config.errors import Conflict, NotFound
from orgs.locks import lock_tenant
from orgs.models import Organization, Project, Tenant

Grant = OrgUserGrant | OrgTeamGrant | ProjectUserGrant | ProjectTeamGrant


def _hold_role_permission_id(model_label: str) -> int:
    # Not cached across calls: a cached id would outlive a flushed database (transactional tests, restores).
    app_label, model = model_label.split(".")
    content_type = ContentType.objects.get_by_natural_key(app_label, model)
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type,
        codename="hold_role",
        defaults={"name": f"Holds a role in the {model}"},
    )
    return permission.pk


def hold_role_permission_id(obj: Organization | Project) -> int:
    return _hold_role_permission_id(obj._meta.label_lower)


def _org_of(target: Organization | Project) -> Organization:
    return target.org if isinstance(target, Project) else target


def roles_available(org: Organization) -> list[Role]:
    """Built-in roles plus the custom roles defined at ``org`` or above it, in one query."""
    return list(
        Role.objects.filter(
            Q(tenant__isnull=True)
            | Q(
                tenant_id=org.tenant_id,
                org__tree_id=org.tree_id,
                org__lft__lte=org.lft,
                org__rght__gte=org.rght,
            )
        ).order_by("tenant_id", "name")
    )


def resolve_role(org: Organization, role: Role | str) -> Role:
    """A role usable at ``org``, given as a Role or its key; an unusable one is a field error."""
    key = role.key if isinstance(role, Role) else str(role or "")
    for candidate in roles_available(org):
        if candidate.key == key and (not isinstance(role, Role) or candidate.pk == role.pk):
            return candidate
    raise ValidationError({"role": [f"“{key}” is not a role available in {org.name}."]})


def authorize_role(actor: Any, target: Organization | Project, role: Role, verb: str = "grant") -> None:
    """The delegation rule for a role at ``target``: the actor holds every capability of the role there."""
    policy.authorize_delegation(actor, role.capabilities, target, action=f"{verb} the role {role.name}")


def _check_team_usable(actor: Any, org: Organization, team: Team) -> None:
    """A team holds roles at its org or below, and only a team the actor may see can be given one (a team they
    cannot open answers like one that does not exist: its name is not echoed)."""
    usable = Organization.objects.filter(org.ancestors_q(), pk=team.org_id).exists()
    if not usable or not policy.can(actor, "member.view", team.org):
        raise ValidationError({"team": ["No such team at this organization or above it."]})


def _holders(grant: Any) -> list[Any]:
    """The users whose rights a grant gives: its user, or the members of its team."""
    user = getattr(grant, "user", None)
    return [user] if user is not None else list(grant.group.user_set.all())


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": ["The expiry must be in the future."]})


def _grant_model(target: Organization | Project, *, team: bool) -> type[Grant]:
    if isinstance(target, Project):
        return ProjectTeamGrant if team else ProjectUserGrant
    return OrgTeamGrant if team else OrgUserGrant


def grant_role(
    *,
    actor: Any,
    target: Organization | Project,
    role: Role | str,
    user: Any = None,
    team: Team | None = None,
    expires_at: datetime | None = None,
) -> Grant:
    """Give ``user`` or ``team`` the role ``role`` on ``target`` (an org, inherited below it, or one project)."""
    if (user is None) == (team is None):
        raise ValidationError({"user": ["Give either a user or a team."]})
    policy.authorize(actor, "member.manage", target)
    org = _org_of(target)
    role = resolve_role(org, role)
    _check_expiry(expires_at)
    authorize_role(actor, target, role)
    if team is not None:
        _check_team_usable(actor, org, team)
    with transaction.atomic():
        if user is not None and not TenantMembership.objects.filter(tenant_id=org.tenant_id, user=user).exists():
            raise ValidationError({"user": ["This user is not a member of the tenant: invite them first."]})
        model = _grant_model(target, team=team is not None)
        holder = {"user": user} if user is not None else {"group_id": team.group_id}  # type: ignore[union-attr]
        if model.objects.filter(content_object=target, **holder).exists():
            raise Conflict("This member already holds a role here: change that role instead.", code="already_member")
        try:
            with transaction.atomic():
                grant = model.objects.create(
                    content_object=target,
                    permission_id=hold_role_permission_id(target),
                    role=role,
                    expires_at=expires_at,
                    granted_by=user_or_none(actor),
                    **holder,
                )
        except IntegrityError:
            raise Conflict("This member already holds a role here.", code="already_member") from None
        audit.record(
            actor=actor,
            action="grant.create",
            tenant=org.tenant_id,
            org=org,
            target=grant,
            target_name=_grant_name(grant, target),
            changes={
                "holder": user.get_username() if user is not None else f"team:{team.name}",  # type: ignore[union-attr]
                "role": role.key,
                **_place(target),
                "expires_at": expires_at,
            },
        )
    policy.forget(user)
    return grant


def change_grant(
    *,
    actor: Any,
    grant: Grant,
    role: Role | str | None = None,
    expires_at: datetime | object | None = ...,
    version: Versions = None,
) -> Grant:
    """Change a grant's role or expiry. Both change what its holder can do, so the actor must hold the role the
    grant has now (read under the lock) and the new one: lowering someone who holds more than the actor is
    escalation in disguise. Returns the fresh grant."""
    target = grant.content_object
    policy.authorize(actor, "member.manage", target)
    org = _org_of(target)
    with transaction.atomic():
        grant = _lock_grant(grant, version)
        authorize_role(actor, target, grant.role, "change")
        fields: dict[str, Any] = {}
        if role is not None:
            new_role = resolve_role(org, role)
            authorize_role(actor, target, new_role)
            fields["role"] = new_role
        if expires_at is not ...:
            if expires_at != grant.expires_at:
                _check_expiry(expires_at)  # type: ignore[arg-type]
            fields["expires_at"] = expires_at
        old_role = grant.role
        changes = save_changes(grant, fields)
        if changes:
            if "role" in changes:
                changes["role"] = [old_role.key, grant.role.key]
            audit.record(
                actor=actor,
                action="grant.update",
                tenant=org.tenant_id,
                org=org,
                target=grant,
                target_name=_grant_name(grant, target),
                changes={"holder": _holder_name(grant), **_place(target), **changes},
            )
            holders = _holders(grant)
            for holder in holders:
                policy.forget(holder)
            revoke_unbacked_invitations(actor=actor, tenant_id=org.tenant_id, inviters=holders)
    return grant


def revoke_grant(*, actor: Any, grant: Grant, version: Versions = None) -> None:
    """End a grant. The actor must hold the role it has now (read under the lock): removing rights one does not
    hold is escalation too."""
    target = grant.content_object
    policy.authorize(actor, "member.manage", target)
    org = _org_of(target)
    with transaction.atomic():
        grant = _lock_grant(grant, version)
        authorize_role(actor, target, grant.role, "remove")
        audit.record(
            actor=actor,
            action="grant.delete",
            tenant=org.tenant_id,
            org=org,
            target=grant,
            target_name=_grant_name(grant, target),
            changes={"holder": _holder_name(grant), "role": grant.role.key, **_place(target)},
        )
        holders = _holders(grant)
        grant.delete()
        for holder in holders:
            policy.forget(holder)
        revoke_unbacked_invitations(actor=actor, tenant_id=org.tenant_id, inviters=holders)


def _lock_grant(grant: Grant, version: Versions) -> Grant:
    """The grant's row FOR UPDATE, with its role as it is now, at ``version``; NotFound once revoked."""
    fresh = type(grant).objects.select_for_update(of=("self",)).select_related("role").filter(pk=grant.pk).first()
    if fresh is None:
        raise NotFound()
    check_version(fresh, version)
    return fresh


def _place(target: Organization | Project) -> dict[str, str]:
    """Where a grant applies, for its audit events: ``on`` (organization or project) and its name."""
    return {"on": target._meta.model_name, "place": target.name}  # type: ignore[dict-item]


def _grant_name(grant: Grant, target: Organization | Project) -> str:
    return f"{_holder_name(grant)} on {target.name}"


def _holder_name(grant: Grant) -> str:
    user = getattr(grant, "user", None)
    if user is not None:
        return user.get_username()
    return f"team:{grant.group.team.name}"  # type: ignore[union-attr]


# -- tenant membership ---------------------------------------------------------------------------------------------


def add_tenant_member(*, actor: Any, tenant: Tenant, user: Any, is_admin: bool = False) -> TenantMembership:
    policy.authorize(actor, policy.TENANT_ADMIN, tenant)
    with transaction.atomic():
        membership, created = TenantMembership.objects.get_or_create(
            tenant=tenant, user=user, defaults={"is_admin": is_admin}
        )
        if not created and is_admin and not membership.is_admin:
            membership = TenantMembership.objects.select_for_update().get(pk=membership.pk)
            save_changes(membership, {"is_admin": True})
        if created or is_admin:
            audit.record(
                actor=actor,
                action="tenant.member_add",
                tenant=tenant,
                target=membership,
                target_name=user.get_username(),
                changes={"is_admin": membership.is_admin},
            )
    return membership


def set_tenant_admin(
    *, actor: Any, tenant: Tenant, user: Any, is_admin: bool, version: Versions = None
) -> TenantMembership:
    """Make or unmake a tenant administrator; the last one cannot step down. ``version`` is the membership's."""
    policy.authorize(actor, policy.TENANT_ADMIN, tenant)
    with transaction.atomic():
        lock_tenant(tenant.pk)  # serialize the last-admin check
        membership = _lock_membership(tenant, user, version)
        if membership.is_admin == is_admin:
            return membership
        if not is_admin and _admin_count(tenant) <= 1:
            raise Conflict("A tenant keeps at least one tenant administrator.", code="last_tenant_admin")
        changes = save_changes(membership, {"is_admin": is_admin})
        audit.record(
            actor=actor,
            action="tenant.admin_change",
            tenant=tenant,
            target=membership,
            target_name=user.get_username(),
            changes=changes,
        )
        policy.forget(user)
        if not is_admin:
            revoke_unbacked_invitations(actor=actor, tenant_id=tenant.pk, inviters=[user])
    return membership


def remove_tenant_member(*, actor: Any, tenant: Tenant, user: Any, version: Versions = None) -> None:
    """Remove a user from the tenant with everything that gives them access in it: grants, team seats, and what
    other apps hold for them (``member_leaving_tenant``: task shares, development teams). Their account, sessions
    and tokens stay theirs, but reach nothing of this tenant from the next request on; the invitations they sent
    here are revoked. ``version`` is the membership's: a remover who saw it before it changed (say, made a tenant
    administrator) is told so."""
    policy.authorize(actor, policy.TENANT_ADMIN, tenant)
    with transaction.atomic():
        lock_tenant(tenant.pk)
        membership = _lock_membership(tenant, user, version)
        if membership.is_admin and _admin_count(tenant) <= 1:
            raise Conflict("A tenant keeps at least one tenant administrator.", code="last_tenant_admin")
        OrgUserGrant.objects.filter(user=user, content_object__tenant=tenant).delete()
        ProjectUserGrant.objects.filter(user=user, content_object__org__tenant=tenant).delete()
        for team in Team.objects.filter(org__tenant=tenant, group__user=user):
            team.group.user_set.remove(user)
        member_leaving_tenant.send(sender=TenantMembership, tenant=tenant, user=user, actor=actor)
        audit.record(
            actor=actor,
            action="tenant.member_remove",
            tenant=tenant,
            target=membership,
            target_name=user.get_username(),
            changes={"user": user.get_username()},
        )
        membership.delete()
        policy.forget(user)
        revoke_unbacked_invitations(actor=actor, tenant_id=tenant.pk, inviters=[user])


def _lock_membership(tenant: Tenant, user: Any, version: Versions) -> TenantMembership:
    membership = TenantMembership.objects.select_for_update().filter(tenant=tenant, user=user).first()
    if membership is None:
        raise NotFound("This user is not a member of the tenant.")
    check_version(membership, version)
    return membership


def _admin_count(tenant: Tenant) -> int:
    return TenantMembership.objects.filter(tenant=tenant, is_admin=True).count()
