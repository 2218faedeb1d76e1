"""The capability vocabulary in words (issue #11 §1): a human label and a one-line description for every capability
of access.roles (the role vocabulary, plus tenant.admin, tenant.plan and component.push, which no role holds).

Every page that shows a capability shows these words, never the raw key (the key stays available, e.g. as a
tooltip or in the API). tests/test_vocabulary.py fails when a capability lacks its words.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from access.roles import CAPABILITIES, COMPONENT_PUSH, TENANT_ADMIN, TENANT_PLAN


@dataclass(frozen=True)
class Capability:
    key: str
    label: str
    description: str
    area: str

    def __str__(self) -> str:
        return self.label


#: Areas in the order the console lists them ("what you can do here" groups capabilities by area).
AREAS: tuple[str, ...] = (
    "Organization",
    "Members",
    "Projects",
    "Tasks",
    "Credentials",
    "Lookup tables",
    "Environment variables",
    "Components",
    "Runtimes",
    "Security",
    "Tenant",
)

# key -> (area, label, description)
_WORDS: dict[str, tuple[str, str, str]] = {
    "org.view": ("Organization", "View the organization", "Open this organization, its overview and settings."),
    "org.manage": (
        "Organization",
        "Manage the organization",
        "Rename it, change its description and its settings, such as inheritance and allowed runtimes.",
    ),
    "org.create_child": (
        "Organization",
        "Create sub-organizations",
        "Add organizations below this one (where the tenant's plan allows a tree).",
    ),
    "member.view": ("Members", "View members", "See who has which role here, the teams, roles and invitations."),
    "member.manage": (
        "Members",
        "Manage members",
        "Grant and remove roles, manage teams, custom roles and invitations (only capabilities you hold yourself).",
    ),
    "project.view": ("Projects", "View projects", "Open the projects of this organization."),
    "project.manage": ("Projects", "Manage projects", "Create, rename and delete projects."),
    "task.view": ("Tasks", "View tasks and runs", "Open integration tasks, their run history and run logs."),
    "task.create": ("Tasks", "Create tasks", "Add new integration tasks to projects."),
    "task.edit": ("Tasks", "Edit tasks", "Change a task's steps and settings."),
    "task.delete": ("Tasks", "Delete tasks", "Delete integration tasks, with their runs."),
    "task.run": ("Tasks", "Run tasks", "Start and stop runs of integration tasks."),
    "task.share": ("Tasks", "Share tasks", "Share a task with people or teams outside its project."),
    "credential.view": ("Credentials", "View credentials", "See which credentials exist (never their secrets)."),
    "credential.manage": (
        "Credentials",
        "Manage credentials",
        "Create, change, rotate and delete credentials and their secrets.",
    ),
    "lookup.view": ("Lookup tables", "View lookup tables", "Open lookup tables and their rows."),
    "lookup.manage": ("Lookup tables", "Manage lookup tables", "Create, change, import and delete lookup tables."),
    "envvar.view": ("Environment variables", "View environment variables", "See the variables tasks run with."),
    "envvar.manage": (
        "Environment variables",
        "Manage environment variables",
        "Create, change and delete environment variables, secret ones included.",
    ),
    "component.view": ("Components", "View components", "Open reusable components and their versions."),
    "component.manage": (
        "Components",
        "Manage components",
        "Declare, change and delete components and choose their development team.",
    ),
    "component.push": (
        "Components",
        "Publish component versions",
        "Push new versions of a component: only its development team can, never through a role.",
    ),
    "runtime.view": ("Runtimes", "View runtimes", "See the runtimes where tasks run and their agents."),
    "runtime.manage": (
        "Runtimes",
        "Manage runtimes",
        "Register, change and revoke runtimes and their agents' tokens.",
    ),
    "policy.manage": (
        "Security",
        "Manage configuration policies",
        "Set and lock the configuration settings here and below, such as requiring two-factor authentication.",
    ),
    "audit.view": ("Security", "View the audit log", "Read who changed what, when, in this organization and below."),
    "tenant.admin": (
        "Tenant",
        "Administer the tenant",
        "Every capability in the tenant: create, move, delete and restore organizations, manage people and SSO.",
    ),
    "tenant.plan": ("Tenant", "Change the tenant's plan", "Switch the tenant between plans (superusers only)."),
}

#: Every capability that has words: the role vocabulary, then the tenant-level and team-only ones.
ALL_KEYS: tuple[str, ...] = (*CAPABILITIES, COMPONENT_PUSH, TENANT_ADMIN, TENANT_PLAN)

VOCABULARY: dict[str, Capability] = {
    key: Capability(key, _WORDS[key][1], _WORDS[key][2], _WORDS[key][0]) for key in ALL_KEYS if key in _WORDS
}


def describe(key: str) -> Capability:
    """The words of ``key``; an unknown key (a custom role's stale entry) is shown as it is."""
    return VOCABULARY.get(key) or Capability(key, key, "", "Other")


def label(key: str) -> str:
    return describe(key).label


def choices(keys: Iterable[str] = CAPABILITIES) -> list[tuple[str, str]]:
    """Form choices: each key with its label (the form still posts the key)."""
    return [(key, label(key)) for key in keys]


@dataclass(frozen=True)
class Area:
    name: str
    capabilities: list[Capability]


def by_area(keys: Iterable[str]) -> list[Area]:
    """``keys`` in words, grouped by area in the console's order, each area in the vocabulary's order."""
    order = {key: i for i, key in enumerate(ALL_KEYS)}
    wanted = sorted(set(keys), key=lambda k: (order.get(k, len(order)), k))
    groups: dict[str, list[Capability]] = {}
    for key in wanted:
        entry = describe(key)
        groups.setdefault(entry.area, []).append(entry)
    areas = [*AREAS, *(name for name in groups if name not in AREAS)]
    return [Area(name, groups[name]) for name in areas if name in groups]


def in_order(keys: Iterable[str]) -> list[Capability]:
    """``keys`` in words, in the vocabulary's order."""
    return [entry for area in by_area(keys) for entry in area.capabilities]
