"""Custom roles: named sets of capabilities defined at an org and usable in its subtree."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from access import audit, policy
from access.models import OrgTeamGrant, OrgUserGrant, ProjectTeamGrant, ProjectUserGrant, Role
from access.roles import ALL_CAPABILITIES, BUILTIN_ROLES
from config.errors import Conflict, Forbidden
from orgs.models import Organization


def _clean_capabilities(capabilities: Any) -> list[str]:
    if not isinstance(capabilities, list | tuple | set | frozenset) or not capabilities:
        raise ValidationError({"capabilities": ["Give a non-empty list of capabilities."]})
    unknown = sorted(str(c) for c in capabilities if c not in ALL_CAPABILITIES)
    if unknown:
        raise ValidationError({"capabilities": [f"Unknown capabilities: {', '.join(unknown)}."]})
    return sorted(set(capabilities))


def _check_holds(actor: Any, org: Organization, capabilities: list[str]) -> None:
    """Defining a role is granting by proxy: nobody defines capabilities they do not hold themselves."""
    if actor is None or policy.is_tenant_admin(actor, org.tenant_id):
        return
    missing = set(capabilities) - policy.capabilities(actor, org)
    if missing:
        raise Forbidden(
            f"You cannot define a role with capabilities you do not hold: {', '.join(sorted(missing))}.",
            code="escalation",
        )


def create_role(
    *, actor: Any, org: Organization, name: str, capabilities: list[str], key: str = "", description: str = ""
) -> Role:
    if actor is not None:
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
    _check_holds(actor, org, capabilities)
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
) -> Role:
    """Editing a role changes what every holder may do at once: no grant is rewritten."""
    if role.is_builtin:
        raise Forbidden("Built-in roles cannot be changed.", code="builtin_role")
    if actor is not None:
        policy.authorize(actor, "member.manage", role.org)
    fields: dict[str, Any] = {}
    if name is not None:
        name = name.strip()
        if not name or len(name) > 100:
            raise ValidationError({"name": ["Give a name of 1 to 100 characters."]})
        fields["name"] = name
    if capabilities is not None:
        fields["custom_capabilities"] = _clean_capabilities(capabilities)
        _check_holds(actor, role.org, fields["custom_capabilities"])
    if description is not None:
        fields["description"] = description.strip()
    with transaction.atomic():
        changes = audit.diff(role, fields)
        if changes:
            for key, value in fields.items():
                setattr(role, key, value)
            role.save(update_fields=list(fields))
            audit.record(
                actor=actor, action="role.update", tenant=role.tenant_id, org=role.org, target=role, changes=changes
            )
    return role


def delete_role(*, actor: Any, role: Role) -> None:
    if role.is_builtin:
        raise Forbidden("Built-in roles cannot be deleted.", code="builtin_role")
    if actor is not None:
        policy.authorize(actor, "member.manage", role.org)
    with transaction.atomic():
        in_use = any(
            model.objects.filter(role=role).exists()
            for model in (OrgUserGrant, OrgTeamGrant, ProjectUserGrant, ProjectTeamGrant)
        )
        if in_use:
            raise Conflict("This role is still granted: change or revoke those grants first.", code="role_in_use")
        audit.record(
            actor=actor,
            action="role.delete",
            tenant=role.tenant_id,
            org=role.org,
            target=role,
            changes={"key": role.key},
        )
        role.delete()
