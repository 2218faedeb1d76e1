"""Reads tell the truth under concurrent writes: a GET (or HEAD) on PostgreSQL reads from one snapshot.

Under PostgreSQL's default READ COMMITTED every statement sees its own snapshot. A page reads an object, then the
user's grants, then a list filtered by tree ranges: a tree write committed between two of those statements (an org
created to the left renumbers lft/rght) made a Guest's own org answer 404 once in a few hundred reads. So safe
requests run in one REPEATABLE READ, READ ONLY transaction: every statement sees the database as it was at the
first one. READ ONLY also keeps GET honest: the few writes a read causes (the org remembered for the landing page,
a token's last use) run after it, on commit (``transaction.on_commit``).

Writes stay READ COMMITTED: their services lock what they change and re-read it under the lock. Requests that carry
no credentials (no session cookie, no Authorization header) decide nothing about anyone and skip the transaction, so
the health check and the log-in page touch no database.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ReadSnapshotMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method not in SAFE_METHODS
            or connection.vendor != "postgresql"
            or connection.in_atomic_block
            or not (settings.SESSION_COOKIE_NAME in request.COOKIES or "HTTP_AUTHORIZATION" in request.META)
        ):
            return self.get_response(request)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return self.get_response(request)
