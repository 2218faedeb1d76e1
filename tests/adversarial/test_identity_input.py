"""Usernames and e-mail addresses that could be confused, and races on them (findings 8 and 9)."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache
from django.db import close_old_connections, connection
from rest_framework.test import APIClient

from access.models import User
from access.services.invitations import invite
from tests.factories import PASSWORD, UserFactory


def signup(username: str, email: str) -> int:
    body = {"tenant_name": f"T {username}", "username": username, "email": email, "password": PASSWORD}
    return APIClient().post("/api/v1/signup", body, format="json").status_code


def test_usernames_are_unique_whatever_their_case(world):
    cache.clear()  # the sign-up throttle
    assert signup("ALICE", "a2@example.net") == 409
    assert User.objects.filter(username__iexact="alice").count() == 1


def test_a_username_logs_in_in_any_case_and_lockouts_count_every_case(world, client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    assert client.post("/login/", {"username": "ALICE", "password": PASSWORD}).status_code == 302
    client.logout()
    for variant in ("Alice", "aLice", "alicE"):  # three failures under three spellings
        client.post("/login/", {"username": variant, "password": "wrong"})
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429  # one account, one count


def test_sign_up_refuses_an_address_another_account_verified(world):
    cache.clear()
    assert signup("newcomer2", "ALICE@example.com") == 400
    assert not User.objects.filter(username="newcomer2").exists()


def test_sign_up_accepts_an_address_nobody_verified_and_only_one_account_can_verify_it(world, mailoutbox):
    cache.clear()
    UserFactory(username="first", email="shared@example.net", email_verified_at=None)
    assert signup("second", "shared@example.net") == 201
    from access.services import accounts

    first = User.objects.get(username="first")
    accounts.verify_email(code=accounts.email_verification_code(first))
    second = User.objects.get(username="second")
    response = APIClient().post(
        "/api/v1/auth/verify-email", {"token": accounts.email_verification_code(second)}, format="json"
    )
    assert response.status_code == 409 and response.json()["code"] == "email_taken"
    assert not User.objects.get(username="second").email_verified


def run_together(calls) -> list:
    barrier = threading.Barrier(len(calls))
    results: list = []
    lock = threading.Lock()

    def wrap(call):
        try:
            barrier.wait(timeout=30)
            outcome = call()
        except BaseException as exc:  # a crash is a result too: the test shows it
            outcome = exc
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=wrap, args=(c,)) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    close_old_connections()
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_sign_ups_of_one_username_in_any_case_get_one_account_and_409s(postgres_only):
    cache.clear()
    spellings = ["zed", "Zed", "ZED", "zEd", "zeD", "ZeD"]
    statuses = run_together([lambda s=s, i=i: signup(s, f"zed{i}@example.net") for i, s in enumerate(spellings)])
    assert sorted(statuses) == [201, 409, 409, 409, 409, 409]
    assert User.objects.filter(username__iexact="zed").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_accepts_of_one_invitation_make_one_account(postgres_only):
    from tests.factories import build_world

    world = build_world()
    _, code = invite(actor=world.tenant_admin, org=world.marketing, email="dana@example.com", role="guest")

    def accept(username: str):
        body = {"token": code, "username": username, "password": PASSWORD}
        return APIClient().post("/api/v1/invitations/accept", body, format="json").status_code

    statuses = run_together([lambda u=u: accept(u) for u in ("dana", "Dana", "dana2", "dana3", "DANA")])
    assert statuses.count(200) == 1 and all(s in (200, 409) for s in statuses), statuses
    assert User.objects.filter(email__iexact="dana@example.com").count() == 1
