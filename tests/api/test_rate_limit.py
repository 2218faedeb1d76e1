"""Rate limits (issue #15 §7): a general limit per user (token or session alike) and per address for anonymous
callers, each counted answer with RateLimit-Limit, -Remaining and -Reset, a refusal 429 with Retry-After."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import override_settings
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from config import ratelimit
from runtimes.agent_api import AgentView, EnrollView
from tests.test_cache import key_prefix, redis_cache, redis_url  # noqa: F401 - fixtures


@pytest.fixture(autouse=True)
def rates(settings, monkeypatch):
    """Small limits, counted from zero, at a standstill (a window never ends in the middle of a test)."""
    monkeypatch.setattr(ratelimit._FixedWindowThrottle, "timer", staticmethod(lambda: 1_800_000_000.0))
    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "user": "3/min",
            "anon": "2/min",
        },
    }
    yield
    cache.clear()


def quota(response):
    return tuple(int(response[f"RateLimit-{name}"]) for name in ("Limit", "Remaining", "Reset"))


def test_a_user_gets_the_limit_then_429_with_retry_after(world, api_as):
    client = api_as(world.tenant_admin)
    answers = [client.get("/api/v1/me") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [quota(a)[:2] for a in answers] == [(3, 2), (3, 1), (3, 0), (3, 0)]
    assert all(1 <= quota(a)[2] <= 60 for a in answers)
    refused = answers[-1]
    assert refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) == quota(refused)[2]


def test_the_count_is_per_user_whatever_the_credentials(world, people, api_as, client):
    admin = people["admin"]
    api_as(admin).get("/api/v1/me")
    api_as(admin).get("/api/v1/me")  # another token of the same user
    client.force_login(admin)
    assert quota(client.get("/api/v1/me"))[1] == 0  # the session shares the count
    assert client.get("/api/v1/me").status_code == 429
    # Another user has a count of their own.
    other = api_as(people["integrator"]).get("/api/v1/me")
    assert other.status_code == 200 and quota(other)[1] == 2


def test_anonymous_callers_are_counted_per_address_and_x_forwarded_for_changes_nothing(world, api):
    url = "/api/v1/invitations/inv_unknown/accept"
    answers = [api.post(url, {}, format="json", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}") for n in range(3)]
    assert [a.status_code for a in answers][-1] == 429
    assert [quota(a)[:2] for a in answers] == [(2, 1), (2, 0), (2, 0)]
    elsewhere = api.post(url, {}, format="json", REMOTE_ADDR="198.51.100.7")
    assert elsewhere.status_code != 429 and quota(elsewhere)[:2] == (2, 1)


def test_an_unauthenticated_request_is_refused_before_any_count(world, api):
    response = api.get("/api/v1/me")
    assert response.status_code == 401 and not response.has_header("RateLimit-Limit")


def test_the_scoped_limits_ignore_x_forwarded_for_too(world, api, settings):
    """NUM_PROXIES = 0: a client cannot dodge the token endpoint's limit by writing X-Forwarded-For itself."""
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "2/min"}
    original = ScopedRateThrottle.THROTTLE_RATES
    ScopedRateThrottle.THROTTLE_RATES = rates
    try:
        codes = [
            api.post(
                "/api/v1/auth/token",
                {"username": "x", "password": "y"},
                format="json",
                HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
            ).status_code
            for n in range(3)
        ]
    finally:
        ScopedRateThrottle.THROTTLE_RATES = original
    assert codes == [400, 400, 429]


class Scoped(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [ratelimit.ScopedRateThrottle]
    throttle_scope = "tiny"

    def get(self, request):
        return Response({})


def test_the_scoped_throttle_notes_its_quota(settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "tiny": "2/hour"}
    original = ratelimit.ScopedRateThrottle.THROTTLE_RATES
    ratelimit.ScopedRateThrottle.THROTTLE_RATES = rates
    try:
        factory = APIRequestFactory()
        requests = [factory.get("/x", REMOTE_ADDR="192.0.2.1") for _ in range(3)]
        codes = [Scoped.as_view()(request).status_code for request in requests]
    finally:
        ratelimit.ScopedRateThrottle.THROTTLE_RATES = original
    assert codes == [200, 200, 429]
    noted = [ratelimit.quota_of(request) for request in requests]
    assert [(q.limit, q.remaining) for q in noted] == [(2, 1), (2, 0), (2, 0)]
    assert all(3590 <= q.reset <= 3600 for q in noted)


def test_the_agents_protocol_is_not_under_the_general_limits():
    assert not ratelimit.serves_people(AgentView())
    assert not ratelimit.throttled(AgentView()) and not ratelimit.sends_headers(AgentView())
    assert ratelimit.serves_people(EnrollView())  # anonymous: counted per address


def test_the_general_limit_counts_in_redis(world, api_as, redis_url, key_prefix):  # noqa: F811
    """Production's cache (CACHE_URL=redis://…, failing open): the count is atomic INCR on a key per window."""
    with override_settings(CACHES={"default": {**redis_cache(redis_url)["default"], "KEY_PREFIX": key_prefix}}):
        client = api_as(world.tenant_admin)
        answers = [client.get("/api/v1/me") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [quota(a)[:2] for a in answers] == [(3, 2), (3, 1), (3, 0), (3, 0)]


def test_a_cache_that_fails_counts_nothing_and_serves(world, api_as, monkeypatch):
    def down(*args, **kwargs):
        raise ValueError("the cache failed open")

    monkeypatch.setattr(cache, "incr", down)
    monkeypatch.setattr(cache, "add", lambda *args, **kwargs: True)
    client = api_as(world.tenant_admin)
    assert [client.get("/api/v1/me").status_code for _ in range(5)] == [200] * 5


@pytest.mark.parametrize(("rate", "parsed"), [("5000/hour", (5000, 3600)), ("20/min", (20, 60)), ("1/d", (1, 86400))])
def test_rates_in_drfs_notation(rate, parsed):
    assert ratelimit.parse_rate(rate) == parsed
    assert ratelimit.parse_rate(None) is None
