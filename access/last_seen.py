"""When each account was last active: its last signed-in request, in the console or with an API token.

``LastSeenMiddleware`` runs outside the request's read-only snapshot (config/snapshots.py) and after the view, when
``request.user`` is known however the request authenticated: Django's session, or a bearer token that DRF put on the
request while the view ran (access/authentication.py). It writes ``User.last_seen_at`` at most once every
``LAST_SEEN_EVERY`` per user, so that requests stay reads: nothing when the user's row (loaded by the request
anyway) says it was written recently, else one ``cache.add`` claims the write for the interval (concurrent requests
of the same user write once), and the UPDATE itself only moves a value older than the interval (a cache that forgets,
or fails open, costs at most one more statement, never a write per request).

``last_seen(users)`` reads it for many users in one query: the access review's "last seen" column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

#: How often at most one user's last_seen_at is written.
LAST_SEEN_EVERY = timedelta(minutes=5)
_KEY = "canopy:last-seen:{}"


def touch(user: Any, now: datetime | None = None) -> bool:
    """Record that ``user`` is active now, unless it was recorded less than ``LAST_SEEN_EVERY`` ago. True when the
    UPDATE ran (whether or not it moved the value: another process may have been first)."""
    if user is None or not getattr(user, "is_authenticated", False) or user.pk is None:
        return False
    now = now or timezone.now()
    seen = getattr(user, "last_seen_at", None)
    if seen is not None and now - seen < LAST_SEEN_EVERY:
        return False
    if not cache.add(_KEY.format(user.pk), 1, int(LAST_SEEN_EVERY.total_seconds())):
        return False
    stale = Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=now - LAST_SEEN_EVERY)
    get_user_model().objects.filter(stale, pk=user.pk).update(last_seen_at=now)
    user.last_seen_at = now
    return True


class LastSeenMiddleware:
    """After the view: the user the request authenticated as (session or token) was seen now."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # Only when authentication happened: a request without a session cookie or an Authorization header is
        # anonymous, and reading request.user would not change that.
        user = getattr(request, "user", None)
        if user is not None and response.status_code < 500:
            touch(user)
        return response


def last_seen(users: Iterable[Any]) -> dict[Any, datetime | None]:
    """{user id: last seen} for ``users`` (ids or users), in one query."""
    ids = {getattr(user, "pk", user) for user in users}
    if not ids:
        return {}
    rows = get_user_model().objects.filter(pk__in=ids).values_list("pk", "last_seen_at")
    return dict(rows)
