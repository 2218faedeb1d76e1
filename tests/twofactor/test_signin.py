"""The sign-in's second step: a password log-in of a user with a confirmed device goes through the code page before
the user is signed in; the verified session (and the tokens it mints) carry ``otp_verified``; the token endpoint
takes ``otp`` from such users; a user without a device signs in as before."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from access import fences
from access.models import AccessToken, AuditEvent
from tests.factories import PASSWORD
from tests.twofactor.helpers import code_of, enrolled
from twofactor import flow, services


def _log_in(client: Any, username: str, next_url: str = "/account/") -> Any:
    return client.post("/login/", {"username": username, "password": PASSWORD, "next": next_url})


def _context(client: Any) -> fences.AuthContext:
    return fences.AuthContext.from_session(client.session.get(fences.SESSION_KEY))


def test_a_user_without_a_device_signs_in_with_the_password_alone(world, client):
    answer = _log_in(client, "bob")
    assert answer.status_code == 302 and answer["Location"] == "/account/"
    assert client.get("/account/").status_code == 200
    assert _context(client) == fences.AuthContext("password", frozenset(), False)


def test_a_user_with_a_device_is_not_signed_in_before_the_code(world, client):
    device, _ = enrolled(world.member)
    answer = _log_in(client, "bob")
    assert answer.status_code == 302 and answer["Location"] == "/account/two-factor/verify/"
    assert client.get("/account/").status_code == 302  # still anonymous: the log-in page
    page = client.get("/account/two-factor/verify/")
    assert page.status_code == 200 and b"bob" in page.content
    wrong = str((int(code_of(device)) + 1) % 1_000_000).zfill(6)
    refused = client.post("/account/two-factor/verify/", {"code": wrong})
    assert refused.status_code == 400 and b"not valid" in refused.content
    assert client.get("/account/").status_code == 302
    device.throttle_reset()
    done = client.post("/account/two-factor/verify/", {"code": code_of(device)})
    assert done.status_code == 302 and done["Location"] == "/account/"
    assert client.get("/account/").status_code == 200
    assert _context(client) == fences.AuthContext("password", frozenset(), True)
    assert flow.PENDING_KEY not in client.session


def test_a_backup_code_finishes_the_sign_in_once(world, client):
    _, codes = enrolled(world.member)
    _log_in(client, "bob")
    assert client.post("/account/two-factor/verify/", {"code": codes[0]}).status_code == 302
    assert _context(client).otp_verified
    assert AuditEvent.objects.filter(action="2fa.backup_used", actor=world.member).count() == 1
    client.logout()
    _log_in(client, "bob")
    assert client.post("/account/two-factor/verify/", {"code": codes[0]}).status_code == 400
    assert client.get("/account/").status_code == 302


def test_five_wrong_codes_end_the_pending_sign_in(world, client):
    device, _ = enrolled(world.member)
    _log_in(client, "bob")
    for _ in range(flow.MAX_ATTEMPTS):
        device.refresh_from_db()
        device.throttle_reset()
        client.post("/account/two-factor/verify/", {"code": "000000" if code_of(device) != "000000" else "111111"})
    device.throttle_reset()
    answer = client.post("/account/two-factor/verify/", {"code": code_of(device)})
    assert answer.status_code == 302 and answer["Location"].startswith("/login/")
    assert client.get("/account/").status_code == 302


def test_the_code_page_without_a_pending_sign_in_sends_anonymous_visitors_to_log_in(world, client):
    answer = client.get("/account/two-factor/verify/")
    assert answer.status_code == 302 and answer["Location"] == "/login/"
    assert client.post("/account/two-factor/verify/", {"code": "123456"}).status_code == 302


def test_the_next_page_stays_on_this_site(world, client):
    device, _ = enrolled(world.member)
    _log_in(client, "bob", next_url="https://evil.example/")
    answer = client.post("/account/two-factor/verify/", {"code": code_of(device)})
    assert answer.status_code == 302 and answer["Location"] == "/"


def test_complete_login_carries_the_sso_context_through_the_code_step(world, client):
    device, _ = enrolled(world.member)
    request = RequestFactory().post("/callback")
    request.session = SessionStore()
    request.user = AnonymousUser()
    step = flow.complete_login(request, world.member, method="sso", sso_tenant=world.acme.pk, next_url="/o/")
    assert step is not None and step["Location"] == "/account/two-factor/verify/"
    assert flow.finish_pending(request, code_of(device)).ok
    assert fences.session_context(request) == fences.AuthContext("sso", frozenset({world.acme.pk}), True)
    # Without a device: signed in at once, with the SSO tenant.
    request = RequestFactory().post("/callback")
    request.session = SessionStore()
    request.user = AnonymousUser()
    assert flow.complete_login(request, world.outsider, method="sso", sso_tenant=world.globex.pk) is None
    assert request.user == world.outsider
    assert fences.session_context(request) == fences.AuthContext("sso", frozenset({world.globex.pk}), False)


def test_console_tokens_carry_the_sessions_verification(world, client):
    device, _ = enrolled(world.member)
    client.force_login(world.member)  # a session that skipped the code step
    client.post("/tokens/", {"name": "plain", "days": 1})
    _log_in(client, "bob")
    client.post("/account/two-factor/verify/", {"code": code_of(device)})
    client.post("/tokens/", {"name": "verified", "days": 1})
    assert dict(AccessToken.objects.filter(user=world.member).values_list("name", "otp_verified")) == {
        "plain": False,
        "verified": True,
    }


def test_a_signed_in_user_verifies_the_session_with_a_code(world, client):
    device, _ = enrolled(world.member)
    client.force_login(world.member)
    key = client.session.session_key
    assert client.post("/account/two-factor/verify/", {"code": code_of(device), "next": "/account/"}).status_code == 302
    assert _context(client).otp_verified and client.session.session_key != key


# -- POST /api/v1/auth/token ---------------------------------------------------------------------------------------


def _token(api: Any, **extra: Any) -> Any:
    return api.post("/api/v1/auth/token", {"username": "bob", "password": PASSWORD, **extra}, format="json")


def test_a_token_without_a_device_needs_no_code_and_is_not_verified(world, api):
    assert _token(api).status_code == 201
    assert not AccessToken.objects.get(user=world.member).otp_verified


def test_a_token_of_a_user_with_a_device_takes_a_current_code(world, api):
    device, codes = enrolled(world.member)
    missing = _token(api)
    assert (missing.status_code, missing.json()["code"]) == (400, "otp_required")
    wrong = _token(api, otp=str((int(code_of(device)) + 1) % 1_000_000).zfill(6))
    assert (wrong.status_code, wrong.json()["code"]) == (401, "otp_invalid")
    throttled = _token(api, otp=code_of(device))  # right, but right after a miss: the back-off refuses it
    assert (throttled.status_code, throttled.json()["code"]) == (401, "otp_invalid")
    assert not AccessToken.objects.exists()
    device.throttle_reset()
    code = code_of(device)
    made = _token(api, otp=code)
    assert made.status_code == 201
    assert AccessToken.objects.get(user=world.member).otp_verified
    assert _token(api, otp=code).status_code == 401  # the same code twice: refused
    assert _token(api, otp=codes[0]).status_code == 201  # a backup code, once
    assert AccessToken.objects.filter(user=world.member, otp_verified=True).count() == 2


def test_a_wrong_password_says_nothing_about_a_second_factor(world, api):
    enrolled(world.member)
    answer = api.post("/api/v1/auth/token", {"username": "bob", "password": "nope", "otp": "123456"}, format="json")
    assert answer.status_code == 400 and "non_field_errors" in answer.json()
    assert services.has_device(world.member)


def test_console_tokens_carry_the_sessions_sso_tenants(world, client):
    client.force_login(world.member)
    session = client.session
    session[fences.SESSION_KEY] = fences.AuthContext("sso", frozenset({world.acme.pk}), False).as_session()
    session.save()
    client.post("/tokens/", {"name": "sso", "days": 1})
    token = AccessToken.objects.get(user=world.member, name="sso")
    assert token.sso_tenants == [str(world.acme.pk)] and not token.otp_verified
