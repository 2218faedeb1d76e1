"""In a real browser, under the strict Content-Security-Policy: the console's switcher, the admin's organization tree
(drag and drop included) and the Swagger UI work, and the browser reports no violation on any of them."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from orgs.models import Organization
from tests.factories import PASSWORD, build_world

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Runs in every document before its own scripts: a violation (blocked inline script or style, eval, a foreign
# source) fires a securitypolicyviolation event, which goes to Python through the exposed function.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation({
    page: document.location.href,
    directive: event.violatedDirective,
    blocked: event.blockedURI,
    source: event.sourceFile + ":" + event.lineNumber,
    sample: event.sample,
  });
}, true);
"""


class BrowserReports:
    def __init__(self, page: Page) -> None:
        self.violations: list[dict[str, Any]] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        page.expose_function("reportCspViolation", self._violation)
        page.add_init_script(REPORT_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _violation(self, report: dict[str, Any]) -> None:
        self.violations.append(report)

    def _console(self, message: ConsoleMessage) -> None:
        # Chromium also logs each refusal ("Refused to apply inline style…") and any header it cannot parse
        # ("Error with Permissions-Policy header: Unrecognized feature…") as console errors.
        # The admin's pages name no icon, so Chromium asks for /favicon.ico on its own (404): not a page's doing.
        if message.location.get("url", "").endswith("/favicon.ico"):
            return
        if message.type in ("error", "warning"):
            self.console_errors.append(f"{message.type}: {message.text} ({message.location.get('url')})")

    def assert_clean(self) -> None:
        assert self.violations == []
        assert self.console_errors == [], "\n".join(self.console_errors)
        assert self.page_errors == []


def test_console_admin_tree_and_swagger_ui_work_without_a_policy_violation(live_server, page: Page) -> None:
    world = build_world()
    base = live_server.url
    reports = BrowserReports(page)

    page.goto(f"{base}/login/")
    page.get_by_label("E-mail address or username").fill("alice")  # sign-in discovery first
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # Console: the switcher opens with "/", indents the tree from data-level and filters as you type.
    page.goto(f"{base}/o/{world.marketing.pk}/")
    page.keyboard.press("/")
    search = page.get_by_placeholder("Find an organization…").first
    expect(search).to_be_focused()
    items = page.locator(".switcher-item")
    expect(items).to_have_count(5)
    indent = {
        name: page.locator(f'.switcher-item[data-name="{name}"] a').evaluate(
            "a => parseFloat(getComputedStyle(a).paddingLeft)"
        )
        for name in ("acme", "marketing", "emea", "campaigns")
    }
    assert indent["acme"] < indent["marketing"] < indent["emea"] < indent["campaigns"]
    search.fill("camp")
    expect(page.locator(".switcher-item:visible")).to_have_count(1)
    expect(page.locator(".switcher-item:visible .switcher-path")).to_have_text("Acme › Marketing › EMEA")
    page.locator(".switcher-item:visible a").click()
    expect(page).to_have_url(f"{base}/o/{world.campaigns.pk}/")

    # Admin: django-mptt's script builds the tree (toggles, tools), titles are indented by level, and a drag and
    # drop moves an organization (through the move service).
    page.goto(f"{base}/admin/orgs/organization/")
    expect(page.get_by_role("link", name="Collapse tree")).to_be_visible()
    expect(page.locator(".tree-node.children")).to_have_count(3)  # Acme, Marketing, EMEA
    title = page.locator(".tree-title", has_text="Campaigns")
    assert title.evaluate("div => getComputedStyle(div).textIndent") == "60px"
    page.get_by_role("link", name="Collapse tree").click()
    expect(page.locator(".tree-title", has_text="Marketing")).to_be_hidden()
    page.get_by_role("link", name="Expand tree").click()
    expect(title).to_be_visible()

    page.locator("tr", has=page.locator(".tree-title", has_text="Logistics")).locator(".drag-handle").hover()
    page.mouse.down()
    target = page.locator("tr", has=title).bounding_box()
    assert target is not None
    page.mouse.move(target["x"] + 200, target["y"] + target["height"] / 2, steps=8)  # the middle third: as a child
    expect(page.locator("#drag-line")).to_be_visible()
    with page.expect_navigation():
        page.mouse.up()  # POSTs the move, then reloads the page
    expect(page.locator(".messagelist")).to_contain_text("Logistics has been moved under Campaigns")
    assert Organization.objects.get(pk=world.logistics.pk).parent_id == world.campaigns.pk
    expect(page.locator(".tree-title", has_text="Logistics")).to_have_attribute("data-level", "4")

    # Swagger UI: the start-up script comes from ?script, the schema loads and the operations render.
    page.goto(f"{base}/api/v1/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Canopy API", timeout=15_000)
    expect(page.locator(".opblock").first).to_be_visible()
    # This Swagger UI renders its operation list virtually: only what is near the viewport is in the page, so scroll
    # until the operation is there (the schema grew past a screenful of tags before "me").
    me = page.locator(".opblock-summary", has_text="/api/v1/me").first
    for _ in range(60):
        if me.count():
            break
        page.mouse.wheel(0, 1500)
        page.wait_for_timeout(100)
    me.click()
    expect(page.locator(".opblock.is-open").first).to_be_visible()

    reports.assert_clean()
