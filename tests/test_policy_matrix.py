"""Every built-in role × every capability × every position, for user, team and project grants.

The expected table is written out here by hand from docs/DESIGN.md §3 (not derived from access.roles), so a change
to the role table in code fails these tests until someone decides it on purpose.

Positions, for a grant on Marketing in Acme:
    Acme (root, above the grant) › Marketing (the org itself) › EMEA (a descendant)
                                              › Closed (access_inheritance = none)
                                              › Vault (access_inheritance = admins_only)
    Acme › Logistics (a sibling)        Globex (another tenant)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from access import policy
from access.roles import CAPABILITIES
from access.services.grants import grant_role
from access.services.teams import add_team_member, create_team
from config import kinds
from config.actors import SYSTEM
from config.errors import Forbidden, NotFound
from orgs.models import Organization, Project
from orgs.services import update_org
from tests.factories import UserFactory, add_to_tenant, build_world, make_org, make_project

Y, N = True, False
# capability: (guest, integrator, admin) — docs/DESIGN.md's table, plus the "Admins additionally …" sentence.
EXPECTED: dict[str, tuple[bool, bool, bool]] = {
    "org.view": (Y, Y, Y),
    "org.manage": (N, N, Y),
    "org.create_child": (N, N, N),  # tenant administrators only, unless a custom role grants it
    "member.view": (Y, Y, Y),
    "member.manage": (N, N, Y),  # add or remove a member, change roles, invite
    "project.view": (Y, Y, Y),
    "project.manage": (N, N, Y),
    "task.view": (Y, Y, Y),  # view integration tasks, run logs, errors
    "task.create": (N, Y, Y),
    "task.edit": (N, Y, Y),
    "task.delete": (N, Y, Y),
    "task.run": (N, Y, Y),  # run / stop
    "task.share": (N, Y, Y),
    "credential.view": (N, Y, Y),
    "credential.manage": (N, Y, Y),
    "lookup.view": (N, Y, Y),
    "lookup.manage": (N, Y, Y),
    "envvar.view": (N, Y, Y),  # integrators read non-secret values (issue #4)
    "envvar.manage": (N, N, Y),  # add / edit / delete environment variables: Admin only
    "component.view": (Y, Y, Y),
    "component.manage": (N, N, Y),
    "runtime.view": (Y, Y, Y),
    "runtime.manage": (N, N, Y),
    "policy.manage": (N, N, Y),
    "audit.view": (N, N, Y),
}
ROLE_COLUMN = {"guest": 0, "integrator": 1, "admin": 2}


def test_the_expected_table_covers_the_whole_vocabulary() -> None:
    assert set(EXPECTED) == set(CAPABILITIES)


@dataclass
class Setup:
    user: Any
    orgs: dict[str, Organization]
    projects: dict[str, Project]


def _setup(role: str, holder: str) -> Setup:
    world = build_world()
    closed = make_org(world.marketing, "Closed")
    vault = make_org(world.marketing, "Vault")
    update_org(actor=SYSTEM, org=closed, access_inheritance="none")
    update_org(actor=SYSTEM, org=vault, access_inheritance="admins_only")
    newsletter = make_project(world.marketing, "Newsletter")
    user = UserFactory()
    add_to_tenant(user, world.acme)
    if holder == "user":
        grant_role(actor=SYSTEM, target=world.marketing, role=role, user=user)
    elif holder == "team":
        team = create_team(actor=SYSTEM, org=world.root, name="Marketeers")
        add_team_member(actor=SYSTEM, team=team, user=user)
        grant_role(actor=SYSTEM, target=world.marketing, role=role, team=team)
    else:
        grant_role(actor=SYSTEM, target=world.website, role=role, user=user)
    orgs = {
        "itself": world.marketing,
        "descendant": world.emea,
        "inheritance none": closed,
        "admins only": vault,
        "above": world.root,
        "sibling": world.logistics,
        "other tenant": world.globex_root,
    }
    for org in orgs.values():
        org.refresh_from_db()
    projects = {"granted": world.website, "sibling project": newsletter, "other tenant": world.globex_project}
    policy.forget(user)
    return Setup(user=user, orgs=orgs, projects=projects)


def _expected(role: str, capability: str) -> bool:
    return EXPECTED[capability][ROLE_COLUMN[role]]


ORG_POSITIONS = {
    # position: does the grant on Marketing reach it? ("admins" → only the admin role passes)
    "itself": "yes",
    "descendant": "yes",
    "inheritance none": "no",
    "admins only": "admins",
    "above": "no",
    "sibling": "no",
    "other tenant": "no",
}


@pytest.mark.django_db
@pytest.mark.parametrize("holder", ["user", "team"])
@pytest.mark.parametrize("role", ["guest", "integrator", "admin"])
def test_an_org_grant_gives_exactly_the_role_table_where_it_reaches(role: str, holder: str) -> None:
    setup = _setup(role, holder)
    wrong = []
    for position, org in setup.orgs.items():
        reach = ORG_POSITIONS[position]
        reaches = reach == "yes" or (reach == "admins" and role == "admin")
        for capability in CAPABILITIES:
            expected = reaches and _expected(role, capability)
            if policy.can(setup.user, capability, org) != expected:
                wrong.append((position, capability, expected))
    assert wrong == []


@pytest.mark.django_db
@pytest.mark.parametrize("holder", ["user", "team"])
@pytest.mark.parametrize("role", ["guest", "integrator", "admin"])
def test_an_org_grant_reaches_the_projects_of_the_orgs_it_reaches(role: str, holder: str) -> None:
    setup = _setup(role, holder)
    for name in ("granted", "sibling project"):  # both in Marketing
        for capability in CAPABILITIES:
            assert policy.can(setup.user, capability, setup.projects[name]) == _expected(role, capability), (
                name,
                capability,
            )
    assert policy.capabilities(setup.user, setup.projects["other tenant"]) == frozenset()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["guest", "integrator", "admin"])
def test_a_project_grant_gives_that_project_only(role: str) -> None:
    setup = _setup(role, "project")
    for capability in CAPABILITIES:
        assert policy.can(setup.user, capability, setup.projects["granted"]) == _expected(role, capability)
    assert policy.capabilities(setup.user, setup.projects["sibling project"]) == frozenset()
    assert policy.capabilities(setup.user, setup.projects["other tenant"]) == frozenset()
    for position, org in setup.orgs.items():
        assert policy.capabilities(setup.user, org) == frozenset(), position


@pytest.mark.django_db
@pytest.mark.parametrize("holder", ["user", "team", "project"])
@pytest.mark.parametrize("role", ["guest", "integrator", "admin"])
def test_what_is_invisible_answers_not_found(role: str, holder: str) -> None:
    setup = _setup(role, holder)
    for position in ("sibling", "other tenant", "inheritance none", "above"):
        with pytest.raises(NotFound):
            policy.authorize(setup.user, "org.view", setup.orgs[position])
    with pytest.raises(NotFound):
        policy.authorize(setup.user, "project.view", setup.projects["other tenant"])


@pytest.mark.django_db
@pytest.mark.parametrize("holder", ["user", "team"])
@pytest.mark.parametrize("role", ["guest", "integrator", "admin"])
def test_visible_lists_exactly_the_orgs_where_the_grant_reaches(role: str, holder: str) -> None:
    setup = _setup(role, holder)
    visible = set(policy.visible(setup.user, "org.view", Organization.objects.all()))
    expected = {
        org
        for position, org in setup.orgs.items()
        if ORG_POSITIONS[position] == "yes" or (ORG_POSITIONS[position] == "admins" and role == "admin")
    }
    # EMEA's own descendant (Campaigns) is reached too.
    expected |= set(Organization.objects.filter(setup.orgs["descendant"].descendants_q()))
    assert visible == expected


# -- every declared kind of the registry (config/kinds.py): a new kind is covered by registering it -----------------
# Where each declaration sits, for a grant on Marketing: can the role see it (view), and manage it?
DECLARED_POSITIONS = {
    # position: (view reaches, manage reaches)
    "itself": (True, True),
    "descendant": (True, True),
    "above": (True, False),  # declared above the grant: seen from below, managed only where declared
    "sibling": (False, False),
    "other tenant": (False, False),
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["guest", "integrator", "admin"])
@pytest.mark.parametrize("kind", kinds.registry.declared(), ids=lambda k: k.key)
def test_every_declared_kind_follows_the_role_table_where_it_is_declared_above_and_below(
    kind: kinds.Kind, role: str
) -> None:
    setup = _setup(role, "user")
    declared = {
        position: kind.model._default_manager.create(
            org=setup.orgs[position], **{kind.name_field: f"{kind.label[:30]} in {position}"}
        )
        for position in DECLARED_POSITIONS
    }
    wrong = []
    for position, (view_reaches, manage_reaches) in DECLARED_POSITIONS.items():
        item = declared[position]
        sees = view_reaches and _expected(role, kind.view)
        if policy.can(setup.user, kind.view, item) != sees:
            wrong.append((position, kind.view, sees))
        manages = manage_reaches and _expected(role, kind.manage)
        if policy.can(setup.user, kind.manage, item) != manages:
            wrong.append((position, kind.manage, manages))
        expected_error = None if manages else Forbidden if sees else NotFound
        try:
            policy.authorize(setup.user, kind.manage, item)
            raised = None
        except (Forbidden, NotFound) as exc:
            raised = type(exc)
        if raised is not expected_error:
            wrong.append((position, "authorize", expected_error))
    assert wrong == []
    # (rows in orgs: a kind's platform rows, such as the global runtimes offered to every tenant, are not declared)
    in_orgs = kind.model._default_manager.filter(**{f"{kind.within}__isnull": False})
    listed = set(policy.visible(setup.user, kind.view, in_orgs))
    assert listed == {item for item in declared.values() if policy.can(setup.user, kind.view, item)}
