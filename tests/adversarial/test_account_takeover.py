"""A tenant administrator manages memberships, never accounts: no password, e-mail, active flag, staff bit or
token of a member changes through them (finding 1 of the security review)."""

from __future__ import annotations

import pytest

from access.models import AccessToken, OrgUserGrant, TenantMembership
from resources import services
from resources.models import ComponentMember, TaskUserShare
from tests.adversarial.conftest import fresh, password_works, token_client
from tests.factories import PASSWORD

NEW_PASSWORD = "attacker-Chosen-Passw0rd!"


@pytest.mark.parametrize("victim_fixture", ["gina_in_acme", "root_in_acme"])
def test_a_tenant_admin_cannot_change_a_members_account_in_the_admin(world, client, request, victim_fixture):
    victim = request.getfixturevalue(victim_fixture)
    before = fresh(victim)
    client.force_login(world.tenant_admin)

    # The attacker's requests: the change form, the password form, and the list action.
    change = client.post(
        f"/admin/access/user/{victim.pk}/change/",
        {"username": victim.username, "email": "alice-owns-this@evil.example", "is_active": "", "is_staff": "on",
         "is_superuser": "on", "tenant_memberships-TOTAL_FORMS": "0", "tenant_memberships-INITIAL_FORMS": "0"},
    )  # fmt: skip
    password = client.post(
        f"/admin/access/user/{victim.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    delete = client.post(f"/admin/access/user/{victim.pk}/delete/", {"post": "yes"})
    assert change.status_code == 403 and password.status_code == 403 and delete.status_code == 403

    # The victim's account, read back: untouched, and the old password still logs in.
    after = fresh(victim)
    assert (after.email, after.is_active, after.is_staff, after.is_superuser, after.password) == (
        before.email, before.is_active, before.is_staff, before.is_superuser, before.password,
    )  # fmt: skip
    assert password_works(victim) and not password_works(victim, NEW_PASSWORD)


def test_a_tenant_admin_sees_a_members_account_read_only(world, client, gina_in_acme):
    client.force_login(world.tenant_admin)
    page = client.get(f"/admin/access/user/{gina_in_acme.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200 and "gina@example.com" in html
    assert 'name="email"' not in html and "password/" not in html  # no field to edit, no password form link


def test_a_tenant_admin_cannot_see_or_revoke_anyones_tokens(world, client, gina_in_acme):
    victim_client, _ = token_client(gina_in_acme)
    token = AccessToken.objects.get(user=gina_in_acme)
    client.force_login(world.tenant_admin)

    listed = client.get("/admin/access/accesstoken/")
    action = client.post(
        "/admin/access/accesstoken/", {"action": "revoke_selected", "_selected_action": [str(token.pk)]}
    )
    assert listed.status_code == 403 and action.status_code == 403

    assert AccessToken.objects.get(pk=token.pk).revoked_at is None
    assert victim_client.get("/api/v1/me").status_code == 200


def test_a_superuser_can_still_revoke_a_token_in_an_incident(world, client, gina_in_acme):
    victim_client, _ = token_client(gina_in_acme)
    token = AccessToken.objects.get(user=gina_in_acme)
    client.force_login(world.superuser)
    client.post("/admin/access/accesstoken/", {"action": "revoke_selected", "_selected_action": [str(token.pk)]})
    assert victim_client.get("/api/v1/me").status_code == 401


def test_a_tenant_admin_removes_a_member_and_their_access_ends_at_the_next_request(world, client, gina_in_acme):
    task = services.create_task(actor=world.tenant_admin, project=world.website, name="Sync")
    services.share_task(actor=world.tenant_admin, task=task, permission="run", user=gina_in_acme)
    component = services.create_component(actor=world.tenant_admin, org=world.marketing, name="Parser")
    services.add_component_member(actor=world.tenant_admin, component=component, user=gina_in_acme)
    gina_api, _ = token_client(gina_in_acme)
    assert gina_api.get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 200

    membership = TenantMembership.objects.get(user=gina_in_acme, tenant=world.acme)
    client.force_login(world.tenant_admin)
    assert client.post(f"/admin/access/tenantmembership/{membership.pk}/delete/", {"post": "yes"}).status_code == 302

    # Her token and sessions still work for her own tenant, and reach nothing of Acme any more.
    assert gina_api.get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 404
    assert gina_api.get(f"/api/v1/tasks/{task.pk}").status_code == 404
    assert gina_api.get(f"/api/v1/components/{component.pk}").status_code == 404
    assert gina_api.get(f"/api/v1/orgs/{world.globex_root.pk}").status_code == 200
    assert not OrgUserGrant.objects.filter(user=gina_in_acme, content_object__tenant=world.acme).exists()
    assert not TaskUserShare.objects.filter(user=gina_in_acme).exists()
    assert not ComponentMember.objects.filter(user=gina_in_acme).exists()
    assert fresh(gina_in_acme).password == gina_in_acme.password and password_works(gina_in_acme, PASSWORD)


def test_making_someone_tenant_admin_changes_no_flag_on_their_account(world, client, gina_in_acme):
    membership = TenantMembership.objects.get(user=gina_in_acme, tenant=world.acme)
    client.force_login(world.tenant_admin)
    client.post(f"/admin/access/tenantmembership/{membership.pk}/change/", {"is_admin": "on"})
    assert TenantMembership.objects.get(pk=membership.pk).is_admin
    after = fresh(gina_in_acme)
    assert not after.is_staff and not after.is_superuser
