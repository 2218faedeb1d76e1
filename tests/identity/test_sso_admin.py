"""The SSO admin: scoped to the tenants the user administers, writes through the services, the client secret and
the recovery codes' hashes never on a page, domains verified by superusers only (an action, without DNS)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from identity import services
from identity.models import Domain, RecoveryCode, TenantSSO
from resources import crypto
from tests.identity.sso_helpers import configure


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _globex_sso(world: Any) -> TenantSSO:
    return services.put_sso(
        actor=world.other_admin, tenant=world.globex,
        data={"issuer": "https://idp.globex.test", "client_id": "g", "client_secret": "globex-secret"},
    )  # fmt: skip


def test_a_tenant_admin_sees_their_configuration_without_the_secret_and_not_another_tenants(world, as_user):
    ours, theirs = configure(world), _globex_sso(world)
    client = as_user(world.tenant_admin)
    listing = client.get("/admin/identity/tenantsso/")
    assert listing.status_code == 200
    assert b"idp.acme.test" in listing.content and b"idp.globex.test" not in listing.content
    page = client.get(f"/admin/identity/tenantsso/{ours.pk}/change/")
    assert page.status_code == 200
    assert b"s3cret-value" not in page.content and ours.client_secret_ciphertext.encode() not in page.content
    assert client.get(f"/admin/identity/tenantsso/{theirs.pk}/change/", follow=True).status_code in (200, 404)
    assert b"globex" not in client.get(f"/admin/identity/tenantsso/{theirs.pk}/change/", follow=True).content


def test_saving_in_the_admin_goes_through_the_service_and_a_blank_secret_keeps_it(world, as_user):
    sso = configure(world, group_roles=[{"group": "eng", "role": "guest"}])
    client = as_user(world.tenant_admin)
    answer = client.post(
        f"/admin/identity/tenantsso/{sso.pk}/change/",
        {"issuer": "https://idp2.acme.test", "client_id": "canopy", "client_secret": "", "scopes": "openid",
         "groups_claim": "groups", "default_role": "", "default_org": "", "loaded_version": sso.version},
    )  # fmt: skip
    assert answer.status_code == 302, answer.content.decode()[:3000]
    fresh = TenantSSO.objects.get(pk=sso.pk)
    assert fresh.issuer == "https://idp2.acme.test" and crypto.decrypt(fresh.client_secret_ciphertext) == "s3cret-value"
    assert [g.group for g in fresh.group_roles.all()] == ["eng"]  # the mappings are not this form's
    refused = client.post(
        f"/admin/identity/tenantsso/{sso.pk}/change/",
        {"issuer": "http://idp3.acme.test", "client_id": "canopy", "scopes": "openid", "groups_claim": "groups",
         "loaded_version": fresh.version},
    )  # fmt: skip
    assert refused.status_code in (200, 303)
    assert TenantSSO.objects.get(pk=sso.pk).issuer == "https://idp2.acme.test"


def test_only_a_superuser_verifies_domains_in_the_admin(world, as_user):
    domain = services.claim_domain(actor=world.tenant_admin, tenant=world.acme, domain="acme.test")
    action = {"action": "verify_selected", "_selected_action": [str(domain.pk)]}
    admin_client = as_user(world.tenant_admin)
    assert b"verify_selected" not in admin_client.get("/admin/identity/domain/").content
    admin_client.post("/admin/identity/domain/", action)
    assert not Domain.objects.get(pk=domain.pk).verified
    superuser = as_user(world.superuser)
    assert superuser.post("/admin/identity/domain/", action).status_code == 302
    assert Domain.objects.get(pk=domain.pk).verified_by == world.superuser


def test_a_tenant_admin_claims_a_domain_in_the_admin_for_their_tenant_only(world, as_user):
    client = as_user(world.tenant_admin)
    assert (
        client.post("/admin/identity/domain/add/", {"tenant": str(world.acme.pk), "domain": "Acme.test"}).status_code
        == 302
    )
    assert Domain.objects.get(tenant=world.acme).domain == "acme.test"
    refused = client.post("/admin/identity/domain/add/", {"tenant": str(world.globex.pk), "domain": "globex.test"})
    assert refused.status_code == 200  # the form: not a choice
    assert not Domain.objects.filter(tenant=world.globex).exists()


def test_recovery_codes_show_no_hash_and_are_read_only(world, as_user):
    services.regenerate_recovery_codes(actor=world.tenant_admin, tenant=world.acme)
    code = RecoveryCode.objects.filter(tenant=world.acme).first()
    client = as_user(world.tenant_admin)
    page = client.get(f"/admin/identity/recoverycode/{code.pk}/change/")
    assert page.status_code == 200 and code.code_hash.encode() not in page.content
    assert client.post(f"/admin/identity/recoverycode/{code.pk}/delete/", {"post": "yes"}).status_code == 403
    assert RecoveryCode.objects.filter(pk=code.pk).exists()
    assert as_user(world.other_admin).get("/admin/identity/recoverycode/").content.count(b"/change/") == 0


def test_a_tenant_admin_adds_a_configuration_in_the_admin_for_their_tenant_only(world, as_user):
    client = as_user(world.tenant_admin)
    form = {"issuer": "https://idp.acme.test", "client_id": "canopy", "client_secret": "from-admin",
            "scopes": "openid email", "groups_claim": "groups"}  # fmt: skip
    refused = client.post("/admin/identity/tenantsso/add/", {**form, "tenant": str(world.globex.pk)})
    assert refused.status_code == 200 and not TenantSSO.objects.exists()  # not a choice
    answer = client.post("/admin/identity/tenantsso/add/", {**form, "tenant": str(world.acme.pk)})
    assert answer.status_code == 302, answer.content.decode()[:2000]
    sso = TenantSSO.objects.get(tenant=world.acme)
    assert crypto.decrypt(sso.client_secret_ciphertext) == "from-admin" and sso.changed_at is not None


@pytest.mark.parametrize("who", ["admin", "integrator"])
def test_org_roles_do_not_open_the_sso_admin(world, people, as_user, who):
    configure(world)
    client = as_user(people[who])
    answer = client.get("/admin/identity/tenantsso/")
    assert answer.status_code == 302 and "/admin/login/" in answer["Location"]
