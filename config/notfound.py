"""The console's own 404 page under DEBUG too (issue #11 §8).

With DEBUG on (``make run``), Django answers an unknown URL, or an ``Http404`` raised by a view, with its technical
page: yellow, listing every URL pattern, which makes a refusal ("not visible to you") look like a crash. This
middleware answers templates/404.html instead, as production does (``handler404``), whatever raised it. The API
keeps its JSON 404 (config.api), and production (DEBUG off) never builds the technical page at all.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotFound
from django.shortcuts import render

from config import hostile


def not_found_page(request: HttpRequest) -> HttpResponse:
    return render(request, "404.html", {"request_path": request.path}, status=404)


def _ours(request: HttpRequest) -> bool:
    return settings.DEBUG and not hostile.is_api(request)


class OwnNotFoundMiddleware:
    """Under DEBUG, the technical 404 page (an unknown URL, an ``Http404`` outside the console's own error mapping)
    becomes the console's 404 page. Placed after the authentication and messages middleware, so the page knows the
    user; before it, CommonMiddleware still turns a 404 into the APPEND_SLASH redirect when the slashed URL exists."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # Django's technical page is the one HttpResponseNotFound of the project (our pages are render(status=404)).
        if isinstance(response, HttpResponseNotFound) and _ours(request):
            return not_found_page(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A view's Http404: answered at once, without building the technical page first."""
        if isinstance(exception, Http404) and _ours(request):
            return not_found_page(request)
        return None
