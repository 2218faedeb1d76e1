"""In a real browser: log in, open the switcher, search, switch; the URL and the breadcrumb follow."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.factories import PASSWORD, build_world

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_log_in_search_the_switcher_and_switch(live_server, page: Page) -> None:
    world = build_world()
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("E-mail address or username").fill("alice")  # sign-in discovery first
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server.url}/o/{world.root.pk}/")

    page.keyboard.press("/")  # opens the switcher and focuses its search box
    search = page.get_by_placeholder("Find an organization…").first
    expect(search).to_be_focused()
    search.fill("camp")
    expect(page.locator(".switcher-item:visible")).to_have_count(1)
    page.screenshot(path="/tmp/canopy-switcher.png")
    page.locator(".switcher-item:visible a").click()

    expect(page).to_have_url(f"{live_server.url}/o/{world.campaigns.pk}/")
    crumbs = page.get_by_role("navigation", name="Breadcrumb")
    expect(crumbs).to_contain_text("Marketing")
    expect(crumbs).to_contain_text("EMEA")
    expect(crumbs.locator(".current-name")).to_have_text("Campaigns")
    page.screenshot(path="/tmp/canopy-console.png", full_page=True)

    crumbs.get_by_role("link", name="Marketing").click()
    expect(page).to_have_url(f"{live_server.url}/o/{world.marketing.pk}/")
    expect(page.locator(".current-name")).to_have_text("Marketing")
