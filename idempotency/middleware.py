"""``Idempotency-Key`` on the API's creates and on running a task: a retry does not do the work twice.

A client that did not get an answer (a timeout, a dropped connection) sends the same request again with the same
key. Within 24 hours, for the same user (whatever the credentials: a token's user or the session's):

- the same request (method, path and body) gets the first answer again, status, body and its headers (Location,
  ETag, …), with ``Idempotent-Replayed: true``; the work is not done again. Errors 4xx are kept too (the same
  request would fail the same way) but for 401, 408 and 429; after a 5xx nothing is kept and a retry does the work;
- another request with that key is refused: 422 ``idempotency_key_reused``;
- while the first request is still being served: 409 ``idempotency_in_progress`` (retry a little later);
- an empty key or one longer than 255 characters: 400 ``idempotency_key_invalid``.

Keys are stored hashed, with a hash of the request (idempotency/store.py); answers encrypted. The operations are
listed in idempotency/operations.py; elsewhere the header is ignored. The user is authenticated here, before the
view, with the view's own authentication classes (the view authenticates again: one more query when a key is sent);
a request that does not authenticate goes on to the view without a key, to be refused there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.exceptions import APIException
from rest_framework.request import Request

from config.operations import OPERATIONS
from idempotency import store
from idempotency.models import IdempotencyKey
from idempotency.operations import IDEMPOTENT_OPERATIONS

HEADER = "Idempotency-Key"
META_KEY = "HTTP_IDEMPOTENCY_KEY"
API_PREFIX = "/api/v1"
_ROUTE_PARAMETER = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
_ON_REQUEST = "_canopy_idempotency"


def operation_id(request: HttpRequest) -> str | None:
    """The operation id (config/operations.py) of the resolved request, from its route: tasks/<uuid:id>/run →
    ("POST", "/tasks/{id}/run") → runTask."""
    match = request.resolver_match
    if match is None or not match.route:
        return None
    path = "/" + _ROUTE_PARAMETER.sub(r"{\1}", match.route)
    if not path.startswith(API_PREFIX + "/"):
        return None
    row = OPERATIONS.get((request.method or "", path.removeprefix(API_PREFIX)))
    return row[0] if row else None


def _error(status: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def _user(request: HttpRequest, view_func: Any) -> Any:
    """The authenticated user, by the view's authentication classes, or None (the view will answer why)."""
    view = getattr(view_func, "cls", None)
    classes = getattr(view, "authentication_classes", None)
    if not classes:
        return None
    try:
        user = Request(request, authenticators=[cls() for cls in classes]).user
    except APIException:
        return None
    return user if user is not None and user.is_authenticated and user.pk is not None else None


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            response = self.get_response(request)
        except BaseException:
            if (claimed := getattr(request, _ON_REQUEST, None)) is not None:
                store.release(claimed)
            raise
        record: IdempotencyKey | None = getattr(request, _ON_REQUEST, None)
        if record is not None:
            store.finish(record, response)
        return response

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        if request.method != "POST" or META_KEY not in request.META:
            return None
        if operation_id(request) not in IDEMPOTENT_OPERATIONS:
            return None  # the header means nothing here
        key = request.META[META_KEY]
        if not key.strip() or len(key) > store.MAX_KEY_LENGTH:
            return _error(
                400, f"{HEADER} must be 1 to {store.MAX_KEY_LENGTH} characters long.", "idempotency_key_invalid"
            )
        user = _user(request, view_func)
        if user is None:
            return None
        fingerprint = store.fingerprint(request.method, request.get_full_path(), request.body)
        outcome = store.claim(user, key, fingerprint)
        if outcome.kind == "claimed":
            setattr(request, _ON_REQUEST, outcome.record)
            return None
        if outcome.kind == "replay" and outcome.record is not None:
            if (replayed := store.replay(outcome.record)) is not None:
                return replayed
            return self.process_view(request, view_func, view_args, view_kwargs)  # forgotten: claim it anew
        if outcome.kind == "reused":
            return _error(
                422,
                f"This {HEADER} was used with another request (method, path or body) in the last 24 hours: use a new "
                "key for a new request.",
                "idempotency_key_reused",
            )
        return _error(
            409,
            f"A request with this {HEADER} is still being served: retry once it has finished.",
            "idempotency_in_progress",
        )
