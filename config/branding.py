"""The product's marks outside the pages' own <link>: /favicon.ico (issue #11 §9).

Pages link static/img/canopy.svg; a browser that asks /favicon.ico on its own (the admin's pages, a bookmark, an older
browser, a feed reader) is sent to the PNG rendering of the same mark, static/img/canopy.png (64×64)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.templatetags.static import static
from django.views.decorators.http import require_safe

#: A day: the static URL behind it is hashed in production, so the redirect itself is not kept forever.
FAVICON_MAX_AGE = 86400


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    response = HttpResponseRedirect(static("img/canopy.png"))
    response["Cache-Control"] = f"public, max-age={FAVICON_MAX_AGE}"
    return response
