"""The shared cache: CACHE_URL=redis://… really throttles through Redis; an unreachable or silent Redis fails open
(quickly, with a warning) instead of answering 500 or holding the worker; lock-outs stay in the database; and
`check --deploy` refuses a per-process cache in production.

The Redis tests use TEST_REDIS_URL (default redis://127.0.0.1:6379/6) with a key prefix of their own; locally they
are skipped when no Redis answers there, under CI=true they are required."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from axes.models import AccessAttempt
from django.conf import settings
from django.core.cache import cache
from django.core.checks import run_checks
from django.test import override_settings
from rest_framework.throttling import ScopedRateThrottle

from access.checks import shared_cache
from config.cache import fail_open_count
from tests.factories import PASSWORD

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/6")
TOKEN = "/api/v1/auth/token"


def redis_cache(url: str, **options: object) -> dict:
    """CACHES as config/settings.py builds it from CACHE_URL=redis://… and the default timeouts."""
    return {
        "default": {
            "BACKEND": "config.cache.FailOpenRedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5, **options},
        }
    }


@pytest.fixture
def redis_url() -> str:
    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5).ping()
    except redis.RedisError as exc:
        reason = f"no Redis answers at {TEST_REDIS_URL} (set TEST_REDIS_URL, or start redis-server): {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required under CI: {reason}")
        pytest.skip(reason)
    return TEST_REDIS_URL


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A prefix no other test, worker or person shares; its keys are deleted afterwards (never FLUSHDB)."""
    prefix = f"canopy-test-{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def auth_rate(monkeypatch: pytest.MonkeyPatch):
    """auth_rate("3/min"): the token endpoint's throttle rate for this test."""

    def set_rate(rate: str) -> None:
        monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, "auth": rate})

    return set_rate


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that accepts connections (the kernel's backlog) and never answers a byte."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield server.getsockname()[1]


def timed_post(api, path: str, data: dict) -> tuple[int, float]:
    started = time.perf_counter()
    response = api.post(path, data, format="json")
    return response.status_code, time.perf_counter() - started


# -- configuration ---------------------------------------------------------------------------------------------------


def caches_from_environment(**variables: str) -> dict:
    """settings.CACHES as config/settings.py builds it in a fresh process with these environment variables."""
    show = "import django, json; django.setup(); from django.conf import settings; print(json.dumps(settings.CACHES))"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **variables}
    run = subprocess.run([sys.executable, "-c", show], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_a_redis_cache_url_gives_the_fail_open_redis_backend_with_short_timeouts():
    assert caches_from_environment(CACHE_URL="redis://127.0.0.1:6379/6") == redis_cache("redis://127.0.0.1:6379/6")
    caches = caches_from_environment(
        CACHE_URL="redis://cache.internal:6379/2?socket_timeout=2", CACHE_CONNECT_TIMEOUT="0.25"
    )
    assert caches["default"]["OPTIONS"] == {"socket_connect_timeout": 0.25, "socket_timeout": 2}


def test_lock_outs_are_kept_in_the_database():
    assert settings.AXES_HANDLER == "axes.handlers.database.AxesDatabaseHandler"


# -- Redis -----------------------------------------------------------------------------------------------------------


def test_tokens_are_throttled_through_redis(world, api, redis_url, key_prefix, auth_rate):
    auth_rate("3/min")
    with override_settings(CACHES={"default": {**redis_cache(redis_url)["default"], "KEY_PREFIX": key_prefix}}):
        codes = [api.post(TOKEN, {"username": "alice", "password": PASSWORD}, format="json").status_code]
        codes += [api.post(TOKEN, {"username": "alice", "password": "wrong"}, format="json").status_code]
        codes += [api.post(TOKEN, {"username": "alice", "password": PASSWORD}, format="json").status_code]
        codes += [api.post(TOKEN, {"username": "alice", "password": PASSWORD}, format="json").status_code]
        assert cache.get("throttle_auth_127.0.0.1") and len(cache.get("throttle_auth_127.0.0.1")) == 3
    assert codes == [201, 400, 201, 429]
    # The counts are in Redis, where every worker reads them.
    stored = list(redis.Redis.from_url(redis_url).scan_iter(f"{key_prefix}:*"))
    assert stored == [f"{key_prefix}:1:throttle_auth_127.0.0.1".encode()]


# -- Redis unavailable -------------------------------------------------------------------------------------------------


def test_an_unreachable_cache_fails_open_quickly_with_a_warning(world, api, closed_port, auth_rate, caplog):
    auth_rate("1/min")  # would refuse the second request if the cache counted
    before = fail_open_count()
    with override_settings(CACHES=redis_cache(f"redis://127.0.0.1:{closed_port}/0")):
        issued, issued_in = timed_post(api, TOKEN, {"username": "alice", "password": PASSWORD})
        refused, refused_in = timed_post(api, TOKEN, {"username": "alice", "password": "wrong"})
    print(f"unreachable cache (closed port): 201 in {issued_in * 1000:.1f} ms, 400 in {refused_in * 1000:.1f} ms")
    assert (issued, refused) == (201, 400)
    assert issued_in < 0.5 and refused_in < 0.5  # refused at once: not even one timeout waited
    warnings = [r for r in caplog.records if r.name == "canopy.cache" and r.levelname == "WARNING"]
    assert warnings and warnings[0].getMessage().startswith("Cache unavailable, failing open: get raised")
    assert fail_open_count() >= before + 4  # get and set of each request's throttle


def test_a_cache_that_never_answers_costs_one_read_timeout_then_nothing(world, api, silent_port, caplog):
    with override_settings(CACHES=redis_cache(f"redis://127.0.0.1:{silent_port}/0")):
        timings = [timed_post(api, TOKEN, {"username": "alice", "password": PASSWORD}) for _ in range(3)]
    print("silent cache (accepts, never answers): " + ", ".join(f"{c} in {t * 1000:.0f} ms" for c, t in timings))
    assert [code for code, _ in timings] == [201, 201, 201]
    first, *rest = (elapsed for _, elapsed in timings)
    assert 0.45 < first < 1.0  # one read timeout (0.5 s), not one per cache operation (get and set: 1 s)
    assert all(elapsed < 0.45 for elapsed in rest)  # no timeout waited: the cache is left alone for a while
    assert "TimeoutError" in next(r.getMessage() for r in caplog.records if r.name == "canopy.cache")


def test_sign_up_fails_open_too(db, api, closed_port):
    with override_settings(CACHES=redis_cache(f"redis://127.0.0.1:{closed_port}/0")):
        response = api.post(
            "/api/v1/signup",
            {"tenant_name": "Initech", "username": "peter", "email": "peter@initech.example", "password": PASSWORD},
            format="json",
        )
    assert response.status_code == 201


def test_lock_outs_still_work_while_the_cache_is_down(world, api, closed_port, settings):
    settings.AXES_FAILURE_LIMIT = 3
    with override_settings(CACHES=redis_cache(f"redis://127.0.0.1:{closed_port}/0")):
        codes = [api.post(TOKEN, {"username": "alice", "password": "wrong"}, format="json").status_code for _ in "123"]
        response = api.post(TOKEN, {"username": "alice", "password": PASSWORD}, format="json")
    assert codes == [400, 400, 429]  # the third failure locks the account out
    assert response.status_code == 429 and response.json()["code"] == "locked_out"
    assert AccessAttempt.objects.get(username="alice").failures_since_start >= 3  # counted in the database


def test_every_cache_operation_answers_as_an_empty_cache_would(closed_port):
    with override_settings(CACHES=redis_cache(f"redis://127.0.0.1:{closed_port}/0", retry_after=0)):
        assert cache.get("k", "default") == "default"
        assert cache.get_many(["a", "b"]) == {}
        assert cache.has_key("k") is False
        assert cache.add("k", 1) is True
        assert cache.set("k", 1) is None
        assert cache.set_many({"a": 1, "b": 2}) == ["a", "b"]
        assert cache.get_or_set("k", 3) == 3
        assert cache.touch("k") is False
        assert cache.delete("k") is False
        assert cache.delete_many(["a"]) is None
        with pytest.raises(ValueError):
            cache.incr("k")
        assert cache.clear() is False


# -- the deploy check --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
        "django.core.cache.backends.filebased.FileBasedCache",
    ],
)
def test_the_deploy_check_refuses_a_per_process_cache_in_production(backend):
    with override_settings(DEBUG=False, CACHES={"default": {"BACKEND": backend, "LOCATION": "/tmp/canopy-test"}}):
        errors = shared_cache()
        deploy = [e.id for e in run_checks(include_deployment_checks=True, tags=["caches"])]
        everyday = [e.id for e in run_checks(tags=["caches"])]
    assert [e.id for e in errors] == ["canopy.E002"]
    assert "CACHE_URL=redis://" in errors[0].hint
    assert "canopy.E002" in deploy and "canopy.E002" not in everyday


def test_the_deploy_check_accepts_redis_or_debug():
    with override_settings(DEBUG=False, CACHES=redis_cache("redis://127.0.0.1:6379/6")):
        assert shared_cache() == []
    locmem = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(DEBUG=True, CACHES=locmem):
        assert shared_cache() == []
