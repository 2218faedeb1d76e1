"""Sessions and API tokens end with the credential: a password change or reset, a deactivation (finding 6)."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from access.models import AccessToken
from access.services import accounts
from access.services.tokens import issue_token
from config.errors import Conflict
from tests.adversarial.conftest import fresh, password_works, token_client
from tests.factories import PASSWORD

NEW = "a-Brand-new-passw0rd"


def logged_in(user) -> Client:
    client = Client()
    assert client.post("/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    return client


def test_a_password_change_in_the_console_ends_every_token_and_other_session(world):
    victim = world.member
    stolen_api, _ = token_client(victim)  # what an attacker took before the victim noticed
    stolen_session = logged_in(victim)
    own = logged_in(victim)

    response = own.post(
        "/account/",
        {"action": "password", "password-current_password": PASSWORD, "password-new_password": NEW,
         "password-new_password_again": NEW},
    )  # fmt: skip
    assert response.status_code == 302

    assert stolen_api.get("/api/v1/me").status_code == 401
    assert stolen_session.get("/tokens/").status_code == 302  # back to the log-in page
    assert own.get("/tokens/").status_code == 200  # the session that changed it stays
    assert not AccessToken.objects.usable().filter(user=victim).exists()
    assert password_works(victim, NEW) and not password_works(victim, PASSWORD)


def test_a_password_change_through_the_api_ends_every_token_this_one_included(world):
    client, _ = token_client(world.member)
    other, _ = token_client(world.member)
    response = client.post("/api/v1/me/password", {"current_password": PASSWORD, "new_password": NEW}, format="json")
    assert response.status_code == 200 and response.json()["revoked_tokens"] == 2
    assert client.get("/api/v1/me").status_code == 401 and other.get("/api/v1/me").status_code == 401


def test_a_wrong_current_password_changes_nothing(world):
    client, _ = token_client(world.member)
    response = client.post("/api/v1/me/password", {"current_password": "guess", "new_password": NEW}, format="json")
    assert response.status_code == 400 and "current_password" in response.json()
    assert client.get("/api/v1/me").status_code == 200 and password_works(world.member)


def test_a_password_reset_ends_every_token_and_session(world, mailoutbox):
    victim = world.member
    stolen_api, _ = token_client(victim)
    stolen_session = logged_in(victim)
    asked = APIClient().post("/api/v1/auth/password-reset", {"email": "BOB@example.com"}, format="json")
    assert asked.status_code == 202
    code = mailoutbox[-1].body.split("paste this code:\n", 1)[1].split("\n", 1)[0]
    assert f"#{code}" in mailoutbox[-1].body  # the link carries the code in its fragment only
    response = APIClient().post("/api/v1/auth/password-reset/confirm", {"token": code, "password": NEW}, format="json")
    assert response.status_code == 204
    assert stolen_api.get("/api/v1/me").status_code == 401
    assert stolen_session.get("/tokens/").status_code == 302
    again = APIClient().post(
        "/api/v1/auth/password-reset/confirm", {"token": code, "password": PASSWORD}, format="json"
    )
    assert again.status_code == 400  # a reset code works once
    assert password_works(victim, NEW)


def test_a_reset_goes_only_to_a_verified_address(world, mailoutbox):
    victim = world.member
    type(victim).objects.filter(pk=victim.pk).update(email_verified_at=None)
    response = APIClient().post("/api/v1/auth/password-reset", {"email": victim.email}, format="json")
    assert response.status_code == 202 and mailoutbox == []  # the same answer, and no e-mail


def test_a_deactivated_account_loses_its_tokens_and_sessions(world):
    victim = world.member
    api, _ = token_client(victim)
    session = logged_in(victim)
    victim = fresh(victim)
    victim.is_active = False
    victim.save()
    assert api.get("/api/v1/me").status_code == 401 and session.get("/tokens/").status_code == 302
    victim.is_active = True
    victim.save()
    assert api.get("/api/v1/me").status_code == 401  # reactivating brings no old token back


def test_a_token_minted_with_a_password_that_changed_meanwhile_is_refused(world):
    authenticated = fresh(world.member)  # authenticated with the old password ...
    accounts.change_password(user=fresh(world.member), current_password=PASSWORD, new_password=NEW)  # ... then changed
    with pytest.raises(Conflict) as refused:
        issue_token(user=authenticated)
    assert refused.value.code == "credentials_changed"
    assert not AccessToken.objects.filter(user=world.member, revoked_at__isnull=True).exists()
