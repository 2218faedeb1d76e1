"""The capability vocabulary and the built-in roles: one table in code (docs/DESIGN.md §3)."""

from typing import Any

CAPABILITIES: tuple[str, ...] = (
    "org.view",
    "org.manage",
    "org.create_child",
    "member.view",
    "member.manage",
    "project.view",
    "project.manage",
    "task.view",
    "task.create",
    "task.edit",
    "task.delete",
    "task.run",
    "task.share",
    "credential.view",
    "credential.manage",
    "lookup.view",
    "lookup.manage",
    "envvar.view",
    "envvar.manage",
    "component.view",
    "component.manage",
    "runtime.view",
    "runtime.manage",
    "policy.manage",
    "audit.view",
)
ALL_CAPABILITIES: frozenset[str] = frozenset(CAPABILITIES)

# Tenant-level capabilities that no role can hold: tenant administrators (create, move, delete and restore
# organizations, manage the tenant) and superusers (change a tenant's plan).
TENANT_ADMIN = "tenant.admin"
TENANT_PLAN = "tenant.plan"
# Publishing a component version: held by the component's development team only, never through a role
# (config.kinds.DevelopmentTeam.exclusive).
COMPONENT_PUSH = "component.push"

_GUEST = frozenset({"org.view", "member.view", "project.view", "task.view", "component.view", "runtime.view"})
_INTEGRATOR = _GUEST | {
    "task.create",
    "task.edit",
    "task.delete",
    "task.run",
    "task.share",
    "credential.view",
    "credential.manage",
    "lookup.view",
    "lookup.manage",
    "envvar.view",
}
# Admin holds everything except creating child organizations, which stays with tenant administrators unless a
# custom role grants it (docs/DESIGN.md §3).
_ADMIN = ALL_CAPABILITIES - {"org.create_child"}

BUILTIN_ROLES: dict[str, frozenset[str]] = {
    "admin": _ADMIN,
    "integrator": frozenset(_INTEGRATOR),
    "guest": _GUEST,
}
BUILTIN_ROLE_NAMES: dict[str, str] = {"admin": "Admin", "integrator": "Integrator", "guest": "Guest"}
BUILTIN_ROLE_DESCRIPTIONS: dict[str, str] = {
    "admin": "Manages members, projects, resources, settings and runtimes; sees the audit log.",
    "integrator": "Builds and runs integrations: tasks, credentials and lookup tables.",
    "guest": "Views integration tasks, run logs and errors.",
}


def ensure_builtin_roles(*, using: str, apps: Any) -> None:
    """The built-in roles as rows (grants point at them), created when missing. Run after every migrate and after
    every flush (Django's post_migrate, as contenttypes and permissions do): a database emptied by ``flush`` — a
    transactional test's teardown, a reset — gets them back, so nothing depends on the data migration's rows
    surviving. Their capabilities live in BUILTIN_ROLES, never in the rows."""
    role = apps.get_model("access", "Role")
    for key, name in BUILTIN_ROLE_NAMES.items():
        role.objects.using(using).get_or_create(
            key=key, tenant=None, defaults={"name": name, "description": BUILTIN_ROLE_DESCRIPTIONS[key], "org": None}
        )


def role_capabilities(key: str, is_builtin: bool, custom: list[str] | None) -> frozenset[str]:
    """Built-in roles take their capabilities from the table above, never from the database; custom roles
    from their stored list, restricted to the vocabulary."""
    if is_builtin:
        return BUILTIN_ROLES.get(key, frozenset())
    return frozenset(custom or ()) & ALL_CAPABILITIES


# What a task share gives, by guardian permission codename (the share's level): view < run < edit.
SHARE_LEVELS: dict[str, frozenset[str]] = {
    "view_task": frozenset({"task.view"}),
    "run_task": frozenset({"task.view", "task.run"}),
    "change_task": frozenset({"task.view", "task.run", "task.edit"}),
}
