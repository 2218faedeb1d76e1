"""Sign-up, log-in and personal API tokens in the console."""

from __future__ import annotations

import pytest

from access.models import AccessToken, TenantMembership
from access.services import issue_token
from orgs.models import Organization, Tenant
from tests.factories import PASSWORD


def test_sign_up_creates_the_tenant_and_logs_in(db, client):
    response = client.post(
        "/signup/", {"tenant_name": "Initech", "username": "peter", "email": "p@initech.example", "password": PASSWORD}
    )
    root = Organization.objects.get(name="Initech")
    assert response.status_code == 302 and response["Location"] == f"/o/{root.pk}/"
    assert TenantMembership.objects.get(user__username="peter").is_admin
    assert client.get(response["Location"]).status_code == 200


def test_sign_up_with_a_weak_password_shows_the_error_and_creates_nothing(db, client):
    response = client.post(
        "/signup/", {"tenant_name": "Initech", "username": "peter", "email": "p@initech.example", "password": "123"}
    )
    assert response.status_code == 400
    assert "too short" in response.content.decode()
    assert not Tenant.objects.exists()


def test_sign_up_with_a_taken_username(world, client):
    response = client.post(
        "/signup/", {"tenant_name": "Dup", "username": "alice", "email": "a@example.com", "password": PASSWORD}
    )
    assert response.status_code == 400 and "taken" in response.content.decode()


def test_sign_up_page_is_not_found_when_disabled(db, client, settings):
    settings.SIGNUP_ENABLED = False
    assert client.get("/signup/").status_code == 404


def test_log_in_with_the_form(world, client):
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_a_wrong_password_is_refused(world, client):
    response = client.post("/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200 and "correct username and password" in response.content.decode()


def test_repeated_failures_lock_the_log_in(world, client, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        client.post("/login/", {"username": "alice", "password": "nope"})
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429 and "Too many failed" in response.content.decode()


def test_the_tokens_page_shows_a_new_token_once(world, client):
    client.force_login(world.tenant_admin)
    response = client.post("/tokens/", {"name": "ci", "days": 7})
    html = response.content.decode()
    raw = html.split('data-testid="new-token">')[1].split("<")[0]
    assert raw.startswith("cnp_")
    assert raw not in client.get("/tokens/").content.decode()
    assert AccessToken.objects.get(user=world.tenant_admin).name == "ci"


def test_a_bad_token_lifetime_is_a_field_error(world, client):
    client.force_login(world.tenant_admin)
    assert client.post("/tokens/", {"name": "x", "days": 0}).status_code == 400
    assert not AccessToken.objects.exists()


def test_tokens_are_listed_and_revoked_by_their_owner_only(world, client, django_assert_max_num_queries):
    mine, _ = issue_token(user=world.tenant_admin, name="mine")
    theirs, _ = issue_token(user=world.member, name="theirs")
    client.force_login(world.tenant_admin)
    with django_assert_max_num_queries(6):
        html = client.get("/tokens/").content.decode()
    assert "mine" in html and "theirs" not in html
    assert client.post(f"/tokens/{theirs.pk}/revoke").status_code == 404
    assert client.post(f"/tokens/{mine.pk}/revoke").status_code == 302
    assert AccessToken.objects.get(pk=mine.pk).revoked_at is not None
    assert AccessToken.objects.get(pk=theirs.pk).revoked_at is None


@pytest.mark.parametrize("path", ["/tokens/", "/switch/"])
def test_account_pages_need_a_log_in(db, client, path):
    assert client.get(path).status_code == 302
