"""In a real browser: an invitation link carries its code in the fragment; the page posts it, the address bar
forgets it, no request URL ever holds it, and the invitee joins with a new account."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from access.models import OrgUserGrant
from access.services.invitations import invite
from tests.factories import PASSWORD, build_world

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_open_an_invitation_link_and_join_without_the_code_reaching_any_url(live_server, page: Page) -> None:
    world = build_world()
    _, code = invite(actor=world.tenant_admin, org=world.marketing, email="dana@example.com", role="integrator")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(f"{live_server.url}/invitations/accept/#{code}")

    expect(page.get_by_role("heading", name="Join Marketing")).to_be_visible()
    assert "#" not in page.url and code not in page.url
    page.get_by_label("Username").fill("dana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account and join").click()
    expect(page).to_have_url(f"{live_server.url}/o/{world.marketing.pk}/")
    assert OrgUserGrant.objects.get(user__username="dana").role.key == "integrator"
    assert not [url for url in requested if code in url]
