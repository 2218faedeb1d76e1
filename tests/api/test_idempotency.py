"""Idempotency-Key (issue #15 §7): a retry of a create or a run gets the first answer, the work done once."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import RequestFactory
from django.urls import resolve
from django.utils import timezone
from rest_framework.test import APIClient

from access.services import issue_token
from config.operations import OPERATIONS
from idempotency import store
from idempotency.middleware import operation_id
from idempotency.models import IdempotencyKey
from idempotency.operations import IDEMPOTENT_OPERATIONS
from orgs.models import Project
from resources import services
from resources.models import Run
from tests.runtimes.queue_helpers import together


@pytest.fixture
def task(world):
    return services.create_task(
        actor=world.tenant_admin, project=world.website, name="Sync", steps=[{"type": "log", "message": "hi"}]
    )


def run(client, task, key, body=None):
    return client.post(
        f"/api/v1/tasks/{task.pk}/run", body, format="json" if body is not None else None, HTTP_IDEMPOTENCY_KEY=key
    )


def test_running_twice_with_one_key_runs_once_and_answers_the_first_answer_again(world, api_as, task):
    client = api_as(world.tenant_admin)
    first = run(client, task, "run-1")
    again = run(client, task, "run-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again["Content-Type"] == first["Content-Type"]
    assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    assert Run.objects.filter(task=task).count() == 1
    assert again["X-Request-Id"] != first["X-Request-Id"]  # each request has its own id
    # Without a key (or with another one) each request is a new run.
    assert run(client, task, "run-2").json()["id"] != first.json()["id"]
    assert client.post(f"/api/v1/tasks/{task.pk}/run").status_code == 201
    assert Run.objects.filter(task=task).count() == 3


def test_the_same_key_with_another_request_is_refused_422_and_does_nothing(world, api_as, task):
    client = api_as(world.tenant_admin)
    assert run(client, task, "k").status_code == 201
    other_body = run(client, task, "k", {"note": "another body"})
    assert other_body.status_code == 422
    assert other_body.json() == {"detail": other_body.json()["detail"], "code": "idempotency_key_reused"}
    other_task = services.create_task(actor=world.tenant_admin, project=world.website, name="Other", steps=[])
    assert run(client, other_task, "k").status_code == 422  # another path
    assert Run.objects.count() == 1


def test_keys_are_per_user_and_shared_by_a_users_token_and_session(world, people, api_as, client, task):
    admin, integrator = people["admin"], people["integrator"]
    first = run(api_as(admin), task, "shared-key")
    assert run(api_as(integrator), task, "shared-key").json()["id"] != first.json()["id"]  # independent
    # The same user with another token, and with the browser session: the same key space.
    assert run(api_as(admin), task, "shared-key").json()["id"] == first.json()["id"]
    client.force_login(admin)
    by_session = client.post(
        f"/api/v1/tasks/{task.pk}/run", "", content_type="application/json", HTTP_IDEMPOTENCY_KEY="shared-key"
    )
    assert by_session.status_code == 201 and by_session.json()["id"] == first.json()["id"]
    assert Run.objects.filter(task=task).count() == 2


def test_a_key_expires_after_24_hours(world, api_as, task):
    client = api_as(world.tenant_admin)
    first = run(client, task, "old")
    record = IdempotencyKey.objects.get()
    assert record.expires_at - record.created_at == timedelta(hours=24)
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    later = run(client, task, "old")
    assert later.status_code == 201 and later.json()["id"] != first.json()["id"]
    assert not later.has_header("Idempotent-Replayed")
    assert IdempotencyKey.objects.count() == 1  # the expired record gave way to the new one


def test_expired_keys_are_purged_by_the_command_and_as_requests_go(world, api_as, task, monkeypatch):
    client = api_as(world.tenant_admin)
    for key in ("a", "b", "c"):
        run(client, task, key)
    IdempotencyKey.objects.exclude(key_hash=store.hash_key("c")).update(expires_at=timezone.now())
    call_command("purge_idempotency_keys", stdout=io.StringIO())
    assert list(IdempotencyKey.objects.values_list("key_hash", flat=True)) == [store.hash_key("c")]
    IdempotencyKey.objects.update(expires_at=timezone.now())
    monkeypatch.setattr(store, "_next_purge", 0.0)
    run(client, task, "d")  # a new claim purges a batch
    assert list(IdempotencyKey.objects.values_list("key_hash", flat=True)) == [store.hash_key("d")]


def test_a_request_still_in_flight_answers_409_until_it_finishes_or_is_abandoned(world, api_as, task):
    client = api_as(world.tenant_admin)
    fingerprint = store.fingerprint("POST", f"/api/v1/tasks/{task.pk}/run", b"")
    now = timezone.now()
    record = IdempotencyKey.objects.create(
        user=world.tenant_admin,
        key_hash=store.hash_key("busy"),
        fingerprint=fingerprint,
        created_at=now,
        expires_at=now + store.TTL,
    )
    busy = run(client, task, "busy")
    assert busy.status_code == 409 and busy.json()["code"] == "idempotency_in_progress"
    assert not Run.objects.exists()
    # A claim whose request never finished (its worker died) is taken over after a while.
    IdempotencyKey.objects.filter(pk=record.pk).update(created_at=now - store.IN_FLIGHT_TIMEOUT)
    assert run(client, task, "busy").status_code == 201
    assert Run.objects.count() == 1


@pytest.mark.parametrize("key", ["", "   ", "k" * 256])
def test_an_empty_or_too_long_key_is_refused_400(world, api_as, task, key):
    response = run(api_as(world.tenant_admin), task, key)
    assert response.status_code == 400 and response.json()["code"] == "idempotency_key_invalid"
    assert not Run.objects.exists()


def test_a_key_of_255_characters_is_fine(world, api_as, task):
    assert run(api_as(world.tenant_admin), task, "k" * 255).status_code == 201


def test_a_server_error_keeps_nothing_so_a_retry_does_the_work(world, api_as, task, monkeypatch):
    client = api_as(world.tenant_admin)
    client.raise_request_exception = False
    real_run_task = services.run_task

    def failing(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "run_task", failing)
    assert run(client, task, "retry-me").status_code == 500
    assert not IdempotencyKey.objects.exists()
    monkeypatch.setattr(services, "run_task", real_run_task)
    assert run(client, task, "retry-me").status_code == 201
    assert run(client, task, "retry-me")["Idempotent-Replayed"] == "true"
    assert Run.objects.count() == 1


def test_a_client_error_is_kept_and_answered_again(world, api_as):
    client = api_as(world.tenant_admin)
    url = f"/api/v1/orgs/{world.marketing.pk}/projects"
    refused = client.post(url, {"name": ""}, format="json", HTTP_IDEMPOTENCY_KEY="p1")
    again = client.post(url, {"name": ""}, format="json", HTTP_IDEMPOTENCY_KEY="p1")
    assert (refused.status_code, again.status_code) == (400, 400)
    assert again.json() == refused.json() and again["Idempotent-Replayed"] == "true"
    # Fixing the body is a new request: it needs a new key.
    fixed = client.post(url, {"name": "Blog"}, format="json", HTTP_IDEMPOTENCY_KEY="p1")
    assert fixed.status_code == 422
    assert client.post(url, {"name": "Blog"}, format="json", HTTP_IDEMPOTENCY_KEY="p2").status_code == 201


def test_a_create_is_replayed_whatever_the_json_key_order_and_spacing(world, api_as):
    client = api_as(world.tenant_admin)
    url = f"/api/v1/orgs/{world.marketing.pk}/projects"
    first = client.post(
        url, '{"name": "Blog", "description": "News"}', content_type="application/json", HTTP_IDEMPOTENCY_KEY="p"
    )
    again = client.post(
        url, '{ "description":"News","name":"Blog" }', content_type="application/json", HTTP_IDEMPOTENCY_KEY="p"
    )
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Project.objects.filter(name="Blog").count() == 1


def test_the_key_is_stored_hashed_and_the_answer_encrypted(world, api_as):
    client = api_as(world.tenant_admin)
    key = "my-very-own-key-4242"
    client.post(
        f"/api/v1/orgs/{world.marketing.pk}/projects", {"name": "Zanzibar"}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    record = IdempotencyKey.objects.get()
    stored = json.dumps(list(IdempotencyKey.objects.values()), default=str)
    assert key not in stored and "Zanzibar" not in stored
    assert record.key_hash == store.hash_key(key) and record.status == 201


def test_the_header_is_ignored_where_it_is_not_declared(world, api_as, task):
    client = api_as(world.tenant_admin)
    run_id = run(client, task, "r").json()["id"]
    first = client.post(f"/api/v1/runs/{run_id}/stop", HTTP_IDEMPOTENCY_KEY="stop")
    again = client.post(f"/api/v1/runs/{run_id}/stop", HTTP_IDEMPOTENCY_KEY="stop")
    assert first.status_code == 200 and not again.has_header("Idempotent-Replayed")
    assert IdempotencyKey.objects.count() == 1  # the run's only


def test_an_anonymous_request_with_a_key_is_refused_by_the_view_and_keeps_nothing(world, api, task):
    response = run(api, task, "anon")
    assert response.status_code == 401
    assert not IdempotencyKey.objects.exists()


def test_a_bad_token_with_a_key_is_refused_by_the_view(world, api, task):
    api.credentials(HTTP_AUTHORIZATION="Bearer cnp_not-a-real-token")
    assert run(api, task, "k").status_code == 401
    assert not IdempotencyKey.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_run_once_on_postgresql(postgres_only, world, task):
    _, raw = issue_token(user=world.tenant_admin)

    def attempt():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        response = run(client, task, "together")
        return response.status_code, response.json().get("id") or response.json().get("code")

    results, errors = together([attempt] * 4)
    assert errors == []
    created = [answer for status, answer in results if status == 201]
    assert len(set(created)) == 1  # every 201 is the same run
    assert {answer for status, answer in results if status != 201} <= {"idempotency_in_progress"}
    assert Run.objects.filter(task=task).count() == 1


def test_every_idempotent_operation_is_found_from_its_route():
    """The middleware names a request's operation from its URL route: each listed operation resolves to itself."""
    paths = {row[0]: (method, path) for (method, path), row in OPERATIONS.items()}
    found = {}
    for name in sorted(IDEMPOTENT_OPERATIONS):
        method, path = paths[name]
        url = "/api/v1" + path.replace("{id}", "00000000-0000-0000-0000-000000000001")
        request = RequestFactory().generic(method, url)
        request.resolver_match = resolve(url)
        found[name] = operation_id(request)
    assert found == {name: name for name in IDEMPOTENT_OPERATIONS}
