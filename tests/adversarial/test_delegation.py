"""One delegation rule on every path that changes what someone can do: nobody confers, removes or changes a
capability they do not hold where it applies (findings 2, 4 and 5, and every other path)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from access import policy
from access.models import AuditEvent, OrgTeamGrant, OrgUserGrant, ProjectUserGrant, Role, Team
from access.services.custom_roles import create_role, update_role
from access.services.grants import change_grant, grant_role, revoke_grant
from access.services.teams import add_team_member, create_team, delete_team, remove_team_member
from config.actors import SYSTEM
from orgs import services as org_services
from resources import services
from resources.models import ComponentMember, ComponentVersion, TaskTeamShare, TaskUserShare
from tests.adversarial.conftest import fresh, token_client
from tests.factories import UserFactory, add_to_tenant


def can(user, capability, obj) -> bool:
    return policy.can(fresh(user), capability, obj)


@pytest.fixture
def cut_emea(world):
    """EMEA inherits nothing from above: Marketing's admins do not reach it."""
    return org_services.update_org(actor=SYSTEM, org=world.emea, access_inheritance="none")


@pytest.fixture
def emea_admins(world, cut_emea):
    """A team defined at Marketing, granted Admin on the cut-off EMEA by the tenant administrator."""
    team = create_team(actor=world.tenant_admin, org=world.marketing, name="EMEA admins")
    grant_role(actor=world.tenant_admin, target=world.emea, role="admin", team=team)
    return team


def member_of(user, team) -> bool:
    return team.group.user_set.filter(pk=user.pk).exists()


# -- teams ---------------------------------------------------------------------------------------------------------


def test_joining_a_team_that_holds_admin_behind_a_cut_is_refused(world, marketing_admin, emea_admins):
    api, _ = token_client(marketing_admin)
    assert api.get(f"/api/v1/orgs/{world.emea.pk}").status_code == 404  # the cut keeps Mallory out

    response = api.post(f"/api/v1/teams/{emea_admins.pk}/members", {"user": "mallory"}, format="json")

    assert response.status_code == 403 and response.json()["code"] == "escalation"
    assert not member_of(marketing_admin, emea_admins)
    assert not can(marketing_admin, "org.view", world.emea)
    assert api.get(f"/api/v1/orgs/{world.emea.pk}").status_code == 404


def test_adding_anyone_to_a_team_holding_more_than_the_actor_is_refused_in_the_console(
    world, marketing_admin, emea_admins, people, client
):
    client.force_login(marketing_admin)
    client.post(
        f"/o/{world.marketing.pk}/teams/{emea_admins.pk}/", {"action": "add", "user": str(people["newcomer"].pk)}
    )
    assert not member_of(people["newcomer"], emea_admins)
    assert not can(people["newcomer"], "org.view", world.emea)


def test_a_team_holding_a_capability_the_actor_lacks_cannot_be_joined(world, marketing_admin, people):
    creators = create_role(
        actor=world.tenant_admin, org=world.root, name="Org creator", capabilities=["org.view", "org.create_child"]
    )
    team = create_team(actor=world.tenant_admin, org=world.marketing, name="Builders")
    grant_role(actor=world.tenant_admin, target=world.marketing, role=creators, team=team)
    response = token_client(marketing_admin)[0].post(
        f"/api/v1/teams/{team.pk}/members", {"user": "newcomer"}, format="json"
    )
    assert response.status_code == 403 and "org.create_child" in response.json()["detail"]
    assert not can(people["newcomer"], "org.create_child", world.marketing)


def test_removing_someone_from_such_a_team_or_deleting_it_is_refused(world, marketing_admin, emea_admins, people):
    add_team_member(actor=world.tenant_admin, team=emea_admins, user=people["newcomer"])
    api, _ = token_client(marketing_admin)

    removed = api.delete(f"/api/v1/teams/{emea_admins.pk}/members/{people['newcomer'].pk}")
    deleted = api.delete(f"/api/v1/teams/{emea_admins.pk}")

    assert removed.status_code == 403 and deleted.status_code == 403
    assert Team.objects.filter(pk=emea_admins.pk).exists() and member_of(people["newcomer"], emea_admins)
    assert can(people["newcomer"], "member.manage", world.emea)


def test_the_tenant_admin_may_still_staff_the_team(world, emea_admins, people):
    add_team_member(actor=world.tenant_admin, team=emea_admins, user=people["newcomer"])
    assert can(people["newcomer"], "envvar.manage", world.campaigns)
    remove_team_member(actor=world.tenant_admin, team=emea_admins, user=people["newcomer"])
    assert not can(people["newcomer"], "org.view", world.emea)


