"""Granting roles: who may grant what, expiry, revocation, teams, custom roles and the last tenant administrator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access import fences, policy
from access.models import AuditEvent, OrgUserGrant, Role
from access.services.custom_roles import create_role, delete_role, update_role
from access.services.grants import (
    change_grant,
    grant_role,
    remove_tenant_member,
    revoke_grant,
    set_tenant_admin,
)
from access.services.teams import add_team_member, create_team, remove_team_member
from config.actors import SYSTEM
from config.errors import Conflict, Forbidden, NotFound
from orgs.models import Organization
from tests.factories import UserFactory, add_to_tenant, make_chain


@pytest.fixture
def people(world):
    """An Admin, an Integrator and a Guest on Marketing, and a colleague with no role yet."""
    people = {}
    for role in ("admin", "integrator", "guest"):
        user = UserFactory(username=f"{role}-of-marketing")
        add_to_tenant(user, world.acme)
        grant_role(actor=SYSTEM, target=world.marketing, role=role, user=user)
        people[role] = user
    colleague = UserFactory(username="colleague")
    add_to_tenant(colleague, world.acme)
    people["colleague"] = colleague
    return people


def test_signing_up_makes_the_tenant_admin_an_admin_of_the_root(world):
    grant = OrgUserGrant.objects.get(user=world.tenant_admin, content_object=world.root)
    assert grant.role.key == "admin"


def test_an_admin_grants_a_role_and_it_is_audited(world, people):
    grant = grant_role(actor=people["admin"], target=world.emea, role="integrator", user=people["colleague"])
    assert grant.granted_by == people["admin"]
    assert policy.can(people["colleague"], "task.run", world.campaigns)
    # The event names the grant (so a stale writer learns who changed it last) and where it applies.
    event = AuditEvent.objects.get(action="grant.create", target_id=str(grant.pk))
    assert event.changes["role"] == "integrator" and event.actor == people["admin"]
    assert event.org_id == world.emea.pk and event.changes["place"] == "EMEA"


def test_an_integrator_cannot_grant_anything(world, people):
    with pytest.raises(Forbidden):
        grant_role(actor=people["integrator"], target=world.marketing, role="guest", user=people["colleague"])
    assert not OrgUserGrant.objects.filter(user=people["colleague"]).exists()


def test_a_guest_cannot_grant_anything(world, people):
    with pytest.raises(Forbidden):
        grant_role(actor=people["guest"], target=world.marketing, role="guest", user=people["colleague"])


def test_an_admin_of_a_child_cannot_grant_on_its_parent(world, people):
    with pytest.raises(NotFound):
        grant_role(actor=people["admin"], target=world.root, role="guest", user=people["colleague"])


def test_an_admin_cannot_grant_a_custom_role_holding_more_than_admin(world, people):
    creator = create_role(
        actor=world.tenant_admin, org=world.root, name="Org creator", capabilities=["org.view", "org.create_child"]
    )
    with pytest.raises(Forbidden) as excinfo:
        grant_role(actor=people["admin"], target=world.marketing, role=creator, user=people["colleague"])
    assert excinfo.value.code == "escalation"


def test_an_admin_cannot_define_a_role_holding_more_than_admin(world, people):
    with pytest.raises(Forbidden):
        create_role(actor=people["admin"], org=world.marketing, name="Sneaky", capabilities=["org.create_child"])
    assert not Role.objects.filter(name="Sneaky").exists()


def test_a_user_outside_the_tenant_cannot_be_granted_a_role(world):
    with pytest.raises(ValidationError) as excinfo:
        grant_role(actor=world.tenant_admin, target=world.marketing, role="guest", user=world.outsider)
    assert "user" in excinfo.value.message_dict


def test_an_unknown_role_is_a_field_error(world, people):
    with pytest.raises(ValidationError) as excinfo:
        grant_role(actor=world.tenant_admin, target=world.marketing, role="overlord", user=people["colleague"])
    assert "role" in excinfo.value.message_dict


def test_a_second_grant_for_the_same_member_is_a_conflict(world, people):
    with pytest.raises(Conflict):
        grant_role(actor=world.tenant_admin, target=world.marketing, role="admin", user=people["guest"])
    assert OrgUserGrant.objects.get(user=people["guest"], content_object=world.marketing).role.key == "guest"


def test_a_lower_grant_in_a_child_adds_nothing_to_an_inherited_role(world, people):
    grant_role(actor=world.tenant_admin, target=world.emea, role="guest", user=people["integrator"])
    policy.forget(people["integrator"])
    assert policy.can(people["integrator"], "task.run", world.emea)


def test_an_expired_grant_gives_nothing(world, people):
    grant = grant_role(
        actor=world.tenant_admin,
        target=world.logistics,
        role="admin",
        user=people["colleague"],
        expires_at=timezone.now() + timedelta(hours=1),
    )
    assert policy.can(people["colleague"], "org.manage", world.logistics)
    OrgUserGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    policy.forget(people["colleague"])
    assert not policy.can(people["colleague"], "org.view", world.logistics)


def test_an_expiry_in_the_past_is_refused(world, people):
    with pytest.raises(ValidationError):
        grant_role(
            actor=world.tenant_admin,
            target=world.logistics,
            role="guest",
            user=people["colleague"],
            expires_at=timezone.now() - timedelta(days=1),
        )


def test_changing_and_revoking_a_grant_is_seen_by_the_next_request(world, people):
    grant = OrgUserGrant.objects.get(user=people["guest"], content_object=world.marketing)
    change_grant(actor=world.tenant_admin, grant=grant, role="integrator")
    fresh = type(people["guest"]).objects.get(pk=people["guest"].pk)  # what the next request loads
    assert policy.can(fresh, "task.run", world.marketing)
    revoke_grant(actor=world.tenant_admin, grant=grant)
    fresh = type(people["guest"]).objects.get(pk=people["guest"].pk)
    assert not policy.can(fresh, "org.view", world.marketing)


def test_an_admin_cannot_demote_or_revoke_a_holder_of_more_than_they_have(world, people):
    root_admin_grant = OrgUserGrant.objects.get(user=world.tenant_admin, content_object=world.root)
    with pytest.raises(NotFound):  # the root is not visible to Marketing's admin
        revoke_grant(actor=people["admin"], grant=root_admin_grant)


def test_team_grants_follow_team_membership(world, people):
    team = create_team(actor=people["admin"], org=world.marketing, name="Web")
    grant_role(actor=people["admin"], target=world.emea, role="integrator", team=team)
    assert not policy.can(people["colleague"], "org.view", world.emea)
    add_team_member(actor=people["admin"], team=team, user=people["colleague"])
    assert policy.can(people["colleague"], "task.run", world.campaigns)
    remove_team_member(actor=people["admin"], team=team, user=people["colleague"])
    assert not policy.can(people["colleague"], "org.view", world.emea)


def test_a_team_holds_roles_only_at_its_org_or_below(world, people):
    team = create_team(actor=world.tenant_admin, org=world.emea, name="Deep")
    with pytest.raises(ValidationError):
        grant_role(actor=world.tenant_admin, target=world.marketing, role="guest", team=team)


def test_a_security_officer_sees_everything_and_changes_nothing(world, people):
    officer_role = create_role(
        actor=world.tenant_admin,
        org=world.root,
        name="Security officer",
        capabilities=[
            c
            for c in (
                "org.view",
                "member.view",
                "project.view",
                "task.view",
                "credential.view",
                "lookup.view",
                "envvar.view",
                "component.view",
                "runtime.view",
                "audit.view",
            )
        ],
    )
    officer = people["colleague"]
    grant_role(actor=world.tenant_admin, target=world.root, role=officer_role, user=officer)
    for org in (world.root, world.campaigns, world.logistics):
        assert policy.can(officer, "audit.view", org)
        assert not policy.can(officer, "org.manage", org)
        assert not policy.can(officer, "task.run", org)


def test_editing_a_custom_role_rewrites_no_grant_and_applies_at_once(world, people):
    role = create_role(actor=world.tenant_admin, org=world.root, name="Runner", capabilities=["org.view"])
    grant = grant_role(actor=world.tenant_admin, target=world.logistics, role=role, user=people["colleague"])
    update_role(actor=world.tenant_admin, role=role, capabilities=["org.view", "task.run"])
    fresh = type(people["colleague"]).objects.get(pk=people["colleague"].pk)
    assert policy.can(fresh, "task.run", world.logistics)
    assert OrgUserGrant.objects.get(pk=grant.pk).role_id == role.pk
    with pytest.raises(Conflict):
        delete_role(actor=world.tenant_admin, role=role)


def test_a_custom_role_is_usable_only_below_its_org(world, people):
    role = create_role(actor=world.tenant_admin, org=world.marketing, name="Marketer", capabilities=["org.view"])
    with pytest.raises(ValidationError):
        grant_role(actor=world.tenant_admin, target=world.logistics, role=role, user=people["colleague"])


def test_the_last_tenant_administrator_cannot_step_down_or_leave(world):
    with pytest.raises(Conflict):
        set_tenant_admin(actor=world.tenant_admin, tenant=world.acme, user=world.tenant_admin, is_admin=False)
    with pytest.raises(Conflict):
        remove_tenant_member(actor=world.tenant_admin, tenant=world.acme, user=world.tenant_admin)
    set_tenant_admin(actor=world.tenant_admin, tenant=world.acme, user=world.member, is_admin=True)
    set_tenant_admin(actor=world.tenant_admin, tenant=world.acme, user=world.tenant_admin, is_admin=False)
    assert not policy.is_tenant_admin(type(world.tenant_admin).objects.get(pk=world.tenant_admin.pk), world.acme.pk)


def test_removing_a_member_from_the_tenant_removes_their_grants(world, people):
    remove_tenant_member(actor=world.tenant_admin, tenant=world.acme, user=people["integrator"])
    assert not OrgUserGrant.objects.filter(user=people["integrator"]).exists()


@pytest.mark.parametrize("depth", [1, 100])
def test_can_issues_one_query_at_depth_1_and_at_depth_100(world, people, depth):
    chain = make_chain(world.marketing, depth)
    deepest = Organization.objects.get(pk=chain[-1].pk)
    user = type(people["guest"]).objects.get(pk=people["guest"].pk)
    fences.enforcing([world.acme.pk])  # the tenant's authentication rules cached, as after a server's first request
    with CaptureQueriesContext(connection) as first:
        assert policy.can(user, "task.view", deepest)
    with CaptureQueriesContext(connection) as cached:
        assert policy.can(user, "task.view", deepest)
        assert not policy.can(user, "task.run", deepest)
    assert (len(first), len(cached)) == (1, 0)
