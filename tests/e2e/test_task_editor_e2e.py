"""In a real browser, with JavaScript off: build a task in the step editor of the demo (add steps of two types, pick
the credential, move a step up, remove one), switch to JSON and back, and save (issue #11 §5)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import Browser, Page, expect

from orgs.models import Project
from resources.models import Task

pytestmark = [pytest.mark.e2e]


def signed_in_page(browser: Browser, live_server: Any, username: str, width: int) -> Page:
    """A page of a fresh context without JavaScript, signed in as ``username`` (a planted session cookie)."""
    context = browser.new_context(java_script_enabled=False, viewport={"width": width, "height": 900})
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    return context.new_page()


def serious_violations(page: Page, selector: str) -> list[str]:
    """axe-core's critical and serious findings inside ``selector``, readably."""
    results = Axe().run(page, context=selector)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("critical", "serious")
    ]


@pytest.mark.parametrize("width", [1400, 390])
def test_build_a_task_in_the_step_editor_without_javascript(demo, live_server, browser: Browser, width: int) -> None:
    website = Project.objects.get(name="Website")
    page = signed_in_page(browser, live_server, "maria", width)
    page.goto(f"{live_server.url}/o/{website.org_id}/p/{website.pk}/tasks/")
    form = page.locator("#new-task form")
    form.get_by_label("Name", exact=True).fill(f"Orders {width}")
    form.get_by_role("button", name="+ HTTP request").click()
    form = page.locator("#new-task form")
    expect(form.get_by_role("group", name="Step 1 · HTTP request")).to_be_visible()
    assert form.get_by_label("Name", exact=True).input_value() == f"Orders {width}"  # kept across the button
    step = form.get_by_role("group", name="Step 1 · HTTP request")
    step.get_by_label("Method").select_option("POST")
    step.get_by_label("URL").fill("https://mail.example.com/send")
    step.get_by_label("Credential").select_option("CRM")
    form.get_by_role("button", name="+ Log line").click()
    page.locator("#new-task form").get_by_role("group", name="Step 2 · Log line").get_by_label("Message").fill("done")
    page.locator("#new-task form").get_by_role("button", name="+ Transform").click()
    page.locator("#new-task form").get_by_role("button", name="Remove step 3").click()
    page.locator("#new-task form").get_by_role("button", name="Move up step 2").click()
    form = page.locator("#new-task form")
    assert form.get_by_role("group", name="Step 1 · Log line").get_by_label("Message").input_value() == "done"
    if os.environ.get("CANOPY_SCREENSHOTS"):
        folder = os.environ.get("CANOPY_SCREENSHOTS_DIR", "docs/screenshots")
        page.screenshot(path=f"{folder}/task-editor-{width}.png", full_page=True)
    form.get_by_role("button", name="Edit the steps as JSON (advanced)").click()
    json_text = page.locator("#new-task form").get_by_label("Steps (JSON)").input_value()
    assert '"credential": "CRM"' in json_text and "null" not in json_text
    page.locator("#new-task form").get_by_role("button", name="Back to the step editor").click()
    page.locator("#new-task form").get_by_role("button", name="Create task").click()
    expect(page.get_by_role("heading", name=f"Orders {width}")).to_be_visible()
    assert Task.objects.get(name=f"Orders {width}").steps == [
        {"type": "log", "message": "done"},
        {"type": "http", "method": "POST", "url": "https://mail.example.com/send", "credential": "CRM"},
    ]
    # The editor fits the window (the rest of the page's layout is the layout walk's: tests/e2e/test_layout_e2e.py).
    page.goto(f"{live_server.url}/o/{website.org_id}/tasks/{Task.objects.get(name=f'Orders {width}').pk}/")
    editor = page.locator("#edit-task form")
    expect(editor.get_by_role("group", name="Step 2 · HTTP request")).to_be_visible()
    assert editor.evaluate(
        "form => form.scrollWidth <= form.clientWidth && form.getBoundingClientRect().right <= "
        "document.documentElement.clientWidth"
    ), f"the step editor is wider than {width} px"


def test_the_step_editor_and_its_json_mode_pass_axe(demo, live_server, sign_in, page: Page) -> None:
    """axe-core (with JavaScript: it runs in the page) on the editor holding a step of every type, then as JSON."""
    website = Project.objects.get(name="Website")
    sign_in("maria")
    page.goto(f"{live_server.url}/o/{website.org_id}/p/{website.pk}/tasks/")
    for label in ("+ HTTP request", "+ Lookup", "+ Transform", "+ Log line"):
        page.locator("#new-task form").get_by_role("button", name=label).click()
    page.locator("#new-task form").get_by_role("button", name="Create task").click()  # the boxes with errors
    assert not (found := serious_violations(page, "#new-task form")), found
    page.locator("#new-task form").get_by_role("button", name="Edit the steps as JSON (advanced)").click()
    expect(page.locator("#new-task form").get_by_label("Steps (JSON)")).to_be_visible()
    assert not (found := serious_violations(page, "#new-task form")), found
