"""Last seen (access/last_seen.py): a signed-in request or an API token's use records it, at most once every few
minutes per user; the review shows it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access.last_seen import LAST_SEEN_EVERY, last_seen, touch
from access.services import issue_token
from tests.factories import UserFactory, add_to_tenant

pytestmark = pytest.mark.django_db


def _updates(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE") and "last_seen_at" in q["sql"]]


def _member(world: Any, name: str) -> Any:
    user = UserFactory(username=name, last_seen_at=None)  # never seen yet
    add_to_tenant(user, world.acme)
    return user


def _seen(user: Any) -> Any:
    user.refresh_from_db()
    return user.last_seen_at


def test_a_console_request_records_last_seen_once_per_interval(world: Any, client: Any) -> None:
    user = _member(world, "sam")
    assert _seen(user) is None
    client.force_login(user)
    with CaptureQueriesContext(connection) as first:
        assert client.get("/").status_code in (200, 302)
    assert len(_updates(first)) == 1
    seen = _seen(user)
    assert seen is not None and timezone.now() - seen < timedelta(minutes=1)
    with CaptureQueriesContext(connection) as second:
        client.get("/")
        client.get("/")
    assert _updates(second) == [] and _seen(user) == seen  # throttled: no write at all


def test_a_token_use_records_last_seen(world: Any, api: Any) -> None:
    user = _member(world, "tom")
    _, raw = issue_token(user=user)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert _seen(user) is None
    assert api.get("/api/v1/me").status_code == 200
    assert _seen(user) is not None


def test_anonymous_and_refused_credentials_record_nothing(world: Any, api: Any) -> None:
    users = type(world.member).objects
    before = dict(users.values_list("pk", "last_seen_at"))
    api.credentials(HTTP_AUTHORIZATION="Bearer cnp_nonsense")
    assert api.get("/api/v1/me").status_code == 401
    api.credentials()
    assert api.get("/api/v1/health").status_code == 200
    assert dict(users.values_list("pk", "last_seen_at")) == before


def test_after_the_interval_the_next_request_records_it_again(world: Any, client: Any) -> None:
    user = _member(world, "uma")
    client.force_login(user)
    client.get("/")
    earlier = timezone.now() - LAST_SEEN_EVERY - timedelta(minutes=1)
    type(user).objects.filter(pk=user.pk).update(last_seen_at=earlier)
    cache.clear()  # the interval's claim expired with it
    client.get("/")
    assert _seen(user) > earlier


def test_the_cache_claim_stops_concurrent_writes_and_the_database_guard_stops_a_forgetful_cache(world: Any) -> None:
    user = _member(world, "vic")
    now = timezone.now()
    assert touch(user, now) is True
    copy = type(user).objects.get(pk=user.pk)
    copy.last_seen_at = None  # a request that loaded the row before the write
    assert touch(copy, now) is False  # the cache's claim for the interval
    cache.clear()
    later = now + timedelta(seconds=30)
    copy.last_seen_at = None
    touch(copy, later)  # the cache forgot: the UPDATE runs but moves nothing younger than the interval
    assert _seen(user) == now


def test_last_seen_of_many_users_is_one_query(world: Any, django_assert_num_queries: Any) -> None:
    users = [_member(world, f"w{n}") for n in range(5)]
    touch(users[0])
    with django_assert_num_queries(1):
        seen = last_seen(users)
    assert set(seen) == {u.pk for u in users} and seen[users[0].pk] is not None and seen[users[1].pk] is None
