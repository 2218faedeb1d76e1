"""What django-axes answers to a locked-out log-in: JSON for the API, a page for the console."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

MESSAGE = "Too many failed log-in attempts: try again later."


def lockout_response(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": MESSAGE, "code": "locked_out"}, status=429)
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    html = render_to_string("access/locked_out.html", {"minutes": minutes}, request=request)
    return HttpResponse(html, status=429)


def username_of(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The username django-axes counts failures for: lower-cased, since "Alice" and "alice" are one account."""
    value = (credentials or {}).get("username") if credentials else None
    if value is None:
        value = request.POST.get("username", "") if request.method == "POST" else ""
    return str(value).strip().lower()