def test_a_team_the_actor_cannot_open_is_not_granted_and_not_named(world, marketing_admin):
    hidden = create_team(actor=world.tenant_admin, org=world.root, name="Board of directors")
    api, _ = token_client(marketing_admin)

    response = api.post(
        f"/api/v1/orgs/{world.marketing.pk}/members", {"team": str(hidden.pk), "role": "guest"}, format="json"
    )
    listed = api.get(f"/api/v1/orgs/{world.marketing.pk}/teams").json()

    assert response.status_code == 400 and "Board" not in response.content.decode()
    assert "Board" not in str(listed)
    assert not OrgTeamGrant.objects.filter(group=hidden.group).exists()


def test_a_task_cannot_be_shared_with_a_team_the_sharer_cannot_open(world, marketing_admin):
    hidden = create_team(actor=world.tenant_admin, org=world.root, name="Board of directors")
    task = services.create_task(actor=world.tenant_admin, project=world.website, name="Sync")
    response = token_client(marketing_admin)[0].post(
        f"/api/v1/tasks/{task.pk}/shares", {"team": str(hidden.pk), "permission": "view"}, format="json"
    )
    assert response.status_code == 400 and "Board" not in response.content.decode()
    assert not TaskTeamShare.objects.exists()


# -- grants --------------------------------------------------------------------------------------------------------


@pytest.fixture
def member_manager(world):
    """A custom role that manages members and sees, nothing more: Mira holds it on Marketing."""
    role = create_role(
        actor=world.tenant_admin, org=world.root, name="Member manager",
        capabilities=["org.view", "member.view", "member.manage", "project.view"],
    )  # fmt: skip
    mira = UserFactory(username="mira")
    add_to_tenant(mira, world.acme)
    grant_role(actor=world.tenant_admin, target=world.marketing, role=role, user=mira)
    return mira


def test_a_member_manager_cannot_strip_or_extend_an_admins_grant(world, member_manager, people):
    victim_grant = OrgUserGrant.objects.get(user=people["admin"], content_object=world.marketing)
    api, _ = token_client(member_manager)

    lowered = api.patch(f"/api/v1/members/{victim_grant.pk}", {"role": "guest"}, format="json")
    extended = api.patch(
        f"/api/v1/members/{victim_grant.pk}", {"expires_at": (timezone.now() + timedelta(days=1)).isoformat()},
        format="json",
    )  # fmt: skip
    removed = api.delete(f"/api/v1/members/{victim_grant.pk}")

    assert [r.status_code for r in (lowered, extended, removed)] == [403, 403, 403]
    grant = OrgUserGrant.objects.get(pk=victim_grant.pk)
    assert grant.role.key == "admin" and grant.expires_at is None
    assert can(people["admin"], "envvar.manage", world.marketing)


def test_a_member_manager_grants_only_what_they_hold(world, member_manager, people):
    api, _ = token_client(member_manager)
    refused = api.post(
        f"/api/v1/orgs/{world.marketing.pk}/members", {"user": "newcomer", "role": "integrator"}, format="json"
    )
    assert refused.status_code == 403 and refused.json()["code"] == "escalation"
    assert not OrgUserGrant.objects.filter(user=people["newcomer"]).exists()
    viewer = create_role(
        actor=world.tenant_admin, org=world.root, name="Viewer", capabilities=["org.view", "project.view"]
    )
    allowed = api.post(
        f"/api/v1/orgs/{world.marketing.pk}/members", {"user": "newcomer", "role": viewer.key}, format="json"
    )
    assert allowed.status_code == 201


def test_a_project_grant_confers_only_what_the_actor_holds_on_the_project(world, member_manager, people):
    response = token_client(member_manager)[0].post(
        f"/api/v1/projects/{world.website.pk}/members", {"user": "newcomer", "role": "admin"}, format="json"
    )
    assert response.status_code == 403
    assert not ProjectUserGrant.objects.filter(user=people["newcomer"]).exists()
    assert not can(people["newcomer"], "task.edit", world.website)


# -- custom roles --------------------------------------------------------------------------------------------------


