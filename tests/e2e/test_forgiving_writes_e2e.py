"""In a real browser with JavaScript switched off (#11 §2): a delete asks first on the shared confirmation page, Cancel
changes nothing, the confirmed delete happens, and the Undo button beside the done message takes it back."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from access.models import OrgUserGrant
from access.services.grants import grant_role
from orgs.models import Organization
from tests.factories import UserFactory, add_to_tenant, build_world

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "java_script_enabled": False}  # the pattern must work without JavaScript


def test_deleting_an_org_asks_first_and_undo_brings_it_back(live_server, page: Page, sign_in) -> None:
    world = build_world()
    sign_in("alice")
    base = live_server.url

    page.goto(f"{base}/o/{world.emea.pk}/delete/")
    expect(page.get_by_role("heading", name="Delete EMEA?")).to_be_visible()
    expect(page.get_by_text("1 organization below it")).to_be_visible()
    page.get_by_role("link", name="Cancel").click()
    expect(page).to_have_url(f"{base}/o/{world.emea.pk}/")
    assert not Organization.objects.get(pk=world.emea.pk).is_deleted

    page.goto(f"{base}/o/{world.emea.pk}/delete/")
    page.get_by_role("button", name="Delete EMEA").click()
    expect(page.get_by_text("EMEA and everything below it were deleted.")).to_be_visible()
    assert Organization.objects.get(pk=world.campaigns.pk).is_deleted

    page.get_by_role("button", name="Undo").click()
    expect(page.get_by_text("EMEA is back, with everything that was deleted with it.")).to_be_visible()
    assert not Organization.objects.get(pk=world.campaigns.pk).is_deleted


def test_removing_a_member_asks_first_and_undo_grants_the_role_again(live_server, page: Page, sign_in) -> None:
    world = build_world()
    dana = UserFactory(username="dana")
    add_to_tenant(dana, world.acme)
    grant_role(actor=world.tenant_admin, target=world.marketing, role="integrator", user=dana)
    sign_in("alice")
    base = live_server.url

    page.goto(f"{base}/o/{world.marketing.pk}/members/")
    page.get_by_role("row", name="dana").get_by_role("button", name="Remove").click()
    expect(page.get_by_role("heading", name="Remove dana from Marketing?")).to_be_visible()
    assert OrgUserGrant.objects.filter(user=dana, content_object=world.marketing).exists()
    page.get_by_role("button", name="Remove").click()
    expect(page.get_by_text("Member removed.")).to_be_visible()
    assert not OrgUserGrant.objects.filter(user=dana, content_object=world.marketing).exists()

    page.get_by_role("button", name="Undo").click()
    expect(page.get_by_text("The member is back, with the same role.")).to_be_visible()
    assert OrgUserGrant.objects.get(user=dana, content_object=world.marketing).role.key == "integrator"
