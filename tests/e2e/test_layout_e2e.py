"""Any screen (issue #11 §3): every console page of the demo, opened in a real browser at 390, 800 and 1400 px, fits
the window: no horizontal scroll (``scrollWidth > clientWidth`` of the document fails, naming the page, the width and
the elements that stick out). Wide content (tables, code) scrolls inside its own container instead.

The pages come from the URL resolver, filled from the demo world like the crawler's (tests/console/pages.py): every
page as the most privileged personas (acme-admin, root), the main pages as everyone else. Each page is loaded once
and measured at the three widths (the viewport is resized; the layout is recomputed by the browser).

With ``CANOPY_SCREENSHOTS=1`` the walk also writes docs/screenshots/<page>-<width>.png of the main pages at 1400 and
390 px (viewport shots, small): ``make screenshots``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from orgs.management.commands.seed_demo import PEOPLE
from orgs.models import Organization, Project
from resources.models import Run, Task
from tests.console.pages import page_urls

pytestmark = [pytest.mark.e2e]

WIDTHS = (390, 800, 1400)
HEIGHT = 900
PRIVILEGED = ("acme-admin", "root")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SCREENSHOT_WIDTHS = (1400, 390)

#: The pages, in the order a person meets them, that each persona walks: (name, URL name, which org).
MAIN_ORG_PAGES = (
    "org",
    "org-members",
    "org-teams",
    "org-roles",
    "org-explain",
    "org-audit",
    "org-settings",
    "credentials",
    "runtimes",
)
SKIPPED = {"logout"}  # would end the walk's session
MAIN_PAGES = ("home", "switch", "account", "tokens", "shared-with-me")

#: Elements sticking out of the window, the deepest first (what to fix), as "tag.class#id" and their right edge.
OVERFLOW_SCRIPT = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return null;
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.right <= width + 1) continue;
    if (el.closest("details:not([open]) > :not(summary)")) continue;  // a closed menu's panel is not drawn
    if ([...el.children].some((child) => child.getBoundingClientRect().right > width + 1)) continue;
    let name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "");
    if (typeof el.className === "string" && el.className) name += "." + el.className.trim().split(/\\s+/).join(".");
    out.push(name + " (right " + Math.round(box.right) + ")");
    if (out.length >= 5) break;
  }
  return { scroll: document.documentElement.scrollWidth, client: width, culprits: out };
}"""


def overflow(page: Page) -> dict[str, Any] | None:
    return page.evaluate(OVERFLOW_SCRIPT)


def main_urls() -> list[tuple[str, str]]:
    """The main pages of every persona: the account pages, each sample org's main tabs, a project, a task, a run."""
    urls = [(name, reverse(name)) for name in MAIN_PAGES]
    acme = Organization.objects.alive().filter(tenant__name="Acme")
    orgs = [acme.get(parent__isnull=True), acme.get(name="Marketing"), acme.get(name="Logistics")]
    for org in orgs:
        urls += [(f"{name}@{org.name}", reverse(name, args=[org.pk])) for name in MAIN_ORG_PAGES]
    project = Project.objects.select_related("org").get(name="Website")
    urls.append(("project@Website", reverse("project", args=[project.org_id, project.pk])))
    urls.append(("tasks@Website", reverse("tasks", args=[project.org_id, project.pk])))
    task = Task.objects.filter(project=project).order_by("created_at").first()
    if task is not None:
        urls.append(("task@Website", reverse("task", args=[project.org_id, task.pk])))
        run = Run.objects.filter(task=task).order_by("created_at").first()
        if run is not None:
            urls.append(("run@Website", reverse("run", args=[project.org_id, run.pk])))
    return urls


def every_url() -> list[tuple[str, str]]:
    seen: set[str] = set()
    found = []
    for route, url in page_urls():
        if route.name not in SKIPPED and url not in seen:
            seen.add(url)
            found.append((route.name, url))
    return found


def has_page(page: Page, url: str) -> bool:
    """Whether ``url`` answers an HTML page to lay out (not a 405 of a POST-only action, a download, a redirect
    out of the site): asked first with the context's own cookies, so the browser never shows its own error page."""
    answer = page.request.get(url, max_redirects=5)
    kind = answer.headers.get("content-type", "")
    return (
        answer.status != 405
        and kind.startswith("text/html")
        and "attachment" not in answer.headers.get("content-disposition", "")
    )


def walk(page: Page, base: str, pages: list[tuple[str, str]], who: str) -> Iterator[str]:
    """Open each page once and measure it at every width; yield a line per page and width that overflows."""
    for name, url in pages:
        page.set_viewport_size({"width": WIDTHS[-1], "height": HEIGHT})
        if not has_page(page, base + url):
            continue
        response = page.goto(base + url, wait_until="load")
        status = response.status if response is not None else 0
        if status >= 500:
            yield f"{who}: {name} {url} answered {status}"
            continue
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": HEIGHT})
            found = overflow(page)
            if found:
                yield (
                    f"{who}: {name} {url} ({status}) at {width}px: scrollWidth {found['scroll']} > "
                    f"{found['client']}; sticking out: {', '.join(found['culprits']) or '?'}"
                )


@pytest.mark.parametrize("persona", PRIVILEGED)
def test_every_console_page_fits_every_width(persona: str, demo: None, live_server: Any, page: Page, sign_in) -> None:
    sign_in(persona)
    problems = list(walk(page, live_server.url, every_url(), persona))
    assert not problems, "horizontal overflow:\n" + "\n".join(problems)