@pytest.fixture
def operators(world, cut_emea):
    """A custom role defined at Marketing and granted on the cut-off EMEA to Olga."""
    role = create_role(
        actor=world.tenant_admin, org=world.marketing, name="Operator",
        capabilities=["org.view", "project.view", "task.view", "task.run"],
    )  # fmt: skip
    olga = UserFactory(username="olga")
    add_to_tenant(olga, world.acme)
    grant_role(actor=world.tenant_admin, target=world.emea, role=role, user=olga)
    return role, olga


def test_editing_a_role_granted_where_the_editor_cannot_reach_is_refused(world, marketing_admin, operators):
    role, olga = operators
    api, _ = token_client(marketing_admin)

    stripped = api.patch(f"/api/v1/roles/{role.pk}", {"capabilities": ["org.view"]}, format="json")
    widened = api.patch(
        f"/api/v1/roles/{role.pk}", {"capabilities": [*role.custom_capabilities, "task.edit"]}, format="json"
    )

    assert stripped.status_code == 403 and widened.status_code == 403
    unchanged = {"org.view", "project.view", "task.view", "task.run"}
    assert set(Role.objects.get(pk=role.pk).custom_capabilities) == unchanged
    assert can(olga, "task.run", world.emea) and not can(olga, "task.edit", world.emea)


def test_a_role_edit_cannot_strip_what_the_editor_does_not_hold(world, member_manager, people):
    role = create_role(
        actor=world.tenant_admin, org=world.marketing, name="Runner",
        capabilities=["org.view", "project.view", "task.view", "task.run"],
    )  # fmt: skip
    grant_role(actor=world.tenant_admin, target=world.marketing, role=role, user=people["newcomer"])
    response = token_client(member_manager)[0].patch(
        f"/api/v1/roles/{role.pk}", {"capabilities": ["org.view", "project.view"]}, format="json"
    )
    assert response.status_code == 403
    assert can(people["newcomer"], "task.run", world.marketing)


def test_renaming_a_role_changes_no_ones_rights_and_is_allowed(world, marketing_admin, operators):
    role, _ = operators
    response = token_client(marketing_admin)[0].patch(f"/api/v1/roles/{role.pk}", {"name": "Ops"}, format="json")
    assert response.status_code == 200 and Role.objects.get(pk=role.pk).name == "Ops"


def test_the_tenant_admin_edits_any_role(world, operators):
    role, olga = operators
    update_role(actor=world.tenant_admin, role=role, capabilities=["org.view", "project.view", "task.view"])
    assert not can(olga, "task.run", world.emea)


# -- inheritance cuts ----------------------------------------------------------------------------------------------


def test_cutting_inheritance_to_shut_out_those_above_needs_their_rights(world, people):
    keeper_role = create_role(
        actor=world.tenant_admin, org=world.root, name="Keeper", capabilities=["org.view", "org.manage"]
    )
    keeper = UserFactory(username="keeper")
    add_to_tenant(keeper, world.acme)
    grant_role(actor=world.tenant_admin, target=world.emea, role=keeper_role, user=keeper)

    response = token_client(keeper)[0].patch(
        f"/api/v1/orgs/{world.emea.pk}", {"access_inheritance": "none"}, format="json"
    )

    assert response.status_code == 403 and response.json()["code"] == "escalation"
    world.emea.refresh_from_db()
    assert world.emea.access_inheritance == "all" and can(people["admin"], "member.manage", world.emea)


def test_an_admin_may_cut_what_they_hold_themselves(world, people):
    grant_role(actor=world.tenant_admin, target=world.emea, role="admin", user=people["integrator"])
    response = token_client(people["integrator"])[0].patch(
        f"/api/v1/orgs/{world.emea.pk}", {"access_inheritance": "admins_only"}, format="json"
    )
    assert response.status_code == 200
    assert not can(people["guest"], "org.view", world.emea)


# -- task shares ---------------------------------------------------------------------------------------------------


@pytest.fixture
def sharer(world):
    """Sid may view and share Marketing's tasks, not edit or run them."""
    role = create_role(
        actor=world.tenant_admin, org=world.root, name="Sharer",
        capabilities=["org.view", "project.view", "task.view", "task.share"],
    )  # fmt: skip
    sid = UserFactory(username="sid")
    add_to_tenant(sid, world.acme)
    grant_role(actor=world.tenant_admin, target=world.marketing, role=role, user=sid)
    return sid


