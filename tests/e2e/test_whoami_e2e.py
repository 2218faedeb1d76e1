"""Who am I here, in a real browser (issue #11 §1): the line under the tabs, its panel opening without JavaScript,
and the 403 page that names the missing capability and whom to ask. Under CANOPY_SCREENSHOTS=1 (and a writable
/tmp) it also leaves screenshots for a human look."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import expect

from orgs.models import Organization

pytestmark = pytest.mark.e2e


def org_url(live_server: Any, name: str, suffix: str = "") -> str:
    return f"{live_server.url}/o/{Organization.objects.get(name=name).pk}/{suffix}"


def shoot(page: Any, name: str) -> None:
    if os.environ.get("CANOPY_SCREENSHOTS"):
        page.screenshot(path=f"/tmp/whoami-{name}.png")


def test_maria_sees_her_role_and_what_she_can_do(demo, live_server, page, sign_in):
    sign_in("maria")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(org_url(live_server, "EMEA"))
    line = page.locator(".whoami-line")
    expect(line).to_contain_text("You here:")
    expect(line).to_contain_text("Admin · inherited from Marketing")
    panel = page.locator(".whoami-details")
    expect(panel.get_by_text("Manage members")).to_be_hidden()
    panel.locator("summary").click()
    expect(panel.get_by_text("Manage members", exact=True)).to_be_visible()
    shoot(page, "maria-emea")


def test_paula_sees_her_project_only_role(demo, live_server, page, sign_in):
    sign_in("paula")
    marketing = Organization.objects.get(name="Marketing")
    website = marketing.projects.get(name="Website")
    page.goto(f"{live_server.url}/o/{marketing.pk}/p/{website.pk}/")
    expect(page.locator(".whoami-line")).to_contain_text("Integrator · on project Website only")


def test_gwen_is_told_what_she_lacks_and_whom_to_ask(demo, live_server, page, sign_in):
    sign_in("gwen")
    page.set_viewport_size({"width": 390, "height": 844})
    response = page.goto(org_url(live_server, "Customer Success", "invitations/"))
    assert response is not None and response.status == 403
    main = page.locator("main")
    expect(main).to_contain_text("It needs the capability Manage members in Customer Success")
    expect(main).to_contain_text("Administrators of Acme: acme-admin")
    expect(page.get_by_role("navigation", name="Organization sections")).to_be_attached()
    shoot(page, "gwen-403")


def test_the_panel_opens_without_javascript(demo, live_server, browser):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 800, "height": 900})
    try:
        client = Client()
        client.force_login(get_user_model().objects.get(username="ivan"))
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
        page = context.new_page()
        page.goto(org_url(live_server, "Logistics"))
        expect(page.locator(".whoami-line")).to_contain_text("Integrator · direct")
        page.locator(".whoami-details summary").click()
        expect(page.locator(".whoami-details").get_by_text("Run tasks", exact=True)).to_be_visible()
        expect(page.locator(".whoami-details").get_by_text("Manage members", exact=True)).to_have_count(0)
        shoot(page, "ivan-nojs-800")
    finally:
        context.close()


def test_the_custom_role_form_describes_each_capability(demo, live_server, page, sign_in):
    sign_in("maria")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(org_url(live_server, "Marketing", "roles/"))
    form = page.locator("fieldset.checks")
    expect(form.get_by_label("Manage credentials")).to_be_visible()
    expect(form).to_contain_text("Create, change, rotate and delete credentials and their secrets.")
    shoot(page, "maria-roles")
