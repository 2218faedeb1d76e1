"""Sign-up, log-in and personal API tokens in the console."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from access.models import AccessToken, TenantMembership
from access.services import issue_token
from orgs.models import Organization, Tenant
from tests.factories import PASSWORD


def test_sign_up_creates_the_tenant_and_its_root_logs_in_and_lands_there(db, client):
    assert client.get("/signup/").status_code == 200
    response = client.post(
        "/signup/", {"tenant_name": "Initech", "username": "peter", "email": "p@initech.example", "password": PASSWORD}
    )
    root = Organization.objects.get(name="Initech")
    assert response.status_code == 302 and response["Location"] == f"/o/{root.pk}/"
    assert root.is_root and root.tenant.name == "Initech" and root.tenant.plan == Tenant.Plan.FREE
    assert TenantMembership.objects.get(user__username="peter", tenant=root.tenant).is_admin
    page = client.get(response["Location"])
    assert page.status_code == 200 and "Initech" in page.content.decode()
    assert client.get("/")["Location"] == f"/o/{root.pk}/"


def test_sign_up_with_a_weak_password_shows_the_error_and_creates_nothing(db, client):
    response = client.post(
        "/signup/", {"tenant_name": "Initech", "username": "peter", "email": "p@initech.example", "password": "123"}
    )
    assert response.status_code == 400
    assert "too short" in response.content.decode()
    assert not Tenant.objects.exists()


def test_sign_up_with_missing_fields_shows_each_field_error(db, client):
    response = client.post("/signup/", {"tenant_name": "", "username": "", "email": "nope", "password": ""})
    html = response.content.decode()
    assert response.status_code == 400
    assert html.count("This field is required") == 3 and "Enter a valid email address" in html
    assert not Tenant.objects.exists() and not get_user_model().objects.exists()


def test_sign_up_with_a_taken_username(world, client):
    tenants = Tenant.objects.count()
    response = client.post(
        "/signup/", {"tenant_name": "Dup", "username": "alice", "email": "a@example.com", "password": PASSWORD}
    )
    assert response.status_code == 409 and "taken" in response.content.decode()  # a conflict, as in the API
    assert Tenant.objects.count() == tenants


def test_sign_up_is_not_found_and_says_so_when_disabled(db, client, settings):
    settings.SIGNUP_ENABLED = False
    response = client.get("/signup/")
    assert response.status_code == 404 and "Sign-up is disabled" in response.content.decode()
    data = {"tenant_name": "Initech", "username": "peter", "email": "p@initech.example", "password": PASSWORD}
    assert client.post("/signup/", data).status_code == 404
    assert not Tenant.objects.exists()


def test_log_in_with_the_form(world, client):
    assert client.get("/login/").status_code == 200
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/")["Location"] == f"/o/{world.root.pk}/"


def test_log_in_returns_to_the_page_asked_for(world, client):
    target = f"/o/{world.emea.pk}/"
    login_url = client.get(target)["Location"]
    response = client.post(login_url, {"username": "alice", "password": PASSWORD, "next": target})
    assert response["Location"] == target


def test_a_wrong_password_is_refused(world, client):
    response = client.post("/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200 and "correct username and password" in response.content.decode()


def test_repeated_failures_lock_the_log_in_with_a_clear_message(world, client, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        client.post("/login/", {"username": "alice", "password": "nope"})
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429 and "Too many failed" in response.content.decode()
    assert "try again in 15 minutes" in response.content.decode().lower()
    assert client.get("/")["Location"].startswith("/login/")  # not logged in, even with the right password


def test_log_out_needs_a_post_with_the_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.tenant_admin)
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/").status_code == 403  # no CSRF token: a forged form cannot log anyone out
    assert client.get(f"/o/{world.root.pk}/").status_code == 200
    page = client.get(f"/o/{world.root.pk}/").content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    response = client.post("/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get(f"/o/{world.root.pk}/").status_code == 302


def test_the_tokens_page_shows_a_new_token_once(world, client):
    client.force_login(world.tenant_admin)
    response = client.post("/tokens/", {"name": "ci", "days": 7})
    html = response.content.decode()
    raw = html.split('data-testid="new-token">')[1].split("<")[0]
    assert raw.startswith("cnp_")
    assert "no-store" in response["Cache-Control"]
    token = AccessToken.objects.get(user=world.tenant_admin)
    assert token.name == "ci" and raw.startswith(token.hint) and token.key_hash != raw
    listed = client.get("/tokens/").content.decode()
    assert raw not in listed and token.hint in listed
    # The raw value works once shown: it is a real token of its owner.
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200


@pytest.mark.parametrize("days", [0, 366, "soon"])
def test_a_bad_token_lifetime_is_a_field_error_and_creates_nothing(world, client, days):
    client.force_login(world.tenant_admin)
    response = client.post("/tokens/", {"name": "x", "days": days})
    assert response.status_code == 400 and 'class="error"' in response.content.decode()
    assert not AccessToken.objects.exists()


def test_tokens_are_listed_and_revoked_by_their_owner_only(world, client, django_assert_max_num_queries):
    mine, _ = issue_token(user=world.tenant_admin, name="mine")
    theirs, _ = issue_token(user=world.member, name="theirs")
    client.force_login(world.tenant_admin)
    with django_assert_max_num_queries(6):
        html = (response := client.get("/tokens/")).content.decode()
        assert response.status_code == 200 and "mine" in html
    assert "mine" in html and "theirs" not in html
    assert client.post(f"/tokens/{theirs.pk}/revoke").status_code == 404
    assert client.post(f"/tokens/{mine.pk}/revoke", {"confirmed": "1"}).status_code == 302
    assert AccessToken.objects.get(pk=mine.pk).revoked_at is not None
    assert AccessToken.objects.get(pk=theirs.pk).revoked_at is None
    assert "revoked" in client.get("/tokens/").content.decode()


def test_revoking_needs_a_post(world, client):
    mine, _ = issue_token(user=world.tenant_admin, name="mine")
    client.force_login(world.tenant_admin)
    assert client.get(f"/tokens/{mine.pk}/revoke").status_code == 405
    assert AccessToken.objects.get(pk=mine.pk).revoked_at is None


@pytest.mark.parametrize("path", ["/tokens/", "/switch/", "/"])
def test_account_pages_need_a_log_in(db, client, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
