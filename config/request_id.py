"""``X-Request-Id``: one id per request, on its response and on every log line written while it is served.

A client (or the proxy in front) may send its own id, so that its logs and Canopy's name the same request: a sane
one (1 to 200 characters of ``A-Z a-z 0-9 . _ -``) is kept as it is; anything else (missing, longer, other
characters: a log-injection attempt) is replaced by a fresh one (a UUID4 in hex). Every response carries it, the
console's pages too, and a server error's JSON body repeats it as ``request_id`` (an integrator quoting it to
support finds the traceback). ``RequestIdFilter`` puts it on every log record (``record.request_id``, ``"-"``
outside a request) and ``RequestIdFormatter`` appends it to the line.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-Id"
META_KEY = "HTTP_X_REQUEST_ID"
SANE = re.compile(r"[A-Za-z0-9._-]{1,200}")

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


def request_id_of(request: HttpRequest) -> str:
    """The client's id if it is sane, else a new one."""
    sent = request.META.get(META_KEY, "")
    return sent if SANE.fullmatch(sent) else uuid.uuid4().hex


class RequestIdMiddleware:
    """First in MIDDLEWARE: every answer carries the id, the refusals of the middleware after it included."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_of(request)
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response[HEADER] = request_id
        if response.status_code >= 500:
            _add_to_server_error(response, request_id)
        return response


def _add_to_server_error(response: HttpResponse, request_id: str) -> None:
    """The API's 500 body {"detail", "code": "server_error"} gains ``request_id``."""
    if getattr(response, "streaming", False) or not response.get("Content-Type", "").startswith("application/json"):
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        return
    if isinstance(body, dict) and body.get("code") == "server_error" and "request_id" not in body:
        body["request_id"] = request_id
        response.content = json.dumps(body).encode()
        if response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record: the current request's, or "-" outside a request (commands, start-up)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get() or "-"
        return True


class RequestIdFormatter(logging.Formatter):
    """The message as before, then `` request_id=<id>`` when written while serving a request: a line still starts
    with its message (alerts match on that, e.g. "Cache unavailable, failing open")."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # the message's line, before any traceback
        line = super().formatMessage(record)
        request_id = getattr(record, "request_id", None) or current_request_id.get()
        return f"{line} request_id={request_id}" if request_id and request_id != "-" else line