def test_main_pages_fit_every_width_for_every_persona(demo: None, live_server: Any, page: Page, sign_in) -> None:
    pages = main_urls()
    problems: list[str] = []
    for persona in [name for name, *_ in PEOPLE if name not in PRIVILEGED]:
        sign_in(persona)
        problems += walk(page, live_server.url, pages, persona)
    page.context.clear_cookies()
    anonymous = [(name, reverse(name)) for name in ("login", "signup", "password-reset")]
    problems += walk(page, live_server.url, [*anonymous, ("404", "/no-such-page/")], "anonymous")
    assert not problems, "horizontal overflow:\n" + "\n".join(problems)


def test_open_menus_fit_the_narrow_window(demo: None, live_server: Any, page: Page, sign_in) -> None:
    """The switcher, the sections menu, the account menu and the hidden crumbs, opened at 390 px, stay inside."""
    sign_in("acme-admin")
    campaigns = Organization.objects.get(name="Campaigns")
    page.set_viewport_size({"width": WIDTHS[0], "height": HEIGHT})
    page.goto(f"{live_server.url}/o/{campaigns.pk}/members/")
    header = page.locator("header.topbar")
    crumbs = page.get_by_role("navigation", name="Breadcrumb")
    # The middle of a deep path folds into "…", the switcher stays; "…" opens the folded organizations.
    expect(crumbs.get_by_role("link", name="Marketing", exact=True)).to_be_hidden()
    expect(crumbs.locator(".current-name")).to_have_text("Campaigns")
    for opener in (
        crumbs.locator(".crumb-more > details > summary"),
        crumbs.locator(".switcher > summary"),
        page.locator(".tabs-menu > summary"),
        header.locator(".account-menu > summary"),
    ):
        opener.click()
        assert overflow(page) is None, f"{opener} opened overflows at {WIDTHS[0]}px: {overflow(page)}"
        opener.click()
    crumbs.locator(".crumb-more > details > summary").click()
    expect(crumbs.get_by_role("link", name="Marketing", exact=True)).to_be_visible()
    # "Log out" is reachable at 390 px: in the account menu.
    header.locator(".account-menu > summary").click()
    expect(header.get_by_role("button", name="Log out")).to_be_visible()
    page.keyboard.press("Escape")  # closes the menu (static/js/switcher.js); one menu is open at a time anyway
    expect(header.get_by_role("button", name="Log out")).to_be_hidden()
    # The tabs are a menu here, with every section and the current one named on its button.
    menu = page.locator(".tabs-menu")
    expect(menu.locator("summary")).to_contain_text("Members")
    menu.locator("summary").click()
    expect(menu.get_by_role("link", name="Audit log")).to_be_visible()


def test_header_is_small_and_the_same_with_or_without_an_org(demo: None, live_server: Any, page: Page, sign_in) -> None:
    """At 800 px the sticky header is one row; the account menu sits at the same place on every page."""
    sign_in("maria")
    marketing = Organization.objects.get(name="Marketing")
    spots = {}
    for width in (800, 1400):
        page.set_viewport_size({"width": width, "height": HEIGHT})
        for url in (f"/o/{marketing.pk}/", "/account/", "/tokens/"):
            page.goto(live_server.url + url)
            box = page.locator("header.topbar .account-menu > summary").bounding_box()
            assert box is not None
            spots.setdefault(width, set()).add((round(box["x"]), round(box["y"])))
            bar = page.locator("header.topbar").bounding_box()
            assert bar is not None
            height = bar["height"]
            assert height <= 64, f"{url} at {width}px: the header is {height}px high"
    assert all(len(places) == 1 for places in spots.values()), spots


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@pytest.mark.skipif(not os.environ.get("CANOPY_SCREENSHOTS"), reason="CANOPY_SCREENSHOTS=1 (make screenshots)")
def test_screenshots_of_the_main_pages(demo: None, live_server: Any, page: Page, sign_in) -> None:
    """docs/screenshots/<page>-<width>.png: what the README shows. Viewport shots, so the files stay small."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    sign_in("maria")
    marketing = Organization.objects.get(name="Marketing")
    project = Project.objects.get(name="Website")
    task = Task.objects.filter(project=project).order_by("created_at").first()
    shots = [
        ("overview", reverse("org", args=[marketing.pk])),
        ("members", reverse("org-members", args=[marketing.pk])),
        ("audit", reverse("org-audit", args=[marketing.pk])),
        ("dashboard", reverse("org-rollup", args=[marketing.pk]) + "?period=30d"),
        ("review", reverse("org-review", args=[marketing.pk])),
        ("project", reverse("project", args=[project.org_id, project.pk])),
    ]
    if task is not None:
        shots.append(("task", reverse("task", args=[project.org_id, task.pk])))
    for width in SCREENSHOT_WIDTHS:
        page.set_viewport_size({"width": width, "height": 800 if width > 400 else 780})
        for name, url in shots:
            page.goto(live_server.url + url)
            page.screenshot(path=str(SCREENSHOTS / f"{slug(name)}-{width}.png"))
    missing = [f"{slug(n)}-{w}.png" for n, _ in shots for w in SCREENSHOT_WIDTHS]
    assert all((SCREENSHOTS / name).stat().st_size > 0 for name in missing)
