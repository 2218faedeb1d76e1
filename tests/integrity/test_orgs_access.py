"""No lost updates in the orgs and access packages (issue #10 §1, docs/DESIGN.md §4.9).

For every update service: two copies of one row are loaded, each is changed in turn on a different field, and the
row read back holds both changes (the services re-read under a lock and write only what changed). With the version
of the first read, the second write is refused with Stale, nothing of it lands, and Stale names who changed the row.
The same through the API with If-Match, and through the admin's change forms; and once with real concurrent
writers on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import close_old_connections, connection
from django.utils import timezone

from access.models import (
    AccessToken,
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
from access.services import issue_token, revoke_token
from access.services.custom_roles import create_role, delete_role, update_role
from access.services.grants import (
    change_grant,
    grant_role,
    remove_tenant_member,
    revoke_grant,
    set_tenant_admin,
)
from access.services.invitations import invite, revoke_invitation
from access.services.teams import add_team_member, create_team, delete_team, remove_team_member, rename_team
from config.actors import SYSTEM
from config.errors import Conflict, Forbidden, Stale
from orgs import services
from orgs.models import Organization, Project, Tenant
from tests.factories import UserFactory, add_to_tenant, build_world, make_org

# -- the rows and the two writers ----------------------------------------------------------------------------------


@pytest.fixture
def bob_in_marketing(world):
    """bob (a member of Acme) holds Guest on Marketing."""
    return grant_role(actor=SYSTEM, target=world.marketing, role="guest", user=world.member)


@pytest.fixture
def team(world):
    team = create_team(actor=SYSTEM, org=world.marketing, name="Writers", description="copy")
    add_team_member(actor=SYSTEM, team=team, user=world.member)
    return team


def reread(obj: Any) -> Any:
    return type(obj)._base_manager.get(pk=obj.pk)


def two_copies(obj: Any) -> tuple[Any, Any]:
    """What two people (or tabs) loaded before either saved."""
    return reread(obj), reread(obj)


@dataclass(frozen=True)
class Update:
    """An update service seen twice: ``first`` and ``second`` change different fields of the same row."""

    name: str
    make: Callable[[Any], Any]
    first: Callable[[Any, Any, Any], Any]  # (actor, copy, version)
    second: Callable[[Any, Any, Any], Any]
    has_first: Callable[[Any], bool]
    has_second: Callable[[Any], bool]


def _grant_on(target_name: str, team_holder: bool) -> Callable[[Any], Any]:
    def make(world: Any) -> Any:
        target = world.marketing if target_name == "org" else world.website
        if team_holder:
            team = create_team(actor=SYSTEM, org=world.marketing, name="Holders")
            return grant_role(actor=SYSTEM, target=target, role="guest", team=team)
        return grant_role(actor=SYSTEM, target=target, role="guest", user=world.member)

    return make


IN_A_WEEK = timezone.now().replace(microsecond=0) + timedelta(days=7)


def _grant_case(target_name: str, team_holder: bool) -> Update:
    return Update(
        name=f"change_grant[{target_name}, {'team' if team_holder else 'user'}]",
        make=_grant_on(target_name, team_holder),
        first=lambda actor, grant, version: change_grant(actor=actor, grant=grant, role="integrator", version=version),
        second=lambda actor, grant, version: change_grant(
            actor=actor, grant=grant, expires_at=IN_A_WEEK, version=version
        ),
        has_first=lambda grant: grant.role.key == "integrator",
        has_second=lambda grant: grant.expires_at == IN_A_WEEK,
    )


UPDATES = [
    Update(
        name="update_tenant",
        make=lambda world: add_to_tenant(world.tenant_admin, world.globex, is_admin=True).tenant,
        first=lambda actor, tenant, version: services.update_tenant(
            actor=actor, tenant=tenant, name="Globex Corp", version=version
        ),
        second=lambda actor, tenant, version: services.update_tenant(
            actor=actor, tenant=tenant, plan="paid", version=version
        ),
        has_first=lambda tenant: tenant.name == "Globex Corp",
        has_second=lambda tenant: tenant.plan == "paid",
    ),
    Update(
        name="update_org[name, description]",
        make=lambda world: world.emea,
        first=lambda actor, org, version: services.update_org(actor=actor, org=org, name="EMEA+", version=version),
        second=lambda actor, org, version: services.update_org(
            actor=actor, org=org, description="Europe and beyond", version=version
        ),
        has_first=lambda org: org.name == "EMEA+",
        has_second=lambda org: org.description == "Europe and beyond",
    ),
    Update(
        name="update_org[access_inheritance, name]",
        make=lambda world: world.emea,
        first=lambda actor, org, version: services.update_org(
            actor=actor, org=org, access_inheritance="admins_only", version=version
        ),
        second=lambda actor, org, version: services.update_org(actor=actor, org=org, name="Europe", version=version),
        has_first=lambda org: org.access_inheritance == "admins_only",
        has_second=lambda org: org.name == "Europe",
    ),
    Update(
        name="move_org",
        make=lambda world: world.emea,
        first=lambda actor, org, version: services.update_org(
            actor=actor, org=org, description="moved soon", version=version
        ),
        second=lambda actor, org, version: services.move_org(
            actor=actor, org=org, parent=Organization.objects.get(name="Logistics"), version=version
        ),
        has_first=lambda org: org.description == "moved soon",
        has_second=lambda org: org.parent.name == "Logistics",
    ),
    Update(
        name="update_project",
        make=lambda world: world.website,
        first=lambda actor, project, version: services.update_project(
            actor=actor, project=project, name="Web site", version=version
        ),
        second=lambda actor, project, version: services.update_project(
            actor=actor, project=project, description="The public one", version=version
        ),
        has_first=lambda project: project.name == "Web site",
        has_second=lambda project: project.description == "The public one",
    ),
    _grant_case("org", team_holder=False),
    _grant_case("org", team_holder=True),
    _grant_case("project", team_holder=False),
    _grant_case("project", team_holder=True),
    Update(
        name="rename_team",
        make=lambda world: create_team(actor=SYSTEM, org=world.marketing, name="Writers", description="copy"),
        first=lambda actor, team, version: rename_team(actor=actor, team=team, name="Authors", version=version),
        second=lambda actor, team, version: rename_team(actor=actor, team=team, description="words", version=version),
        has_first=lambda team: team.name == "Authors",
        has_second=lambda team: team.description == "words",
    ),
    Update(
        name="update_role",
        make=lambda world: create_role(
            actor=SYSTEM, org=world.marketing, name="Auditor", capabilities=["org.view", "audit.view"]
        ),
        first=lambda actor, role, version: update_role(actor=actor, role=role, name="Inspector", version=version),
        second=lambda actor, role, version: update_role(
            actor=actor, role=role, capabilities=["org.view", "audit.view", "task.view"], version=version
        ),
        has_first=lambda role: role.name == "Inspector",
        has_second=lambda role: "task.view" in role.custom_capabilities,
    ),
    Update(
        name="update_role[description, name]",
        make=lambda world: create_role(actor=SYSTEM, org=world.marketing, name="Auditor", capabilities=["org.view"]),
        first=lambda actor, role, version: update_role(actor=actor, role=role, description="reads", version=version),
        second=lambda actor, role, version: update_role(actor=actor, role=role, name="Reader", version=version),
        has_first=lambda role: role.description == "reads",
        has_second=lambda role: role.name == "Reader",
    ),
]


@pytest.mark.parametrize("case", UPDATES, ids=lambda case: case.name)
def test_two_stale_copies_both_land(world, case):
    row = case.make(world)
    one, two = two_copies(row)
    case.first(world.tenant_admin, one, None)
    returned = case.second(world.superuser, two, None)
    fresh = reread(row)
    assert case.has_first(fresh) and case.has_second(fresh), "the second save undid the first"
    assert fresh.version == row.version + 2
    assert returned.version == fresh.version  # the service answers with the fresh row


@pytest.mark.parametrize("case", UPDATES, ids=lambda case: case.name)
def test_a_write_at_a_stale_version_is_refused_and_names_who_changed_it(world, case):
    row = case.make(world)
    one, two = two_copies(row)
    read_at = one.version
    case.first(world.tenant_admin, one, read_at)
    with pytest.raises(Stale) as refused:
        case.second(world.superuser, two, read_at)
    fresh = reread(row)
    assert case.has_first(fresh) and not case.has_second(fresh)
    assert fresh.version == read_at + 1
    assert refused.value.version == read_at + 1
    assert refused.value.changed_by == "alice" and refused.value.changed_at is not None
    assert "alice" in refused.value.detail


@pytest.mark.parametrize("case", UPDATES, ids=lambda case: case.name)
def test_the_current_version_or_a_set_holding_it_is_accepted(world, case):
    row = case.make(world)
    current = reread(row).version
    case.first(world.tenant_admin, reread(row), {current - 1, current})
    fresh = reread(row)
    assert case.has_first(fresh) and fresh.version == current + 1


def test_an_update_that_changes_nothing_writes_nothing(world):
    org = reread(world.emea)
    services.update_org(actor=world.tenant_admin, org=org, name="EMEA", description="", version=org.version)
    assert reread(world.emea).version == org.version


# -- deletes and one-way changes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delete:
    """A delete refused at a stale version: ``change`` moves the row on, ``delete`` then comes from an old copy."""

    name: str
    make: Callable[[Any], Any]
    change: Callable[[Any, Any], Any]  # (actor, copy)
    delete: Callable[[Any, Any, Any], Any]  # (actor, copy, version)
    gone: Callable[[Any], bool]


def _membership(world: Any) -> TenantMembership:
    return TenantMembership.objects.get(tenant=world.acme, user=world.member)


DELETES = [
    Delete(
        name="delete_org",
        make=lambda world: world.emea,
        change=lambda actor, org: services.update_org(actor=actor, org=org, name="EMEA+"),
        delete=lambda actor, org, version: services.delete_org(actor=actor, org=org, version=version),
        gone=lambda org: reread(org).deleted_at is not None,
    ),
    Delete(
        name="delete_project",
        make=lambda world: world.website,
        change=lambda actor, project: services.update_project(actor=actor, project=project, name="Web site"),
        delete=lambda actor, project, version: services.delete_project(actor=actor, project=project, version=version),
        gone=lambda project: not Project.objects.filter(pk=project.pk).exists(),
    ),
    Delete(
        name="revoke_grant",
        make=_grant_on("org", team_holder=False),
        change=lambda actor, grant: change_grant(actor=actor, grant=grant, role="admin"),
        delete=lambda actor, grant, version: revoke_grant(actor=actor, grant=grant, version=version),
        gone=lambda grant: not OrgUserGrant.objects.filter(pk=grant.pk).exists(),
    ),
    Delete(
        name="revoke_grant[project, team]",
        make=_grant_on("project", team_holder=True),
        change=lambda actor, grant: change_grant(actor=actor, grant=grant, role="admin"),
        delete=lambda actor, grant, version: revoke_grant(actor=actor, grant=grant, version=version),
        gone=lambda grant: not ProjectTeamGrant.objects.filter(pk=grant.pk).exists(),
    ),
    Delete(
        name="remove_tenant_member",
        make=_membership,
        change=lambda actor, membership: set_tenant_admin(
            actor=actor, tenant=membership.tenant, user=membership.user, is_admin=True
        ),
        delete=lambda actor, membership, version: remove_tenant_member(
            actor=actor, tenant=membership.tenant, user=membership.user, version=version
        ),
        gone=lambda membership: not TenantMembership.objects.filter(pk=membership.pk).exists(),
    ),
    Delete(
        name="delete_team",
        make=lambda world: create_team(actor=SYSTEM, org=world.marketing, name="Writers"),
        change=lambda actor, team: rename_team(actor=actor, team=team, name="Authors"),
        delete=lambda actor, team, version: delete_team(actor=actor, team=team, version=version),
        gone=lambda team: not Team.objects.filter(pk=team.pk).exists(),
    ),
    Delete(
        name="delete_role",
        make=lambda world: create_role(actor=SYSTEM, org=world.marketing, name="Auditor", capabilities=["org.view"]),
        change=lambda actor, role: update_role(actor=actor, role=role, name="Inspector"),
        delete=lambda actor, role, version: delete_role(actor=actor, role=role, version=version),
        gone=lambda role: not Role.objects.filter(pk=role.pk).exists(),
    ),
]


@pytest.mark.parametrize("case", DELETES, ids=lambda case: case.name)
def test_a_delete_from_a_stale_copy_is_refused_and_nothing_is_deleted(world, case):
    row = case.make(world)
    one, two = two_copies(row)
    read_at = one.version
    case.change(world.tenant_admin, one)
    with pytest.raises(Stale) as refused:
        case.delete(world.superuser, two, read_at)
    assert not case.gone(row)
    assert refused.value.changed_by == "alice" and refused.value.version == read_at + 1


@pytest.mark.parametrize("case", DELETES, ids=lambda case: case.name)
def test_a_delete_at_the_current_version_or_without_one_goes_through(world, case):
    row = case.make(world)
    case.change(world.tenant_admin, reread(row))
    case.delete(world.superuser, reread(row), reread(row).version)
    assert case.gone(row)


@pytest.mark.parametrize("case", DELETES, ids=lambda case: case.name)
def test_a_delete_without_a_version_applies_to_the_row_as_it_is(world, case):
    row = case.make(world)
    stale_copy = reread(row)
    case.change(world.tenant_admin, reread(row))
    case.delete(world.superuser, stale_copy, None)
    assert case.gone(row)


def test_a_delete_decides_the_delegation_rule_on_the_role_the_grant_holds_now(world):
    """maria (Integrator on Marketing, member.manage through a custom role) may remove a Guest grant; once an
    administrator raised it to Admin, her remove from the old copy is escalation, decided on the fresh row."""
    maria = UserFactory(username="maria")
    add_to_tenant(maria, world.acme)
    manager = create_role(
        actor=SYSTEM,
        org=world.root,
        name="Guest manager",
        capabilities=["org.view", "member.view", "member.manage", "project.view", "task.view"],
    )
    grant_role(actor=SYSTEM, target=world.marketing, role=manager, user=maria)
    grant = grant_role(actor=SYSTEM, target=world.marketing, role="guest", user=world.member)
    seen_by_maria = reread(grant)
    change_grant(actor=world.tenant_admin, grant=reread(grant), role="admin")
    with pytest.raises(Forbidden) as refused:
        revoke_grant(actor=maria, grant=seen_by_maria)
    assert refused.value.code == "escalation"
    assert reread(grant).role.key == "admin"


def test_a_team_delete_decides_on_the_roles_the_team_holds_under_the_lock(world, team):
    """The delegation rule of a team delete is decided inside the transaction: a role given to the team after the
    deleter loaded it counts."""
    maria = UserFactory(username="maria")
    add_to_tenant(maria, world.acme)
    grant_role(actor=SYSTEM, target=world.marketing, role="admin", user=maria)
    services.update_org(actor=SYSTEM, org=world.campaigns, access_inheritance="none")  # beyond maria's reach
    loaded = reread(team)
    grant_role(actor=SYSTEM, target=world.campaigns, role="admin", team=team)
    with pytest.raises(Forbidden) as refused:
        delete_team(actor=maria, team=loaded)
    assert refused.value.code == "escalation"
    assert Team.objects.filter(pk=team.pk).exists() and Group.objects.filter(pk=team.group_id).exists()


def test_restore_at_a_stale_version_is_refused(world):
    services.delete_org(actor=world.tenant_admin, org=world.emea)
    one, two = two_copies(world.emea)
    read_at = one.version
    services.restore_org(actor=world.tenant_admin, org=one, version=read_at)
    services.delete_org(actor=world.tenant_admin, org=reread(world.emea))
    with pytest.raises(Stale) as refused:
        services.restore_org(actor=world.superuser, org=two, version=read_at)
    assert reread(world.emea).deleted_at is not None
    assert refused.value.version == read_at + 2 and refused.value.changed_by == "alice"


def test_delete_and_restore_give_every_org_of_the_subtree_a_new_version(world):
    before = {org.pk: org.version for org in Organization.objects.filter(pk__in=[world.emea.pk, world.campaigns.pk])}
    services.delete_org(actor=world.tenant_admin, org=world.emea)
    services.restore_org(actor=world.tenant_admin, org=reread(world.emea))
    after = {org.pk: org.version for org in Organization.objects.filter(pk__in=before)}
    assert after == {pk: version + 2 for pk, version in before.items()}


def test_a_move_checks_the_moved_orgs_version(world):
    stale_copy = reread(world.emea)
    services.update_org(actor=world.tenant_admin, org=reread(world.emea), access_inheritance="none")
    with pytest.raises(Stale):
        services.move_org(actor=world.superuser, org=stale_copy, parent=world.logistics, version=stale_copy.version)
    fresh = reread(world.emea)
    assert fresh.parent_id == world.marketing.pk and fresh.access_inheritance == "none"


def test_a_stale_org_copy_cannot_undo_a_move_when_it_is_renamed(world):
    """The rename writes its columns only: lft/rght/parent from the stale copy never reach the row."""
    stale_copy = reread(world.emea)
    services.move_org(actor=world.tenant_admin, org=reread(world.emea), parent=world.logistics)
    services.update_org(actor=world.superuser, org=stale_copy, name="Europe")
    fresh = reread(world.emea)
    assert fresh.parent_id == world.logistics.pk and fresh.name == "Europe"
    assert reread(world.campaigns).lft > fresh.lft and reread(world.campaigns).rght < fresh.rght


def test_a_membership_change_at_a_stale_version_is_refused(world):
    membership = _membership(world)
    _, stale_copy = two_copies(membership)
    set_tenant_admin(actor=world.tenant_admin, tenant=world.acme, user=world.member, is_admin=True, version=1)
    with pytest.raises(Stale) as refused:
        set_tenant_admin(
            actor=world.superuser, tenant=world.acme, user=world.member, is_admin=False, version=stale_copy.version
        )
    assert reread(membership).is_admin is True and refused.value.changed_by == "alice"


def test_two_revokes_of_one_invitation_from_two_copies_revoke_it_once(world, mailoutbox):
    invitation, _ = invite(actor=world.tenant_admin, org=world.marketing, email="new@example.com", role="guest")
    one, two = two_copies(invitation)
    revoke_invitation(actor=world.tenant_admin, invitation=one)
    with pytest.raises(Conflict) as refused:
        revoke_invitation(actor=world.superuser, invitation=two)
    assert refused.value.code == "invitation_revoked"
    assert Invitation.objects.get(pk=invitation.pk).status == "revoked"
    revokes = AuditEvent.objects.filter(action="invitation.revoke", target_id=str(invitation.pk))
    assert list(revokes.values_list("actor_name", flat=True)) == ["alice"]


def test_revoking_a_token_from_an_old_copy_keeps_what_changed_on_it_since(world):
    token, _ = issue_token(user=world.member)
    stale_copy = AccessToken.objects.get(pk=token.pk)
    used_at = timezone.now().replace(microsecond=0)
    AccessToken.objects.filter(pk=token.pk).update(last_used_at=used_at)  # the token was used meanwhile
    revoke_token(actor=world.member, token=stale_copy)
    fresh = AccessToken.objects.get(pk=token.pk)
    assert fresh.revoked_at is not None and fresh.last_used_at == used_at


def test_no_service_accepts_actor_none(world):
    with pytest.raises(TypeError):
        services.update_org(actor=None, org=world.emea, name="Nobody")
    with pytest.raises(TypeError):
        rename_team(actor=None, team=create_team(actor=SYSTEM, org=world.marketing, name="T"), name="U")
    assert reread(world.emea).name == "EMEA"


# -- the API: ETag and If-Match ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: Callable[[Any], str]  # (world) -> the detail URL
    first: dict[str, Any]
    second: dict[str, Any]
    row: Callable[[Any], Any]
    has_second: Callable[[Any], bool]


def _the_grant(world: Any, target_name: str, team_holder: bool) -> Any:
    """The grant a member test works on: bob's (or the Holders team's) on Marketing or the Website project."""
    holders = {
        ("org", False): OrgUserGrant.objects.filter(user=world.member),
        ("org", True): OrgTeamGrant.objects.filter(group__team__name="Holders"),
        ("project", False): ProjectUserGrant.objects.filter(user=world.member),
        ("project", True): ProjectTeamGrant.objects.filter(group__team__name="Holders"),
    }
    grant = holders[(target_name, team_holder)].select_related("role").first()
    return grant or _grant_on(target_name, team_holder)(world)


def _member_url(target_name: str, team_holder: bool) -> Callable[[Any], str]:
    return lambda world: f"/api/v1/members/{_the_grant(world, target_name, team_holder).pk}"


def _member_row(target_name: str, team_holder: bool) -> Callable[[Any], Any]:
    return lambda world: _the_grant(world, target_name, team_holder)


def _team(world: Any) -> Team:
    return Team.objects.filter(org=world.marketing).first() or create_team(
        actor=SYSTEM, org=world.marketing, name="Writers"
    )


def _role(world: Any) -> Role:
    return Role.objects.filter(tenant=world.acme).first() or create_role(
        actor=SYSTEM, org=world.marketing, name="Auditor", capabilities=["org.view"]
    )


def _members(target_name: str, team_holder: bool) -> Endpoint:
    return Endpoint(
        name=f"members[{target_name}, {'team' if team_holder else 'user'}]",
        url=_member_url(target_name, team_holder),
        first={"role": "integrator"},
        second={"expires_at": IN_A_WEEK.isoformat()},
        row=_member_row(target_name, team_holder),
        has_second=lambda grant: grant.expires_at == IN_A_WEEK,
    )


ENDPOINTS = [
    Endpoint(
        name="tenant",
        url=lambda world: f"/api/v1/tenants/{world.acme.pk}",
        first={"name": "Acme Inc"},
        second={"name": "Acme Ltd"},
        row=lambda world: Tenant.objects.get(pk=world.acme.pk),
        has_second=lambda tenant: tenant.name == "Acme Ltd",
    ),
    Endpoint(
        name="org",
        url=lambda world: f"/api/v1/orgs/{world.emea.pk}",
        first={"name": "EMEA+"},
        second={"description": "Europe"},
        row=lambda world: reread(world.emea),
        has_second=lambda org: org.description == "Europe",
    ),
    Endpoint(
        name="project",
        url=lambda world: f"/api/v1/projects/{world.website.pk}",
        first={"name": "Web site"},
        second={"description": "public"},
        row=lambda world: reread(world.website),
        has_second=lambda project: project.description == "public",
    ),
    _members("org", team_holder=False),
    _members("org", team_holder=True),
    _members("project", team_holder=False),
    _members("project", team_holder=True),
    Endpoint(
        name="tenant member",
        url=lambda world: f"/api/v1/tenants/{world.acme.pk}/members/{world.member.pk}",
        first={"is_admin": True},
        second={"is_admin": False},
        row=_membership,
        has_second=lambda membership: membership.is_admin is False,
    ),
    Endpoint(
        name="team",
        url=lambda world: f"/api/v1/teams/{_team(world).pk}",
        first={"name": "Authors"},
        second={"description": "words"},
        row=_team,
        has_second=lambda team: team.description == "words",
    ),
    Endpoint(
        name="role",
        url=lambda world: f"/api/v1/roles/{_role(world).pk}",
        first={"name": "Inspector"},
        second={"description": "reads"},
        row=_role,
        has_second=lambda role: role.description == "reads",
    ),
]


@pytest.fixture
def alice(world, api_as):
    return api_as(world.tenant_admin)


@pytest.fixture
def root(world, api_as):
    return api_as(world.superuser)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: endpoint.name)
def test_the_api_refuses_a_stale_if_match_with_412_and_the_current_etag(world, alice, root, endpoint):
    url = endpoint.url(world)
    read = alice.get(url)
    assert read.status_code == 200
    etag = read["ETag"]
    version = endpoint.row(world).version
    assert etag == f'"{version}"'

    first = alice.patch(url, endpoint.first, format="json", HTTP_IF_MATCH=etag)
    assert first.status_code == 200, first.json()
    assert first["ETag"] == f'"{version + 1}"'

    second = root.patch(url, endpoint.second, format="json", HTTP_IF_MATCH=etag)
    assert second.status_code == 412
    body = second.json()
    assert body["code"] == "stale" and body["version"] == version + 1 and body["changed_by"] == "alice"
    assert body["changed_at"] and second["ETag"] == f'"{version + 1}"'
    row = endpoint.row(world)
    assert row.version == version + 1 and not endpoint.has_second(row)

    again = root.patch(url, endpoint.second, format="json", HTTP_IF_MATCH=second["ETag"])
    assert again.status_code == 200 and again["ETag"] == f'"{version + 2}"'
    assert endpoint.has_second(endpoint.row(world))
    assert root.get(url)["ETag"] == f'"{version + 2}"'


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: endpoint.name)
@pytest.mark.parametrize("header", [None, "*", ' "1", "999" ', "__current__"])
def test_the_api_applies_a_write_without_if_match_with_a_star_or_a_list_holding_the_version(
    world, root, endpoint, header
):
    url = endpoint.url(world)
    version = endpoint.row(world).version
    extra = {}
    if header == "__current__":
        extra["HTTP_IF_MATCH"] = f'"{version}"'
    elif header is not None:
        extra["HTTP_IF_MATCH"] = header.replace('"1"', f'"{version}"')
    response = root.patch(url, endpoint.second, format="json", **extra)
    assert response.status_code == 200, response.json()
    assert endpoint.has_second(endpoint.row(world))


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: endpoint.name)
@pytest.mark.parametrize("header", ["W/{etag}", "{bare}", "garbage", '"-1"', '""'])
def test_the_api_refuses_a_weak_or_malformed_if_match_with_412(world, root, endpoint, header):
    url = endpoint.url(world)
    before = endpoint.row(world)
    tag = header.format(etag=f'"{before.version}"', bare=before.version)
    response = root.patch(url, endpoint.second, format="json", HTTP_IF_MATCH=tag)
    assert response.status_code == 412 and response.json()["code"] == "stale"
    assert response["ETag"] == f'"{before.version}"'
    row = endpoint.row(world)  # nothing written: every write raises the version
    assert row.version == before.version and endpoint.has_second(row) == endpoint.has_second(before)


@pytest.mark.parametrize(
    "url, row, gone",
    [
        (
            lambda world: f"/api/v1/orgs/{world.emea.pk}",
            lambda world: reread(world.emea),
            lambda world: reread(world.emea).deleted_at is not None,
        ),
        (
            lambda world: f"/api/v1/projects/{world.website.pk}",
            lambda world: reread(world.website),
            lambda world: not Project.objects.filter(pk=world.website.pk).exists(),
        ),
        (
            lambda world: f"/api/v1/teams/{_team(world).pk}",
            _team,
            lambda world: not Team.objects.exists(),
        ),
        (
            lambda world: f"/api/v1/roles/{_role(world).pk}",
            _role,
            lambda world: not Role.objects.filter(tenant=world.acme).exists(),
        ),
        (
            _member_url("org", False),
            _member_row("org", False),
            lambda world: not OrgUserGrant.objects.filter(user=world.member).exists(),
        ),
        (
            lambda world: f"/api/v1/tenants/{world.acme.pk}/members/{world.member.pk}",
            _membership,
            lambda world: not TenantMembership.objects.filter(user=world.member, tenant=world.acme).exists(),
        ),
    ],
    ids=["org", "project", "team", "role", "member", "tenant member"],
)
def test_the_api_deletes_only_at_the_current_version(world, alice, root, url, row, gone):
    address = url(world)
    etag = alice.get(address)["ETag"]
    version = row(world).version
    assert etag == f'"{version}"'
    obj = row(world)  # someone else changes it meanwhile

    type(obj)._base_manager.filter(pk=obj.pk).update(version=version + 1)
    refused = root.delete(address, HTTP_IF_MATCH=etag)
    assert refused.status_code == 412 and refused["ETag"] == f'"{version + 1}"'
    assert not gone(world)
    assert root.delete(address, HTTP_IF_MATCH=refused["ETag"]).status_code == 204
    assert gone(world)


def test_the_api_moves_an_org_only_at_its_current_version(world, alice, root):
    url = f"/api/v1/orgs/{world.emea.pk}"
    etag = alice.get(url)["ETag"]
    assert alice.patch(url, {"access_inheritance": "none"}, format="json", HTTP_IF_MATCH=etag).status_code == 200
    move = {"parent": str(world.logistics.pk)}
    refused = root.post(f"{url}/move", move, format="json", HTTP_IF_MATCH=etag)
    assert refused.status_code == 412 and refused.json()["changed_by"] == "alice"
    assert reread(world.emea).parent_id == world.marketing.pk
    moved = root.post(f"{url}/move", move, format="json", HTTP_IF_MATCH=refused["ETag"])
    assert moved.status_code == 200 and moved.json()["parent"] == str(world.logistics.pk)
    assert moved["ETag"] == f'"{int(refused["ETag"].strip(chr(34))) + 1}"'
    assert reread(world.emea).access_inheritance == "none"


def test_the_api_restores_an_org_only_at_its_current_version(world, alice):
    url = f"/api/v1/orgs/{world.emea.pk}"
    etag = alice.get(url)["ETag"]
    assert alice.delete(url, HTTP_IF_MATCH=etag).status_code == 204
    deleted_at = f'"{int(etag.strip(chr(34))) + 1}"'
    assert alice.post(f"{url}/restore", HTTP_IF_MATCH=etag).status_code == 412
    assert reread(world.emea).deleted_at is not None
    restored = alice.post(f"{url}/restore", HTTP_IF_MATCH=deleted_at)
    assert restored.status_code == 200 and restored["ETag"] == f'"{int(etag.strip(chr(34))) + 2}"'
    assert reread(world.emea).deleted_at is None


def test_a_412_tells_no_one_who_may_not_change_the_row(world, api_as):
    """The version check comes after the capability: a caller who sees the org but may not manage it gets 403,
    not the name of whoever changed it."""
    grant_role(actor=SYSTEM, target=world.emea, role="guest", user=world.member)
    response = api_as(world.member).patch(
        f"/api/v1/orgs/{world.emea.pk}", {"name": "Mine"}, format="json", HTTP_IF_MATCH='"999"'
    )
    assert response.status_code == 403 and "changed_by" not in response.json()
    assert reread(world.emea).name == "EMEA"


def test_the_schema_declares_if_match_etag_and_412_on_the_versioned_operations(db, api):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in [
        "/api/v1/tenants/{id}",
        "/api/v1/orgs/{id}",
        "/api/v1/projects/{id}",
        "/api/v1/members/{id}",
        "/api/v1/tenants/{id}/members/{user_id}",
        "/api/v1/teams/{id}",
        "/api/v1/roles/{id}",
    ]:
        operations = paths[path]
        assert "ETag" in operations["get"]["responses"]["200"]["headers"], path
        for method in ("patch", "delete"):
            if method in operations:
                names = {p["name"] for p in operations[method].get("parameters", [])}
                assert "If-Match" in names and "412" in operations[method]["responses"], (path, method)
        assert "ETag" in operations["patch"]["responses"]["200"]["headers"], path
    for action in ("move", "restore"):
        operation = paths[f"/api/v1/orgs/{{id}}/{action}"]["post"]
        assert "If-Match" in {p["name"] for p in operation["parameters"]} and "412" in operation["responses"]


# -- the admin: change forms carry the version they were opened at --------------------------------------------------


@pytest.fixture
def admin_as(client):
    def login(user: Any) -> Any:
        client.force_login(user)
        return client

    return login


def test_an_admin_change_form_carries_the_version_it_was_opened_at(world, admin_as):
    html = admin_as(world.tenant_admin).get(f"/admin/orgs/organization/{world.emea.pk}/change/").content.decode()
    assert f'name="loaded_version" value="{reread(world.emea).version}"' in html


@pytest.mark.parametrize(
    "page, row, form, changed",
    [
        (
            lambda world: f"/admin/orgs/organization/{world.emea.pk}/change/",
            lambda world: reread(world.emea),
            lambda world: {
                "parent": str(world.marketing.pk),
                "name": "Mine",
                "description": "",
                "access_inheritance": "all",
            },
            lambda obj: obj.name == "Mine",
        ),
        (
            lambda world: f"/admin/orgs/project/{world.website.pk}/change/",
            lambda world: reread(world.website),
            lambda world: {"name": "Mine", "description": ""},
            lambda obj: obj.name == "Mine",
        ),
        (
            lambda world: f"/admin/orgs/tenant/{world.acme.pk}/change/",
            lambda world: Tenant.objects.get(pk=world.acme.pk),
            lambda world: {"name": "Mine", "plan": "paid"},
            lambda obj: obj.name == "Mine",
        ),
        (
            lambda world: f"/admin/access/team/{_team(world).pk}/change/",
            _team,
            lambda world: {"name": "Mine", "description": "", "members": []},
            lambda obj: obj.name == "Mine",
        ),
        (
            lambda world: f"/admin/access/role/{_role(world).pk}/change/",
            _role,
            lambda world: {"name": "Mine", "description": "", "capabilities": ["org.view"]},
            lambda obj: obj.name == "Mine",
        ),
        (
            lambda world: (
                f"/admin/access/orgusergrant/{_member_row('org', False)(world).pk}/change/"
                if OrgUserGrant.objects.filter(user=world.member).exists()
                else f"/admin/access/orgusergrant/{_grant_on('org', False)(world).pk}/change/"
            ),
            _member_row("org", False),
            lambda world: {"role": str(Role.objects.get(key="integrator").pk), "expires_at": ""},
            lambda obj: obj.role.key == "integrator",
        ),
        (
            lambda world: f"/admin/access/tenantmembership/{_membership(world).pk}/change/",
            _membership,
            lambda world: {"is_admin": "on"},
            lambda obj: obj.is_admin,
        ),
    ],
    ids=["org", "project", "tenant", "team", "role", "grant", "membership"],
)
def test_a_stale_admin_save_is_refused_with_who_changed_it(world, admin_as, page, row, form, changed):
    client = admin_as(world.tenant_admin)
    address = page(world)
    assert client.get(address).status_code == 200
    opened_at = row(world).version
    obj = row(world)
    # Meanwhile someone else saved (the audit log says who).
    type(obj)._base_manager.filter(pk=obj.pk).update(version=opened_at + 1)
    AuditEvent.objects.create(
        tenant_id=world.acme.pk,
        actor=world.superuser,
        actor_name="root",
        action="test.change",
        target_type=obj._meta.label_lower,
        target_id=str(obj.pk),
        target_name=str(obj),
    )
    response = client.post(address, {**form(world), "loaded_version": opened_at})
    assert response.status_code == 200  # the form again, with what was typed
    html = response.content.decode()
    assert "changed by root" in html
    if "name" in form(world):
        assert 'value="Mine"' in html
    assert not changed(row(world)) and row(world).version == opened_at + 1
    saved = client.post(address, {**form(world), "loaded_version": opened_at + 1})
    assert saved.status_code == 302
    assert changed(row(world)) and row(world).version == opened_at + 2


def test_an_admin_save_that_lost_the_race_under_the_lock_is_refused_by_the_service(world, admin_as, monkeypatch):
    """The form's check passed (the row was at its version when the POST read it); someone saved between that
    read and the service's lock: the service refuses, the admin says why, nothing is overwritten."""
    client = admin_as(world.tenant_admin)
    opened_at = reread(world.emea).version
    real_update = services.update_org

    def someone_saves_first(**kwargs: Any) -> Any:
        Organization.objects.filter(pk=world.emea.pk).update(description="theirs", version=opened_at + 1)
        return real_update(**kwargs)

    monkeypatch.setattr(services, "update_org", someone_saves_first)
    response = client.post(
        f"/admin/orgs/organization/{world.emea.pk}/change/",
        {
            "parent": str(world.marketing.pk),
            "name": "Mine",
            "description": "",
            "access_inheritance": "all",
            "loaded_version": opened_at,
        },
    )
    assert response.status_code == 303  # back to the form, which shows why
    page = client.get(f"/admin/orgs/organization/{world.emea.pk}/change/").content.decode()
    assert "after you loaded it" in page and "changed" in page
    # (The simulated other writer ran inside the admin's transaction, so it is rolled back with it here.)
    assert reread(world.emea).name == "EMEA"


