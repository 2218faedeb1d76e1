"""Invitations bind to the invitee and stay backed by the inviter's rights (finding 3)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from access.models import AuditEvent, Invitation, OrgUserGrant, TenantMembership
from access.services.grants import change_grant, grant_role, remove_tenant_member
from access.services.invitations import invite
from access.services.teams import add_team_member, create_team, remove_team_member
from resources import services
from tests.adversarial.conftest import token_client
from tests.factories import PASSWORD, UserFactory, add_to_tenant


def accept(client, token, **body):
    return client.post("/api/v1/invitations/accept", {"token": token, **body}, format="json")


def test_another_account_holding_the_code_cannot_accept(world, marketing_admin):
    _, code = invite(actor=marketing_admin, org=world.marketing, email="dana@example.com", role="admin")
    thief, _ = token_client(world.outsider)  # charlie@example.com, verified, with the forwarded link

    response = accept(thief, code)

    assert response.status_code == 403 and response.json()["code"] == "invitation_email_mismatch"
    assert not TenantMembership.objects.filter(user=world.outsider, tenant=world.acme).exists()
    assert thief.get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 404
    assert Invitation.objects.get(email="dana@example.com").status == "pending"  # Dana can still accept it


def test_an_unverified_address_does_not_count(world, marketing_admin):
    dana = UserFactory(username="dana", email="dana@example.com", email_verified_at=None)
    _, code = invite(actor=marketing_admin, org=world.marketing, email="dana@example.com", role="guest")
    response = accept(token_client(dana)[0], code)
    assert response.status_code == 403 and response.json()["code"] == "email_unverified"
    assert not OrgUserGrant.objects.filter(user=dana).exists()


def test_the_invitee_accepts_with_their_verified_account(world, marketing_admin):
    dana = UserFactory(username="dana", email="Dana@Example.com")
    _, code = invite(actor=marketing_admin, org=world.marketing, email="dana@example.com", role="guest")
    assert accept(token_client(dana)[0], code).status_code == 200
    grant = OrgUserGrant.objects.get(user=dana)
    assert grant.role.key == "guest" and grant.granted_by == marketing_admin


def test_a_new_account_gets_the_invitations_address_whatever_it_asks(world, marketing_admin):
    _, code = invite(actor=marketing_admin, org=world.marketing, email="dana@example.com", role="guest")
    response = accept(APIClient(), code, username="dana", password=PASSWORD, email="mallory@evil.example")
    assert response.status_code == 200
    dana = type(world.member).objects.get(username="dana")
    assert dana.email == "dana@example.com" and dana.email_verified


def test_a_new_account_cannot_take_an_address_another_account_verified(world, marketing_admin):
    UserFactory(username="dana", email="dana@example.com")
    _, code = invite(actor=marketing_admin, org=world.marketing, email="dana@example.com", role="guest")
    response = accept(APIClient(), code, username="dana-two", password=PASSWORD)
    assert response.status_code == 409 and response.json()["code"] == "email_taken"
    assert not type(world.member).objects.filter(username="dana-two").exists()


def test_a_locked_domain_rule_set_after_the_invitation_is_applied_at_accept(world, marketing_admin):
    _, code = invite(actor=marketing_admin, org=world.marketing, email="friend@elsewhere.example", role="guest")
    services.set_setting(
        actor=world.tenant_admin, org=world.root, key="allowed_invite_domains", value=["example.com"], locked=True
    )
    response = accept(APIClient(), code, username="friend", password=PASSWORD)
    assert response.status_code == 409 and "example.com" in response.json()["detail"]
    assert not type(world.member).objects.filter(username="friend").exists()
    assert Invitation.objects.get(email="friend@elsewhere.example").status == "revoked"


@pytest.mark.parametrize("how", ["role lowered", "grant revoked", "left the tenant", "left the team", "deactivated"])
def test_an_invitation_dies_when_its_inviter_loses_the_right(world, how):
    inviter = UserFactory(username="ines")
    add_to_tenant(inviter, world.acme)
    if how == "left the team":
        team = create_team(actor=world.tenant_admin, org=world.marketing, name="Admins")
        grant_role(actor=world.tenant_admin, target=world.marketing, role="admin", team=team)
        add_team_member(actor=world.tenant_admin, team=team, user=inviter)
    else:
        grant_role(actor=world.tenant_admin, target=world.marketing, role="admin", user=inviter)
    _, code = invite(actor=inviter, org=world.marketing, email="dana@example.com", role="admin")

    if how == "role lowered":
        grant = OrgUserGrant.objects.get(user=inviter)
        change_grant(actor=world.tenant_admin, grant=grant, role="guest")
    elif how == "grant revoked":
        client, _ = token_client(world.tenant_admin)  # revoked through the API, as an administrator would
        assert client.delete(f"/api/v1/members/{OrgUserGrant.objects.get(user=inviter).pk}").status_code == 204
    elif how == "left the tenant":
        remove_tenant_member(actor=world.tenant_admin, tenant=world.acme, user=inviter)
    elif how == "left the team":
        remove_team_member(actor=world.tenant_admin, team=team, user=inviter)
    else:
        inviter.is_active = False
        inviter.save()

    response = accept(APIClient(), code, username="dana", password=PASSWORD)

    assert response.status_code == 409 and response.json()["code"] == "invitation_revoked"
    assert not type(world.member).objects.filter(username="dana").exists()
    assert Invitation.objects.get(email="dana@example.com").status == "revoked"
    assert AuditEvent.objects.filter(action="invitation.revoke", changes__email="dana@example.com").exists()


def test_the_code_never_travels_in_a_path(world, marketing_admin, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _, code = invite(actor=marketing_admin, org=world.marketing, email="dana@example.com", role="guest")
    body = mailoutbox[0].body
    assert f"/invitations/accept/#{code}" in body and f"/{code}/" not in body
    created = token_client(marketing_admin)[0].post(
        f"/api/v1/orgs/{world.marketing.pk}/invitations", {"email": "erin@example.com", "role": "guest"},
        format="json",
    ).json()  # fmt: skip
    assert "#inv_" in created["accept_url"]
    paths = token_client(marketing_admin)[0].get("/api/v1/schema/?format=json").json()["paths"]
    assert paths["/api/v1/invitations/{token}/accept"]["post"]["deprecated"] is True
    assert "/api/v1/invitations/accept" in paths
