"""The console's SSO page (tenant administrators, from any org of their tenant) and the sso-required page (members
of the tenant only): every write through the services, refusals shown with nothing changed, works without JS."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.urls import reverse

from access.models import AuditEvent
from identity import services
from identity.models import Domain, GroupRole, RecoveryCode, TenantSSO
from resources import crypto
from tests.factories import UserFactory, add_to_tenant
from tests.identity.sso_helpers import configure, enforced, pass_test, verified_domain


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _page(world: Any, org: Any = None) -> str:
    return f"/o/{(org or world.root).pk}/sso/"


def _form(world: Any, **overrides: Any) -> dict[str, Any]:
    data = {
        "action": "configure", "issuer": "https://idp.acme.test", "client_id": "canopy", "client_secret": "s3cret",
        "scopes": "openid email", "groups_claim": "groups", "default_role": "guest", "default_org": "",
        "rows": "2", "group_0": "eng", "role_0": "integrator", "org_0": str(world.marketing.pk),
        "group_1": "", "role_1": "guest", "org_1": "",
    }  # fmt: skip
    data.update(overrides)
    return data


def test_a_tenant_admin_sees_the_tab_and_the_page_before_anything_is_configured(world, as_user):
    client = as_user(world.tenant_admin)
    overview = client.get(f"/o/{world.marketing.pk}/")
    assert f'href="/o/{world.marketing.pk}/sso/"'.encode() in overview.content
    page = client.get(_page(world, world.marketing))
    assert page.status_code == 200
    assert b'data-testid="not-configured"' in page.content
    assert b"/login/sso/callback/</code>" in page.content  # the redirect URI to register


@pytest.mark.parametrize("who", ["admin", "integrator", "guest"])
def test_members_who_do_not_administer_the_tenant_get_no_tab_and_403(world, people, as_user, who):
    client = as_user(people[who])
    assert b"/sso/" not in client.get(f"/o/{world.marketing.pk}/").content
    assert client.get(_page(world, world.marketing)).status_code == 403
    assert client.post(_page(world, world.marketing), _form(world)).status_code == 403
    assert not TenantSSO.objects.exists()


def test_another_tenants_admin_gets_404_and_changes_nothing(world, as_user):
    configure(world)
    client = as_user(world.other_admin)
    assert client.get(_page(world)).status_code == 404
    assert client.post(_page(world), _form(world, issuer="https://evil.test")).status_code == 404
    assert client.post(_page(world), {"action": "recovery"}).status_code == 404
    assert TenantSSO.objects.get(tenant=world.acme).issuer == "https://idp.acme.test"
    assert not RecoveryCode.objects.exists()


def test_configuring_through_the_form_with_mapping_rows(world, as_user):
    client = as_user(world.tenant_admin)
    answer = client.post(_page(world), _form(world))
    assert answer.status_code == 302, answer.content.decode()[:2000]
    sso = TenantSSO.objects.get(tenant=world.acme)
    assert crypto.decrypt(sso.client_secret_ciphertext) == "s3cret" and sso.default_role.key == "guest"
    assert [(g.group, g.role.key, g.org_id) for g in GroupRole.objects.all()] == [
        ("eng", "integrator", world.marketing.pk)
    ]
    page = client.get(_page(world)).content.decode()
    assert "s3cret" not in page  # write-only
    assert 'value="eng"' in page
    assert f'href="/login/sso/test/?tenant={world.acme.pk}"' in page
    # A blank secret keeps the stored one; clearing a row's group removes the mapping.
    answer = client.post(_page(world), _form(world, client_secret="", group_0="", version=str(sso.version)))
    assert answer.status_code == 302
    sso = TenantSSO.objects.get(tenant=world.acme)
    assert crypto.decrypt(sso.client_secret_ciphertext) == "s3cret" and not GroupRole.objects.exists()


def test_a_bad_configuration_is_shown_on_the_form_and_changes_nothing(world, as_user):
    configure(world)
    before = TenantSSO.objects.get(tenant=world.acme)
    client = as_user(world.tenant_admin)
    answer = client.post(_page(world), _form(world, issuer="http://idp.acme.test", client_secret=""))
    assert answer.status_code == 400
    assert b"must use https" in answer.content
    answer = client.post(_page(world), _form(world, scopes="email"))
    assert answer.status_code == 400 and b"openid" in answer.content
    duplicate = client.post(_page(world), _form(world, group_1="eng", role_1="guest", org_1=str(world.marketing.pk)))
    assert duplicate.status_code == 400
    assert "Mapping 2, group: “eng” is mapped twice at Marketing." in duplicate.content.decode()
    after = TenantSSO.objects.get(tenant=world.acme)
    assert (after.issuer, after.version) == (before.issuer, before.version)
    assert not GroupRole.objects.exists()


def test_enforcing_from_the_console_needs_a_test_and_the_unlinked_list_read(world, as_user):
    sso = configure(world)
    verified_domain(world)
    unlinked = UserFactory(username="uma", email="uma@acme.test")
    add_to_tenant(unlinked, world.acme)
    client = as_user(world.tenant_admin)
    page = client.get(_page(world)).content.decode()
    assert "uma@acme.test" in page and "no linked identity" in page
    refused = client.post(_page(world), {"action": "enforce", "version": sso.version, "confirm": "on"})
    assert refused.status_code == 409 and b"test sign-in" in refused.content
    sso = pass_test(world)
    unconfirmed = client.post(_page(world), {"action": "enforce", "version": sso.version})
    assert unconfirmed.status_code == 400
    assert TenantSSO.objects.get(tenant=world.acme).enforced is False
    assert client.post(_page(world), {"action": "enforce", "version": sso.version, "confirm": "on"}).status_code == 302
    assert TenantSSO.objects.get(tenant=world.acme).enforced is True
    sso = TenantSSO.objects.get(tenant=world.acme)
    assert (
        client.post(_page(world), {"action": "unenforce", "confirmed": "1", "version": sso.version}).status_code == 302
    )
    assert TenantSSO.objects.get(tenant=world.acme).enforced is False


def test_domains_claim_verify_and_delete_from_the_console(world, as_user, monkeypatch):
    import dns.resolver

    client = as_user(world.tenant_admin)
    assert client.post(_page(world), {"action": "claim", "domain": "Acme.test"}).status_code == 302
    domain = Domain.objects.get(tenant=world.acme)
    assert domain.txt_record.encode() in client.get(_page(world)).content
    bad = client.post(_page(world), {"action": "claim", "domain": "not a domain"})
    assert bad.status_code == 400 and Domain.objects.count() == 1

    class Record:
        strings = [domain.txt_record.encode()]

    monkeypatch.setattr(dns.resolver, "resolve", lambda *a, **k: [Record()])
    assert client.post(_page(world), {"action": "verify", "domain": str(domain.pk)}).status_code == 302
    assert Domain.objects.get(pk=domain.pk).verified
    foreign = services.claim_domain(actor=world.other_admin, tenant=world.globex, domain="globex.test")
    assert (
        client.post(_page(world), {"action": "delete-domain", "confirmed": "1", "domain": str(foreign.pk)}).status_code
        == 404
    )
    assert Domain.objects.filter(pk=foreign.pk).exists()
    assert (
        client.post(_page(world), {"action": "delete-domain", "confirmed": "1", "domain": str(domain.pk)}).status_code
        == 302
    )
    assert not Domain.objects.filter(pk=domain.pk).exists()


def test_recovery_codes_are_shown_once(world, as_user):
    client = as_user(world.tenant_admin)
    answer = client.post(_page(world), {"action": "recovery"})
    assert answer.status_code == 200 and "no-store" in answer["Cache-Control"]
    codes = [c.code_hash for c in RecoveryCode.objects.all()]
    assert len(codes) == 10
    shown = answer.content.decode()
    assert shown.count('<code class="secret">') == 10
    again = client.get(_page(world)).content.decode()
    assert '<code class="secret">' not in again and 'data-testid="recovery-left">10<' in again
    assert AuditEvent.objects.filter(action="sso.recovery_codes").count() == 1


def test_the_sso_required_page_is_404_to_non_members_and_offers_the_idp_to_members(world, people, as_user):
    enforced(world)
    url = f"/sso/required/?tenant={world.acme.pk}&next=/o/{world.marketing.pk}/"
    outsider = as_user(world.outsider)
    assert outsider.get(url).status_code == 404
    other = as_user(world.other_admin)
    assert other.get(url).status_code == 404
    assert other.get("/sso/required/?tenant=not-a-uuid").status_code == 404
    member = as_user(people["guest"])
    page = member.get(url)
    assert page.status_code == 200 and b"Acme requires single sign-on" in page.content


def test_the_sso_required_page_is_404_for_a_tenant_without_sso(world, people, as_user):
    assert as_user(people["guest"]).get(f"/sso/required/?tenant={world.acme.pk}").status_code == 404


def test_the_sso_required_page_needs_a_sign_in(world, client):
    enforced(world)
    answer = client.get(f"/sso/required/?tenant={world.acme.pk}")
    assert answer.status_code == 302 and "/login/" in answer["Location"]


def test_the_sso_required_page_links_to_the_idp_with_a_safe_next(world, people, as_user):
    from urllib.parse import parse_qs, urlsplit

    enforced(world)
    client = as_user(people["guest"])
    for given, kept in [(f"/o/{world.marketing.pk}/", f"/o/{world.marketing.pk}/"), ("https://evil.test/", "/"),
                        ("//evil.test/x", "/")]:  # fmt: skip
        page = client.get("/sso/required/", {"tenant": str(world.acme.pk), "next": given}).content.decode()
        start = page.split('data-testid="sso-start"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
        parts = urlsplit(start)
        assert parts.path == reverse("sso-start")
        assert parse_qs(parts.query) == {"tenant": [str(world.acme.pk)], "next": [kept]}


def test_the_sso_page_shows_the_flows_callback_to_register(world, as_user, api_as):
    from identity import oidc

    configure(world)
    page = as_user(world.tenant_admin).get(_page(world)).content.decode()
    assert f'data-testid="redirect-uri">{oidc.redirect_uri()}</code>' in page
    data = api_as(world.tenant_admin).get(f"/api/v1/tenants/{world.acme.pk}/sso").json()
    assert data["redirect_uri"] == oidc.redirect_uri()


def test_a_domain_admin_with_a_password_session_is_sent_to_sign_in_through_the_idp(world, client):
    boss = UserFactory(username="boss", email="boss@acme.test")
    add_to_tenant(boss, world.acme, is_admin=True)
    enforced(world)
    client.force_login(boss)
    answer = client.get(_page(world))
    assert answer.status_code == 302 and answer["Location"].startswith("/sso/required/")
    assert client.post(_page(world), {"action": "recovery"}).status_code == 302
    assert not RecoveryCode.objects.exists()


def test_the_sso_page_has_a_query_budget(world, as_user, django_assert_max_num_queries):
    configure(world, group_roles=[{"group": f"g{i}", "role": "guest"} for i in range(20)])
    for i in range(10):
        services.claim_domain(actor=world.tenant_admin, tenant=world.acme, domain=f"d{i}.test")
    verified_domain(world, "acme.test")
    for i in range(10):
        add_to_tenant(UserFactory(username=f"m{i}", email=f"m{i}@acme.test"), world.acme)
    client = as_user(world.tenant_admin)
    client.get(_page(world))
    with django_assert_max_num_queries(20):
        page = client.get(_page(world))
    assert page.status_code == 200 and page.content.count(b"@acme.test</span>") == 10
