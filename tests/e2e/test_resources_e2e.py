"""In a real browser: declare a credential with a secret, see it inherited below, hide it there, run a task."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from resources import services
from resources.models import Credential
from tests.factories import PASSWORD, build_world

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "e2e-Secret-0a9b8c"


def log_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("E-mail address or username").fill(username)  # sign-in discovery first
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_declare_a_credential_see_it_below_hide_it_and_run_a_task(live_server, page: Page) -> None:
    world = build_world()
    base = live_server.url
    log_in(page, base, "alice")

    page.goto(f"{base}/o/{world.marketing.pk}/credentials/")
    page.get_by_label("Name", exact=True).fill("CRM")
    page.get_by_label("Kind").select_option("http_basic")
    page.get_by_label("Fields", exact=True).fill("username=bot")
    page.get_by_label("Secret fields").fill(f"password={SECRET}")
    page.get_by_role("button", name="Create credential").click()
    expect(page.get_by_role("heading", name="CRM")).to_be_visible()
    assert SECRET not in page.content()
    assert Credential.objects.get(name="CRM").secret_names == ["password"]

    # Inherited two levels down, with where it comes from.
    page.goto(f"{base}/o/{world.campaigns.pk}/credentials/")
    row = page.get_by_role("row", name="CRM")
    expect(row).to_contain_text("Marketing")
    expect(row).to_contain_text("inherited")

    # Hidden in EMEA: gone from Campaigns.
    page.goto(f"{base}/o/{world.emea.pk}/settings/")
    page.get_by_label("Type").select_option("credential")
    page.get_by_label("Name", exact=True).fill("CRM")
    page.get_by_role("button", name="Hide here").click()
    page.goto(f"{base}/o/{world.campaigns.pk}/credentials/")
    expect(page.get_by_role("row", name="CRM")).to_have_count(0)
    page.screenshot(path="/tmp/canopy-credentials.png", full_page=True)

    # A task: Run queues a run, whose page shows its log.
    task = services.create_task(
        actor=world.tenant_admin, project=world.website, name="Sync", steps=[{"type": "log", "message": "hi"}]
    )
    page.goto(f"{base}/o/{world.marketing.pk}/tasks/{task.pk}/")
    page.get_by_role("button", name="Run").first.click()
    expect(page.get_by_text("queued").first).to_be_visible()
    assert task.runs.count() == 1
