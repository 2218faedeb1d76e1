"""Custom roles: named sets of capabilities defined at an org and usable in its subtree.

Defining a role is granting by proxy, and editing one changes what every holder may do at once: the editor must
hold every capability the role has and will have, at the org that defines it and at every place it is granted
(the delegation rule). Otherwise a manager could strip a role from people who hold more than they do, or add to
it where they cannot reach.

Updates and deletes re-read the role under a lock, decide on that fresh row and take ``version=`` (If-Match, the
console's hidden field): a role changed since the caller read it is refused with Stale.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from access import audit, policy
from access.models import Invitation, OrgTeamGrant, OrgUserGrant, ProjectTeamGrant, ProjectUserGrant, Role
from access.roles import ALL_CAPABILITIES, BUILTIN_ROLES
from access.services.backing import revoke_unbacked_invitations
from config.concurrency import Versions, lock_for_update, save_changes
from config.errors import Conflict, Forbidden, NotFound
from orgs.models import Organization

GRANT_MODELS = (OrgUserGrant, OrgTeamGrant, ProjectUserGrant, ProjectTeamGrant)


def _clean_capabilities(capabilities: Any) -> list[str]:
    if not isinstance(capabilities, list | tuple | set | frozenset) or not capabilities:
        raise ValidationError({"capabilities": ["Give a non-empty list of capabilities."]})
    unknown = sorted(str(c) for c in capabilities if c not in ALL_CAPABILITIES)
    if unknown:
        raise ValidationError({"capabilities": [f"Unknown capabilities: {', '.join(unknown)}."]})
    return sorted(set(capabilities))


def _places_granted(role: Role) -> list[Any]:
    """The orgs and projects where ``role`` is granted (unexpired, on live orgs), each once."""
    unexpired = Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    places: dict[Any, Any] = {}
    for model in (OrgUserGrant, OrgTeamGrant):
        for grant in model.objects.filter(unexpired, role=role, content_object__deleted_at__isnull=True).select_related(
            "content_object"
        ):
            places[("org", grant.content_object_id)] = grant.content_object
    for model in (ProjectUserGrant, ProjectTeamGrant):
        for grant in model.objects.filter(
            unexpired, role=role, content_object__org__deleted_at__isnull=True
        ).select_related("content_object__org"):
            places[("project", grant.content_object_id)] = grant.content_object
    return list(places.values())


def create_role(
    *, actor: Any, org: Organization, name: str, capabilities: list[str], key: str = "", description: str = ""
) -> Role:
    policy.authorize(actor, "member.manage", org)
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 100:
        raise ValidationError({"name": ["Give a name of 1 to 100 characters."]})
    key = slugify(key or name)[:50]
    if not key:
        raise ValidationError({"key": ["Give a key made of letters, digits, - or _."]})
    if key in BUILTIN_ROLES:
        raise Conflict(f"“{key}” is a built-in role key.", code="name_taken")
    capabilities = _clean_capabilities(capabilities)
    policy.authorize_delegation(actor, set(capabilities), org, action=f"define the role {name}")
    with transaction.atomic():
        if Role.objects.filter(tenant_id=org.tenant_id, key=key).exists():
            raise Conflict(f"A role with the key “{key}” already exists in this tenant.", code="name_taken")
        role = Role.objects.create(
            tenant_id=org.tenant_id,
            org=org,
            key=key,
            name=name,
            description=(description or "").strip(),
            custom_capabilities=capabilities,
        )
        audit.record(
            actor=actor,
            action="role.create",
            tenant=org.tenant_id,
            org=org,
            target=role,
            changes={"key": key, "capabilities": capabilities},
        )
    return role


def update_role(
    *,
    actor: Any,
    role: Role,
    name: str | None = None,
    capabilities: list[str] | None = None,
    description: str | None = None,
    version: Versions = None,
) -> Role:
    """Editing a role changes what every holder may do at once: no grant is rewritten. The delegation rule is
    decided on the role's capabilities as they are under the lock, not as the caller saw them."""
    if role.is_builtin:
        raise Forbidden("Built-in roles cannot be changed.", code="builtin_role")
    policy.authorize(actor, "member.manage", role.org)
    fields: dict[str, Any] = {}
    if name is not None:
        name = name.strip()
        if not name or len(name) > 100:
            raise ValidationError({"name": ["Give a name of 1 to 100 characters."]})
        fields["name"] = name
    if capabilities is not None:
        fields["custom_capabilities"] = _clean_capabilities(capabilities)
    if description is not None:
        fields["description"] = description.strip()
    with transaction.atomic():
        role = _lock_role(role, version)
        if "custom_capabilities" in fields and fields["custom_capabilities"] != role.custom_capabilities:
            touched = role.capabilities | frozenset(fields["custom_capabilities"])
            action = f"change the capabilities of the role {role.name}"
            for place in [role.org, *_places_granted(role)]:
                policy.authorize_delegation(actor, touched, place, action=action)
        changes = save_changes(role, fields)
        if changes:
            audit.record(
                actor=actor, action="role.update", tenant=role.tenant_id, org=role.org, target=role, changes=changes
            )
            if "custom_capabilities" in changes:
                # Every holder's rights changed: pending invitations of this role, or sent by its holders, may no
                # longer be backed.
                revoke_unbacked_invitations(actor=actor, tenant_id=role.tenant_id)
    return role


def delete_role(*, actor: Any, role: Role, version: Versions = None) -> None:
    if role.is_builtin:
        raise Forbidden("Built-in roles cannot be deleted.", code="builtin_role")
    policy.authorize(actor, "member.manage", role.org)
    with transaction.atomic():
        role = _lock_role(role, version)
        in_use = any(model.objects.filter(role=role).exists() for model in GRANT_MODELS)
        if in_use:
            raise Conflict("This role is still granted: change or revoke those grants first.", code="role_in_use")
        if Invitation.objects.filter(role=role).exists():
            # Invitations keep the role they offered (PROTECT): the record of who was offered what stays true.
            raise Conflict("Invitations were sent with this role: it stays for their record.", code="role_in_use")
        audit.record(
            actor=actor,
            action="role.delete",
            tenant=role.tenant_id,
            org=role.org,
            target=role,
            changes={"key": role.key},
        )
        role.delete()


def _lock_role(role: Role, version: Versions) -> Role:
    """The role's row FOR UPDATE at ``version``; a role of a deleted org answers 404 like a missing one."""
    role = lock_for_update(role, version)
    if role.org.is_deleted:
        raise NotFound()
    return role
