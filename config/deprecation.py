"""Deprecating an API operation: the ``Deprecation``, ``Sunset`` and ``Link`` headers, and ``deprecated: true`` in
the schema, from one decorator (README, "API versioning and deprecation").

    @deprecated(sunset=date(2027, 6, 1), link="https://canopy.example/changelog#team-by-body")
    def delete(self, request, id): ...          # one method of a view

    @deprecated(sunset=..., link=...)
    class OldView(APIView): ...                  # every method of the view

Every answer of a deprecated operation (errors included) carries
``Deprecation: @<unix time>`` (RFC 9745: deprecated since that instant; a future date announces it),
``Sunset: <HTTP-date>`` (RFC 8594: the operation stops answering then) and ``Link: <link>; rel="deprecation"``
(where to read what replaces it). The schema marks the operation ``deprecated: true`` and says the dates. The policy
gives integrators at least six months between the announcement and the sunset: ``since`` defaults to six months
before ``sunset``, and an earlier ``sunset`` is refused when the code is loaded.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.utils.http import http_date

NOTICE_MONTHS = 6  # the policy: a deprecation is announced at least this long before its sunset
ATTRIBUTE = "api_deprecation"  # on a view class or a handler method
_ON_REQUEST = "_canopy_deprecation"
T = TypeVar("T")


@dataclass(frozen=True)
class Deprecation:
    since: date
    sunset: date
    link: str

    def headers(self) -> dict[str, str]:
        return {
            "Deprecation": f"@{_epoch(self.since)}",
            "Sunset": http_date(_epoch(self.sunset)),
            "Link": f'<{self.link}>; rel="deprecation"',
        }

    def describe(self) -> str:
        return (
            f"Deprecated since {self.since.isoformat()}: it stops answering on {self.sunset.isoformat()} (the "
            f"Sunset header); what replaces it: {self.link}."
        )


def _epoch(day: date) -> int:
    return calendar.timegm(day.timetuple())


def add_months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def deprecated(*, sunset: date, link: str, since: date | None = None) -> Callable[[T], T]:
    """Mark a view class or one of its handler methods (``get``, ``delete``, …) as deprecated."""
    since = since or add_months(sunset, -NOTICE_MONTHS)
    if sunset < add_months(since, NOTICE_MONTHS):
        raise ImproperlyConfigured(
            f"A deprecation announced on {since} cannot sunset on {sunset}: the policy gives integrators at least "
            f"{NOTICE_MONTHS} months (README, API versioning and deprecation)."
        )
    if not link:
        raise ImproperlyConfigured("A deprecation links to what replaces the operation.")
    notice = Deprecation(since=since, sunset=sunset, link=link)

    def mark(target: T) -> T:
        setattr(target, ATTRIBUTE, notice)
        return target

    return mark


def deprecation_of(view: Any, method: str) -> Deprecation | None:
    """The deprecation of ``method`` on ``view`` (a view class or instance): its handler's, else the view's."""
    if view is None:
        return None
    handler = getattr(view, method.lower(), None)
    return getattr(handler, ATTRIBUTE, None) or getattr(view, ATTRIBUTE, None)


class DeprecationMiddleware:
    """Adds a deprecated operation's headers to each of its answers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        notice: Deprecation | None = getattr(request, _ON_REQUEST, None)
        if notice is not None:
            for name, value in notice.headers().items():
                if name == "Link" and response.has_header("Link"):
                    if value in response["Link"]:
                        continue  # a replayed answer (Idempotency-Key) has it already
                    value = f"{response['Link']}, {value}"
                response[name] = value
        return response

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> None:
        view = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
        notice = deprecation_of(view, request.method or "GET") or getattr(view_func, ATTRIBUTE, None)
        if notice is not None:
            setattr(request, _ON_REQUEST, notice)
