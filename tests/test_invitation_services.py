"""Invitations: e-mail, expiry, single use, revocation, domains, and who may invite."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from access import policy
from access.models import AuditEvent, Invitation, TenantMembership
from access.services.grants import grant_role
from access.services.invitations import accept_invitation, invite, revoke_invitation
from config.actors import SYSTEM
from config.errors import Conflict, Forbidden, NotFound
from tests.factories import PASSWORD, UserFactory, add_to_tenant


@pytest.fixture
def guest(world):
    user = UserFactory(username="guesty")
    add_to_tenant(user, world.acme)
    grant_role(actor=SYSTEM, target=world.marketing, role="guest", user=user)
    return user


def test_an_admin_invites_by_email_and_the_token_is_stored_hashed(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invitation, raw = invite(
            actor=world.tenant_admin, org=world.marketing, email="New@Example.com", role="integrator"
        )
    assert invitation.email == "new@example.com"
    assert raw not in invitation.token_hash
    assert len(mail.outbox) == 1 and raw in mail.outbox[0].body
    assert invitation.expires_at - timezone.now() > timedelta(days=6, hours=23)
    assert AuditEvent.objects.filter(action="invitation.create").exists()
    assert not AuditEvent.objects.filter(changes__icontains=raw).exists()


def test_a_new_user_accepts_and_gets_the_role(world):
    _, raw = invite(actor=world.tenant_admin, org=world.marketing, email="dana@example.com", role="integrator")
    user, _grant = accept_invitation(raw_token=raw, username="dana", password=PASSWORD)
    assert user.email == "dana@example.com"
    assert TenantMembership.objects.filter(user=user, tenant=world.acme).exists()
    assert policy.can(user, "task.run", world.emea)


def test_a_signed_in_user_accepts_with_their_own_account(world):
    _, raw = invite(actor=world.tenant_admin, org=world.logistics, email="charlie@example.com", role="guest")
    user, _ = accept_invitation(raw_token=raw, user=world.outsider)
    assert user == world.outsider
    assert policy.can(world.outsider, "org.view", world.logistics)


def test_an_invitation_is_used_once(world):
    _, raw = invite(actor=world.tenant_admin, org=world.marketing, email="e@example.com", role="guest")
    accept_invitation(raw_token=raw, username="eve", password=PASSWORD)
    with pytest.raises(Conflict) as excinfo:
        accept_invitation(raw_token=raw, username="eve2", password=PASSWORD)
    assert excinfo.value.code == "invitation_used"
    with pytest.raises(Conflict):
        accept_invitation(raw_token=raw, user=world.outsider)


def test_an_expired_invitation_is_refused(world):
    invitation, raw = invite(actor=world.tenant_admin, org=world.marketing, email="x@example.com", role="guest")
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(Conflict) as excinfo:
        accept_invitation(raw_token=raw, username="xavier", password=PASSWORD)
    assert excinfo.value.code == "invitation_expired"
    assert not type(world.outsider).objects.filter(username="xavier").exists()


def test_a_revoked_invitation_is_refused(world):
    invitation, raw = invite(actor=world.tenant_admin, org=world.marketing, email="r@example.com", role="guest")
    revoke_invitation(actor=world.tenant_admin, invitation=invitation)
    with pytest.raises(Conflict) as excinfo:
        accept_invitation(raw_token=raw, username="rita", password=PASSWORD)
    assert excinfo.value.code == "invitation_revoked"


def test_an_unknown_token_is_not_found(world):
    with pytest.raises(NotFound):
        accept_invitation(raw_token="inv_nonsense", username="nobody", password=PASSWORD)


def test_an_email_outside_the_allowed_domains_is_refused(world):
    from resources.services import set_setting

    set_setting(actor=world.tenant_admin, org=world.marketing, key="allowed_invite_domains", value=["acme.com"])
    with pytest.raises(ValidationError) as excinfo:
        invite(actor=world.tenant_admin, org=world.emea, email="spy@globex.com", role="guest")
    assert "email" in excinfo.value.message_dict
    invite(actor=world.tenant_admin, org=world.emea, email="friend@acme.com", role="guest")
    assert Invitation.objects.count() == 1


def test_a_guest_cannot_invite(world, guest):
    with pytest.raises(Forbidden):
        invite(actor=guest, org=world.marketing, email="g@example.com", role="guest")
    assert not Invitation.objects.exists()


def test_an_invitation_lives_at_most_30_days(world):
    with pytest.raises(ValidationError):
        invite(actor=world.tenant_admin, org=world.marketing, email="l@example.com", role="guest", lifetime_days=31)


def test_a_second_pending_invitation_for_the_same_email_is_a_conflict(world):
    invite(actor=world.tenant_admin, org=world.marketing, email="twice@example.com", role="guest")
    with pytest.raises(Conflict):
        invite(actor=world.tenant_admin, org=world.marketing, email="twice@example.com", role="admin")


def test_accepting_with_a_bad_password_changes_nothing(world):
    invitation, raw = invite(actor=world.tenant_admin, org=world.marketing, email="p@example.com", role="guest")
    with pytest.raises(ValidationError) as excinfo:
        accept_invitation(raw_token=raw, username="pat", password="123")
    assert "password" in excinfo.value.message_dict
    invitation.refresh_from_db()
    assert invitation.status == "pending"
    assert not type(world.outsider).objects.filter(username="pat").exists()
