"""Tokens, sign-up, /me and the OpenAPI schema."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from access.models import AccessToken, TenantMembership
from orgs.models import Organization, Tenant
from tests.factories import PASSWORD


@pytest.fixture(autouse=True)
def _no_throttle_memory(settings):
    from django.core.cache import cache

    cache.clear()


def test_a_user_exchanges_credentials_for_a_token_stored_hashed(world, api):
    response = api.post("/api/v1/auth/token", {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 201
    raw = response.json()["token"]
    assert response.json()["expires_at"]
    token = AccessToken.objects.get(user=world.tenant_admin)
    assert raw not in (token.key_hash, token.hint) and token.key_hash != raw
    assert not AccessToken.objects.filter(key_hash=raw).exists()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/me").json()["username"] == "alice"


def test_bad_credentials_answer_400_and_issue_nothing(world, api):
    response = api.post("/api/v1/auth/token", {"username": "alice", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()
    assert not AccessToken.objects.exists()


def test_missing_fields_answer_400_with_field_errors(world, api):
    response = api.post("/api/v1/auth/token", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


def test_repeated_failures_lock_the_account_out(world, api, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        api.post("/api/v1/auth/token", {"username": "alice", "password": "wrong"}, format="json")
    response = api.post("/api/v1/auth/token", {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 429
    assert response.json()["code"] == "locked_out"


def test_the_token_endpoint_is_throttled(world, api, settings):
    from rest_framework.settings import api_settings

    rates = dict(api_settings.DEFAULT_THROTTLE_RATES, auth="2/min")
    # The class keeps its rates from import time: restore those, not what api_settings says under the override
    # (restoring the overridden 2/min throttled every later auth request of the worker, e.g. tests/test_accounts.py).
    from rest_framework.throttling import ScopedRateThrottle

    original = ScopedRateThrottle.THROTTLE_RATES
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}):
        ScopedRateThrottle.THROTTLE_RATES = rates
        try:
            codes = [
                api.post("/api/v1/auth/token", {"username": "x", "password": "y"}, format="json").status_code
                for _ in range(3)
            ]
        finally:
            ScopedRateThrottle.THROTTLE_RATES = original
    assert codes == [400, 400, 429]


def test_anonymous_requests_answer_401(world, api):
    for path in ("/api/v1/me", "/api/v1/orgs", f"/api/v1/orgs/{world.root.pk}", "/api/v1/tenants"):
        response = api.get(path)
        assert response.status_code == 401, path
        assert response["WWW-Authenticate"] == "Bearer"


def test_an_expired_or_revoked_token_answers_401(world, api_as):
    client = api_as(world.tenant_admin)
    token = AccessToken.objects.get(user=world.tenant_admin)
    AccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/v1/me").status_code == 401
    AccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() + timedelta(days=1))
    assert client.get("/api/v1/me").status_code == 200
    assert client.delete(f"/api/v1/auth/tokens/{token.pk}").status_code == 204
    assert client.get("/api/v1/me").status_code == 401


def test_owners_list_their_tokens_without_values(world, api_as, django_assert_max_num_queries):
    client = api_as(world.tenant_admin)
    api_as(world.member)
    with django_assert_max_num_queries(4):
        response = client.get("/api/v1/auth/tokens")
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 1 and "key_hash" not in results[0] and "token" not in results[0]


def test_nobody_revokes_another_users_token(world, api_as):
    api_as(world.member)
    other = AccessToken.objects.get(user=world.member)
    client = api_as(world.tenant_admin)
    assert client.delete(f"/api/v1/auth/tokens/{other.pk}").status_code == 404
    assert AccessToken.objects.get(pk=other.pk).revoked_at is None


def test_session_requests_must_carry_the_csrf_token(world):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.tenant_admin)
    assert client.get("/api/v1/me").status_code == 200
    response = client.post("/api/v1/orgs", {"name": "Sneaky", "parent": str(world.root.pk)}, format="json")
    assert response.status_code == 403
    assert not Organization.objects.filter(name="Sneaky").exists()


def test_sign_up_creates_user_tenant_and_root_on_the_free_plan(db, api):
    response = api.post(
        "/api/v1/signup",
        {"tenant_name": "Initech", "username": "peter", "email": "peter@initech.example", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["tenant"]["plan"] == "free" and body["tenant"]["name"] == "Initech"
    assert body["org"]["name"] == "Initech" and body["org"]["parent"] is None
    assert body["tenant"]["root_org"] == body["org"]["id"]
    assert body["user"]["username"] == "peter"
    assert TenantMembership.objects.get(user__username="peter").is_admin
    assert "org.manage" in body["org"]["capabilities"]


def test_sign_up_with_bad_fields_answers_400_and_creates_nothing(db, api):
    response = api.post(
        "/api/v1/signup", {"tenant_name": "", "username": "x y", "email": "nope", "password": "1"}, format="json"
    )
    assert response.status_code == 400
    assert {"tenant_name", "email"} <= set(response.json())
    assert not Tenant.objects.exists()


def test_sign_up_with_a_taken_username_answers_409(world, api):
    response = api.post(
        "/api/v1/signup",
        {"tenant_name": "Dup", "username": "alice", "email": "a@example.com", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "username_taken"
    assert not Tenant.objects.filter(name="Dup").exists()


def test_sign_up_is_not_found_when_disabled(db, api, settings):
    settings.SIGNUP_ENABLED = False
    response = api.post(
        "/api/v1/signup",
        {"tenant_name": "No", "username": "no", "email": "no@example.com", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 404


def test_me_lists_the_tenants_of_the_caller(world, api_as):
    body = api_as(world.member).get("/api/v1/me").json()
    assert body["tenants"] == [{"id": str(world.acme.pk), "name": "Acme", "is_admin": False}]
    body = api_as(world.tenant_admin).get("/api/v1/me").json()
    assert body["tenants"][0]["is_admin"] is True


def test_the_schema_documents_every_contract_path(db, api):
    response = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = set(response.json()["paths"])
    for expected in (
        "/api/v1/auth/token",
        "/api/v1/signup",
        "/api/v1/me",
        "/api/v1/tenants",
        "/api/v1/tenants/{id}",
        "/api/v1/orgs",
        "/api/v1/orgs/{id}",
        "/api/v1/orgs/{id}/restore",
        "/api/v1/orgs/{id}/move",
        "/api/v1/orgs/{id}/children",
        "/api/v1/orgs/{id}/projects",
        "/api/v1/projects/{id}",
        "/api/v1/projects/{id}/tasks",
        "/api/v1/tasks/{id}",
        "/api/v1/tasks/{id}/run",
        "/api/v1/tasks/{id}/runs",
        "/api/v1/tasks/{id}/shares",
        "/api/v1/runs/{id}",
        "/api/v1/runs/{id}/stop",
        "/api/v1/runs/{id}/logs",
        "/api/v1/orgs/{id}/hidden",
        "/api/v1/orgs/{id}/credentials",
        "/api/v1/credentials/{id}",
        "/api/v1/orgs/{id}/lookup-tables",
        "/api/v1/lookup-tables/{id}",
        "/api/v1/orgs/{id}/env-vars",
        "/api/v1/env-vars/{id}",
        "/api/v1/orgs/{id}/components",
        "/api/v1/components/{id}/team",
        "/api/v1/components/{id}/versions",
        "/api/v1/orgs/{id}/settings",
        "/api/v1/orgs/{id}/effective-config",
    ):
        assert expected in paths, expected
    # The secret of a credential is documented as write-only: it is in the request body, never in a response.
    schemas = response.json()["components"]["schemas"]
    assert "secret" in schemas["CredentialWriteRequest"]["properties"]
    assert "secret" not in schemas["Credential"]["properties"]


def test_swagger_ui_is_served_without_any_external_url(db, api):
    response = api.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()


def test_health_answers_without_credentials_or_database(db, api, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = api.get("/api/v1/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_a_token_records_its_use_at_most_every_five_minutes(world, api, django_capture_on_commit_callbacks):
    from access.services import issue_token

    token, raw = issue_token(user=world.member)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    # The write runs once the request's read-only snapshot has ended (config/snapshots.py): on commit.
    with django_capture_on_commit_callbacks(execute=True):
        assert api.get("/api/v1/me").status_code == 200
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None and timezone.now() - first < timedelta(seconds=5)
    with django_capture_on_commit_callbacks(execute=True) as writes:
        api.get("/api/v1/me")
    token.refresh_from_db()
    assert token.last_used_at == first and writes == []  # within five minutes: no write
    AccessToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=6))
    with django_capture_on_commit_callbacks(execute=True):
        api.get("/api/v1/me")
    token.refresh_from_db()
    assert token.last_used_at > first
    # A deactivated user's token stops working at once.
    type(world.member).objects.filter(pk=world.member.pk).update(is_active=False)
    assert api.get("/api/v1/me").status_code == 401