def test_an_admin_save_changes_only_the_fields_the_user_changed(world, admin_as):
    client = admin_as(world.tenant_admin)
    address = f"/admin/orgs/project/{world.website.pk}/change/"
    assert client.get(address).status_code == 200
    # Posted without a version (an old page): the untouched description is not written back over a newer one.
    Project.objects.filter(pk=world.website.pk).update(description="newer")
    response = client.post(address, {"name": "Web site", "description": ""})
    assert response.status_code == 302
    fresh = reread(world.website)
    assert (fresh.name, fresh.description) == ("Web site", "")


# -- real concurrency (PostgreSQL) ---------------------------------------------------------------------------------


def _together(workers: list[Callable[[], None]]) -> list[BaseException]:
    """Start every worker at the same instant (a barrier), each on its own connection; what they raised."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def wrap(work: Callable[[], None]) -> None:
        try:
            barrier.wait(timeout=30)
            work()
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=wrap, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    close_old_connections()
    return errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_of_different_fields_of_one_org_and_project_all_land(postgres_only):
    world = build_world()
    orgs = [make_org(world.root, f"unit-{i}") for i in range(3)]
    org_copies = [reread(org) for org in orgs for _ in range(3)]  # loaded before anyone writes
    project_copies = [reread(world.website) for _ in range(2)]
    workers: list[Callable[[], None]] = []
    for index, copy in enumerate(org_copies):
        field = ("name", "description", "access_inheritance")[index % 3]
        value = {"name": f"{copy.name}-renamed", "description": "described", "access_inheritance": "admins_only"}
        workers.append(lambda c=copy, f=field, v=value[field]: services.update_org(actor=SYSTEM, org=c, **{f: v}))
    workers.append(lambda: services.update_project(actor=SYSTEM, project=project_copies[0], name="Web site"))
    workers.append(lambda: services.update_project(actor=SYSTEM, project=project_copies[1], description="public"))
    assert _together(workers) == []
    for org in orgs:
        fresh = reread(org)
        assert fresh.name.endswith("-renamed") and fresh.description == "described"
        assert fresh.access_inheritance == "admins_only" and fresh.version == org.version + 3
    website = reread(world.website)
    assert (website.name, website.description, website.version) == ("Web site", "public", world.website.version + 2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_at_one_version_one_wins_the_others_are_told(postgres_only):
    world = build_world()
    copies = [reread(world.emea) for _ in range(4)]
    read_at = copies[0].version
    workers = [
        lambda c=copy, i=index: services.update_org(actor=world.tenant_admin, org=c, name=f"n{i}", version=read_at)
        for index, copy in enumerate(copies)
    ]
    errors = _together(workers)
    assert len(errors) == 3 and all(isinstance(error, Stale) for error in errors), errors
    assert {error.changed_by for error in errors} == {"alice"}  # type: ignore[attr-defined]
    fresh = reread(world.emea)
    assert fresh.version == read_at + 1 and fresh.name in {"n0", "n1", "n2", "n3"}


# -- a team's members are part of it -------------------------------------------------------------------------------


def test_a_member_change_raises_the_teams_version_so_a_stale_rename_is_refused(world, team):
    stale_copy = reread(team)
    colleague = UserFactory(username="colleague")
    add_to_tenant(colleague, world.acme)
    fresh = add_team_member(actor=world.tenant_admin, team=reread(team), user=colleague)
    assert fresh.version == stale_copy.version + 1 == reread(team).version
    with pytest.raises(Stale) as refused:
        rename_team(actor=world.superuser, team=stale_copy, name="Authors", version=stale_copy.version)
    assert refused.value.changed_by == "alice" and reread(team).name == "Writers"
    with pytest.raises(Stale):
        remove_team_member(actor=world.superuser, team=stale_copy, user=world.member, version=stale_copy.version)
    assert set(reread(team).group.user_set.values_list("username", flat=True)) == {"bob", "colleague"}


def test_an_admin_team_form_opened_before_a_newcomer_joined_cannot_drop_them(world, team, admin_as):
    client = admin_as(world.tenant_admin)
    address = f"/admin/access/team/{team.pk}/change/"
    assert client.get(address).status_code == 200
    opened_at = reread(team).version
    colleague = UserFactory(username="colleague")
    add_to_tenant(colleague, world.acme)
    add_team_member(actor=world.superuser, team=reread(team), user=colleague)  # meanwhile
    form = {"name": "Writers", "description": "copy", "members": [str(world.member.pk)], "loaded_version": opened_at}
    response = client.post(address, form)
    assert response.status_code == 200 and "changed by root" in response.content.decode()
    assert set(reread(team).group.user_set.values_list("username", flat=True)) == {"bob", "colleague"}


def test_the_api_team_etag_covers_its_members(world, team, alice, root):
    url = f"/api/v1/teams/{team.pk}"
    etag = alice.get(url)["ETag"]
    added = alice.post(f"{url}/members", {"user": "alice"}, format="json", HTTP_IF_MATCH=etag)
    assert added.status_code == 201 and added["ETag"] != etag
    assert alice.get(url)["ETag"] == added["ETag"]
    refused = root.delete(f"{url}/members/{world.member.pk}", HTTP_IF_MATCH=etag)
    assert refused.status_code == 412 and refused.json()["changed_by"] == "alice"
    assert reread(team).group.user_set.filter(pk=world.member.pk).exists()
    assert root.delete(f"{url}/members/{world.member.pk}", HTTP_IF_MATCH=added["ETag"]).status_code == 204
    assert not reread(team).group.user_set.filter(pk=world.member.pk).exists()