def test_sharing_a_level_the_sharer_does_not_hold_is_refused(world, sharer, people):
    task = services.create_task(actor=world.tenant_admin, project=world.website, name="Sync")
    api, _ = token_client(sharer)

    edit = api.post(f"/api/v1/tasks/{task.pk}/shares", {"user": "newcomer", "permission": "edit"}, format="json")
    assert edit.status_code == 403 and edit.json()["code"] == "escalation"
    assert not can(people["newcomer"], "task.edit", task)

    view = api.post(f"/api/v1/tasks/{task.pk}/shares", {"user": "newcomer", "permission": "view"}, format="json")
    assert view.status_code == 201
    raised = api.post(f"/api/v1/tasks/{task.pk}/shares", {"user": "newcomer", "permission": "run"}, format="json")
    assert raised.status_code == 403 and not can(people["newcomer"], "task.run", task)


def test_removing_a_share_the_sharer_could_not_give_is_refused(world, sharer, people):
    task = services.create_task(actor=world.tenant_admin, project=world.website, name="Sync")
    share = services.share_task(actor=world.tenant_admin, task=task, permission="edit", user=people["newcomer"])
    response = token_client(sharer)[0].delete(f"/api/v1/tasks/{task.pk}/shares/{share.pk}")
    assert response.status_code == 403
    assert TaskUserShare.objects.filter(pk=share.pk).exists() and can(people["newcomer"], "task.edit", task)


# -- development teams ---------------------------------------------------------------------------------------------


def test_an_admin_refused_a_push_cannot_join_the_development_team_themselves(world, marketing_admin):
    component = services.create_component(actor=world.tenant_admin, org=world.marketing, name="Parser")
    api, _ = token_client(marketing_admin)
    refused = api.post(f"/api/v1/components/{component.pk}/versions", {"version": "1.0", "source": "x"}, format="json")
    assert refused.status_code == 403

    joined = api.post(f"/api/v1/components/{component.pk}/team", {"user": "mallory"}, format="json")
    pushed = api.post(f"/api/v1/components/{component.pk}/versions", {"version": "1.0", "source": "x"}, format="json")

    assert joined.status_code == 403 and joined.json()["code"] == "self_add" and pushed.status_code == 403
    assert not ComponentMember.objects.filter(user=marketing_admin).exists()
    assert not ComponentVersion.objects.exists()


def test_another_manager_adds_a_developer_and_it_is_audited(world, marketing_admin, people):
    component = services.create_component(actor=world.tenant_admin, org=world.marketing, name="Parser")
    response = token_client(marketing_admin)[0].post(
        f"/api/v1/components/{component.pk}/team", {"user": "newcomer"}, format="json"
    )
    assert response.status_code == 201
    event = AuditEvent.objects.get(action="component.member_add")
    assert event.actor == marketing_admin and event.changes == {"user": "newcomer"}


def test_nobody_adds_themselves_not_even_the_tenant_admin(world):
    component = services.create_component(actor=world.tenant_admin, org=world.marketing, name="Parser")
    response = token_client(world.tenant_admin)[0].post(
        f"/api/v1/components/{component.pk}/team", {"user": "alice"}, format="json"
    )
    assert response.status_code == 403 and not ComponentMember.objects.exists()


# -- the rule in the console and the admin -------------------------------------------------------------------------


def test_the_console_refuses_a_grant_above_the_actors_rights(world, member_manager, people, client):
    client.force_login(member_manager)
    response = client.post(f"/o/{world.marketing.pk}/members/", {"user": str(people["newcomer"].pk), "role": "admin"})
    assert response.status_code == 403 and "cannot" in response.content.decode()
    assert not OrgUserGrant.objects.filter(user=people["newcomer"]).exists()


def test_change_and_revoke_services_apply_the_rule_too(world, member_manager, people):
    from config.errors import Forbidden

    grant = OrgUserGrant.objects.get(user=people["integrator"], content_object=world.marketing)
    with pytest.raises(Forbidden):
        change_grant(actor=member_manager, grant=grant, expires_at=timezone.now() + timedelta(days=1))
    with pytest.raises(Forbidden):
        revoke_grant(actor=member_manager, grant=grant)
    with pytest.raises(Forbidden):
        delete_team(
            actor=fresh(people["admin"]),
            team=_team_with(world, "Ops", world.emea, "admin", cut=True),
        )
    assert OrgUserGrant.objects.filter(pk=grant.pk, expires_at__isnull=True).exists()


def _team_with(world, name, org, role, *, cut):
    if cut:
        org_services.update_org(actor=SYSTEM, org=org, access_inheritance="none")
    team = create_team(actor=world.tenant_admin, org=world.marketing, name=name)
    grant_role(actor=world.tenant_admin, target=org, role=role, team=team)
    return team
