"""The API's rate limits, and the ``RateLimit-*`` headers that tell a client where it stands.

Two general limits apply to every API view a person calls (REST_FRAMEWORK DEFAULT_THROTTLE_CLASSES): ``user``, per
signed-in user whatever the credentials (each of their tokens and their browser session share one count;
``THROTTLE_USER``, 5000/hour by default, GitHub's figure), and ``anon``, per client address for the views open to
anonymous callers (``THROTTLE_ANON``). They count in fixed windows (one cache counter per window, atomic ``incr``:
one round trip to Redis a request) whose start is staggered per caller, so that every client's window does not
reset at the same second. The runtime agents' protocol (/runtime-agent/, its own authentication, no user) is paced
by its leases, not by these limits.

The stricter limits of a few views (token issuing, sign-up, e-mails) stay scoped throttles (``throttle_scope``):
``ScopedRateThrottle`` here is DRF's, with the headers.

Headers (draft-ietf-httpapi-ratelimit-headers, the three-header form): every answer a limit counted carries
``RateLimit-Limit`` (requests per window), ``RateLimit-Remaining`` (left in this window) and ``RateLimit-Reset``
(seconds until the window ends: for a scoped limit, a sliding window, until the oldest counted request leaves it);
when two limits count, the headers describe the one with the least left. A refused request answers 429
``{"detail", "code": "throttled"}`` with ``Retry-After`` (seconds; the same as ``RateLimit-Reset``).
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from rest_framework import throttling
from rest_framework.settings import api_settings

_ATTRIBUTE = "_canopy_rate_limit"  # on the HttpRequest: the quota the headers describe
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Quota:
    limit: int
    remaining: int
    reset: int  # seconds


def note(request: Any, quota: Quota) -> None:
    """Remember ``quota`` for the response's headers, unless a quota with less left was noted already."""
    http = getattr(request, "_request", request)  # DRF's Request wraps Django's
    current: Quota | None = getattr(http, _ATTRIBUTE, None)
    if current is None or (quota.remaining, -quota.reset) < (current.remaining, -current.reset):
        setattr(http, _ATTRIBUTE, quota)


def quota_of(request: HttpRequest) -> Quota | None:
    return getattr(request, _ATTRIBUTE, None)


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """ "5000/hour" → (5000, 3600): DRF's notation (the period's first letter: s, m, h or d)."""
    if not rate:
        return None
    count, period = rate.split("/")
    return int(count), PERIODS[period.strip()[0]]


def serves_people(view: Any) -> bool:
    """Does the view authenticate people (a user's token or session) or nobody? The agents' views do neither."""
    classes = getattr(view, "authentication_classes", None) or []
    return not classes or any(cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES for cls in classes)


def sends_headers(view: Any) -> bool:
    """Does an answer of ``view`` carry the RateLimit-* headers (a throttle here counts it)?"""
    return any(
        getattr(cls, "applies_to", None) is not None and cls.applies_to(view)
        for cls in getattr(view, "throttle_classes", ())
    )


def throttled(view: Any) -> bool:
    """Can ``view`` answer 429: one of its throttles applies to it (a throttle without ``applies_to``, always)."""
    classes = getattr(view, "throttle_classes", ())
    return any(getattr(cls, "applies_to", None) is None or cls.applies_to(view) for cls in classes)


class _FixedWindowThrottle(throttling.BaseThrottle):
    scope = ""
    timer = staticmethod(time.time)

    def __init__(self) -> None:
        self._wait: float | None = None

    @classmethod
    def applies_to(cls, view: Any) -> bool:
        return serves_people(view)

    def ident(self, request: Any) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Any, view: Any) -> bool:
        if not self.applies_to(view) or (ident := self.ident(request)) is None:
            return True
        rates: dict[str, Any] = api_settings.DEFAULT_THROTTLE_RATES
        rate = parse_rate(rates.get(self.scope))
        if rate is None:
            return True
        limit, duration = rate
        # The caller's window starts at an offset of its own: not every client's count resets at the same instant.
        window, elapsed = divmod(self.timer() + zlib.crc32(ident.encode()) % duration, duration)
        reset = max(1, math.ceil(duration - elapsed))
        count = _count(f"ratelimit:{self.scope}:{ident}:{int(window)}", timeout=reset + 1)
        note(request, Quota(limit=limit, remaining=max(0, limit - count), reset=reset))
        if count > limit:
            self._wait = reset
            return False
        return True

    def wait(self) -> float | None:
        return self._wait


def _count(key: str, timeout: int) -> int:
    """The window's count with this request, atomically (Redis INCR; two round trips, three at a window's start).
    A cache that is down counts nothing: the request is served (config/cache.py fails open)."""
    try:
        return cache.incr(key)
    except ValueError:  # the window's first request (or the cache failed open)
        if cache.add(key, 1, timeout):
            return 1
        try:
            return cache.incr(key)  # another request started the window meanwhile
        except ValueError:
            return 1


class UserRateThrottle(_FixedWindowThrottle):
    """Per signed-in user (``THROTTLE_USER``)."""

    scope = "user"

    def ident(self, request: Any) -> str | None:
        user = request.user
        if user is None or not user.is_authenticated or user.pk is None:
            return None  # anonymous (the next throttle's), or an agent (not a person: no user limit)
        return f"user:{user.pk}"


class AnonRateThrottle(_FixedWindowThrottle):
    """Per client address, for anonymous callers (``THROTTLE_ANON``). The address is REMOTE_ADDR, never the
    client-controlled X-Forwarded-For (the proxy in front passes the real one: README, Deploying)."""

    scope = "anon"

    def ident(self, request: Any) -> str | None:
        user = request.user
        if user is not None and user.is_authenticated:
            return None
        address = request.META.get("REMOTE_ADDR")
        return f"ip:{address}" if address else None


class ScopedRateThrottle(throttling.ScopedRateThrottle):
    """DRF's scoped throttle (``throttle_scope``, a sliding window), with the RateLimit-* headers."""

    @classmethod
    def applies_to(cls, view: Any) -> bool:
        return bool(getattr(view, "throttle_scope", None))

    def allow_request(self, request: Any, view: Any) -> bool:
        allowed = super().allow_request(request, view)
        history = getattr(self, "history", None)
        if (rate := parse_rate(getattr(self, "rate", None))) is not None and history is not None:
            limit, duration = rate
            oldest = history[-1] if history else self.now
            note(
                request,
                Quota(
                    limit=limit,
                    remaining=max(0, limit - len(history)),
                    reset=max(1, math.ceil(duration - (self.now - oldest))),
                ),
            )
        return allowed


class RateLimitHeadersMiddleware:
    """Writes the noted quota's RateLimit-* headers on the response (a refusal's Retry-After is DRF's)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (quota := quota_of(request)) is not None:
            response["RateLimit-Limit"] = str(quota.limit)
            response["RateLimit-Remaining"] = str(quota.remaining)
            response["RateLimit-Reset"] = str(quota.reset)
        return response
