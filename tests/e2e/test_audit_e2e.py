"""In a real browser, without JavaScript: the demo's audit log filters (a bad date is shown on its field), reads as
"field: old → new", pages, and fits a 390 px screen (its table scrolls inside its own box, the page does not)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from orgs.models import Organization

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# What of the page's own content sticks out of the window (the header and its menus are the layout walk's,
# tests/e2e/test_layout_e2e.py): the audit table scrolls inside its own box instead.
OVERFLOW = """() => [...document.querySelectorAll('main *')]
    .filter(e => !e.parentElement.closest('.table-scroll'))
    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') + (e.id ? '#' + e.id : ''))"""


@pytest.mark.parametrize("width", [390, 1400])
def test_the_audit_log_without_javascript(demo: Any, live_server: Any, browser: Browser, width: int) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": width, "height": 900})
    try:
        _walk(context, live_server.url, width)
    finally:
        context.close()


def _walk(context: Any, base: str, width: int) -> None:
    from_demo = Organization.objects.filter(parent__isnull=True, tenant__name__icontains="acme").first()
    assert from_demo is not None
    page = context.new_page()
    page.goto(f"{base}/login/")
    page.get_by_label("E-mail address or username").fill("acme-admin")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Password").fill("canopy-demo-2026")
    page.get_by_role("button", name="Log in").click()

    page.goto(f"{base}/o/{from_demo.pk}/audit/")
    expect(page.get_by_role("heading", name=f"Audit log of {from_demo.name}")).to_be_visible()
    page.screenshot(path=f"/tmp/d_audit_{width}.png")
    assert page.evaluate(OVERFLOW) == [], "the audit page sticks out of the window"
    assert "{'" not in page.content()  # no Python dict

    page.get_by_label("Since").fill("soon")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#f-since-error")).to_contain_text("ISO 8601")
    assert page.get_by_text("no event is listed").is_visible()
    assert page.evaluate(OVERFLOW) == []

    page.get_by_label("Since").fill("2000-01-01")
    page.get_by_label("Action").fill("org.")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.audit tbody tr").first).to_contain_text("org.")
    assert page.locator("details.more-filters").get_attribute("open") is None  # the other filters stay folded

    page.get_by_text("More filters").click()
    page.get_by_label("Until").fill("1999-01-01")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#f-until-error")).to_contain_text("after")  # since 2000 … until 1999
    assert page.locator("details.more-filters").get_attribute("open") is not None
    assert page.evaluate(OVERFLOW) == []
