"""The SSO API (API.md "Identity"): tenant administrators configure their tenant's IdP, domains, enforcement and
break-glass codes; anyone else gets 404 for the tenant and its domains; bad input is a 400 that changes nothing;
the client secret never comes back."""

from __future__ import annotations

from typing import Any

import pytest

from access.models import AuditEvent
from identity import services
from identity.models import Domain, ExternalIdentity, GroupRole, RecoveryCode, TenantSSO
from resources import crypto
from tests.factories import UserFactory, add_to_tenant
from tests.identity.sso_helpers import config, configure, pass_test, verified_domain


def _url(world: Any, suffix: str = "") -> str:
    return f"/api/v1/tenants/{world.acme.pk}/sso{suffix}"


def _body(world: Any, **overrides: Any) -> dict[str, Any]:
    body = config(group_roles=[{"group": "eng", "role": "integrator", "org": str(world.marketing.pk)}])
    body.update(overrides)
    return body


# -- GET / PUT / DELETE /tenants/{id}/sso ----------------------------------------------------------------------------


def test_get_answers_not_configured_with_the_redirect_uri_to_register(world, api_as, settings):
    answer = api_as(world.tenant_admin).get(_url(world))
    assert answer.status_code == 200
    data = answer.json()
    assert data["configured"] is False and data["enforced"] is False
    # the sign-in flow's own callback, from SITE_URL (never the request's Host header)
    assert data["redirect_uri"] == settings.SITE_URL.rstrip("/") + "/login/sso/callback/"


def test_a_tenant_admin_configures_the_idp_and_the_secret_is_stored_encrypted_and_never_shown(world, api_as):
    client = api_as(world.tenant_admin)
    answer = client.put(_url(world), _body(world, default_role="guest"), format="json")
    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["configured"] is True and data["issuer"] == "https://idp.acme.test"
    assert data["client_secret_set"] is True and "client_secret" not in data
    assert "s3cret-value" not in answer.content.decode()
    assert data["group_roles"] == [{"group": "eng", "role": "integrator", "org": str(world.marketing.pk)}]
    assert data["default_role"] == "guest" and answer["ETag"]
    sso = TenantSSO.objects.get(tenant=world.acme)
    assert "s3cret-value" not in sso.client_secret_ciphertext
    assert crypto.decrypt(sso.client_secret_ciphertext) == "s3cret-value"
    event = AuditEvent.objects.get(action="sso.configured")
    assert "s3cret-value" not in str(event.changes) and event.tenant_id == world.acme.pk
    assert "s3cret-value" not in client.get(_url(world)).content.decode()


def test_a_put_without_secret_keeps_it_and_group_roles_are_replaced(world, api_as):
    client = api_as(world.tenant_admin)
    client.put(_url(world), _body(world), format="json")
    body = _body(world, group_roles=[{"group": "ops", "role": "guest"}])
    del body["client_secret"]
    answer = client.put(_url(world), body, format="json")
    assert answer.status_code == 200, answer.content
    sso = TenantSSO.objects.get(tenant=world.acme)
    assert crypto.decrypt(sso.client_secret_ciphertext) == "s3cret-value"
    assert [(g.group, g.role.key, g.org_id) for g in GroupRole.objects.filter(sso=sso)] == [
        ("ops", "guest", world.root.pk)
    ]


def test_the_first_configuration_needs_a_secret(world, api_as):
    body = _body(world)
    del body["client_secret"]
    answer = api_as(world.tenant_admin).put(_url(world), body, format="json")
    assert answer.status_code == 400 and "client_secret" in answer.json()
    assert not TenantSSO.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"issuer": "http://idp.acme.test"}, "issuer"),
        ({"issuer": "not a url"}, "issuer"),
        ({"issuer": "https://idp.acme.test/?x=1"}, "issuer"),
        ({"scopes": "email profile"}, "scopes"),
        ({"client_id": ""}, "client_id"),
        ({"default_role": "no-such-role"}, "default_role"),
        ({"default_org": "00000000-0000-0000-0000-000000000001"}, "default_org"),
        ({"group_roles": [{"group": "eng", "role": "nope"}]}, "group_roles"),
        ({"group_roles": [{"group": "", "role": "guest"}]}, "group_roles"),
        ({"group_roles": [{"group": "a", "role": "guest"}, {"group": "a", "role": "admin"}]}, "group_roles"),
    ],
)
def test_bad_configuration_is_a_field_error_and_nothing_changes(world, api_as, overrides, field):
    client = api_as(world.tenant_admin)
    client.put(_url(world), _body(world), format="json")
    before = TenantSSO.objects.get(tenant=world.acme)
    answer = client.put(_url(world), _body(world, **overrides), format="json")
    assert answer.status_code == 400, answer.content
    assert field in answer.json()
    after = TenantSSO.objects.get(tenant=world.acme)
    assert (after.version, after.issuer, after.scopes, after.changed_at) == (
        before.version, before.issuer, before.scopes, before.changed_at
    )  # fmt: skip
    assert GroupRole.objects.filter(sso=after).count() == 1


def test_http_is_accepted_for_a_loopback_test_idp_only(world, api_as):
    client = api_as(world.tenant_admin)
    assert client.put(_url(world), _body(world, issuer="http://127.0.0.1:9000"), format="json").status_code == 200
    assert client.put(_url(world), _body(world, issuer="http://localhost:9000/oidc"), format="json").status_code == 200
    assert client.put(_url(world), _body(world, issuer="http://10.0.0.1"), format="json").status_code == 400


def test_another_tenants_org_or_role_is_refused_like_a_missing_one(world, api_as):
    from access.services.custom_roles import create_role
    from config.actors import SYSTEM

    foreign_role = create_role(actor=SYSTEM, org=world.globex_root, name="Globex auditor", description="",
                               capabilities=["org.view"])  # fmt: skip
    client = api_as(world.tenant_admin)
    missing = client.put(_url(world), _body(world, default_org="00000000-0000-0000-0000-000000000001"), format="json")
    foreign = client.put(_url(world), _body(world, default_org=str(world.globex_root.pk)), format="json")
    assert (missing.status_code, foreign.status_code) == (400, 400)
    assert missing.json()["default_org"] == foreign.json()["default_org"]
    role = client.put(_url(world), _body(world, default_role=foreign_role.key), format="json")
    assert role.status_code == 400 and "default_role" in role.json()
    mapped = client.put(
        _url(world), _body(world, group_roles=[{"group": "x", "role": "guest", "org": str(world.globex_root.pk)}]),
        format="json",
    )  # fmt: skip
    assert mapped.status_code == 400
    assert not TenantSSO.objects.exists()


def test_delete_removes_the_configuration_and_is_audited(world, api_as):
    client = api_as(world.tenant_admin)
    client.put(_url(world), _body(world), format="json")
    assert client.delete(_url(world)).status_code == 204
    assert not TenantSSO.objects.exists() and not GroupRole.objects.exists()
    assert AuditEvent.objects.filter(action="sso.deleted", tenant_id=world.acme.pk).exists()
    assert client.delete(_url(world)).status_code == 404


def test_a_stale_if_match_is_refused(world, api_as):
    client = api_as(world.tenant_admin)
    etag = client.put(_url(world), _body(world), format="json")["ETag"]
    client.put(_url(world), _body(world, client_id="other"), format="json")
    answer = client.put(_url(world), _body(world, client_id="third"), format="json", HTTP_IF_MATCH=etag)
    assert answer.status_code == 412
    assert TenantSSO.objects.get(tenant=world.acme).client_id == "other"


@pytest.mark.parametrize("who", ["integrator", "admin", "guest", "newcomer"])
def test_members_who_do_not_administer_the_tenant_get_404_everywhere(world, people, api_as, who):
    configure(world)
    domain = verified_domain(world)
    client = api_as(people[who])
    assert client.get(_url(world)).status_code == 404
    assert client.put(_url(world), _body(world, client_id="evil"), format="json").status_code == 404
    assert client.delete(_url(world)).status_code == 404
    assert client.get(f"/api/v1/tenants/{world.acme.pk}/domains").status_code == 404
    assert client.post(f"/api/v1/tenants/{world.acme.pk}/domains", {"domain": "x.test"}).status_code == 404
    assert client.delete(f"/api/v1/domains/{domain.pk}").status_code == 404
    assert client.post(f"/api/v1/domains/{domain.pk}/verify").status_code == 404
    assert client.post(_url(world, "/recovery-codes")).status_code == 404
    assert client.get(_url(world, "/unlinked-members")).status_code == 404
    sso = TenantSSO.objects.get(tenant=world.acme)
    assert sso.client_id == "canopy" and Domain.objects.filter(pk=domain.pk).exists()
    assert not RecoveryCode.objects.exists()


def test_anonymous_callers_get_401(world, api):
    assert api.get(_url(world)).status_code == 401
    assert api.post(f"/api/v1/tenants/{world.acme.pk}/domains", {"domain": "x.test"}).status_code == 401


def test_a_superuser_manages_any_tenant(world, api_as):
    client = api_as(world.superuser)
    assert client.put(_url(world), _body(world), format="json").status_code == 200
    assert client.get(f"/api/v1/tenants/{world.globex.pk}/sso").status_code == 200


# -- attacks: another tenant's administrator -----------------------------------------------------------------------


def test_an_admin_of_another_tenant_can_neither_read_nor_configure_nor_enforce(world, api_as):
    configure(world)
    verified_domain(world)
    pass_test(world)
    attacker = api_as(world.other_admin)
    assert attacker.get(_url(world)).status_code == 404
    assert attacker.put(_url(world), _body(world, issuer="https://evil.test"), format="json").status_code == 404
    assert attacker.put(_url(world), _body(world, enforced=True), format="json").status_code == 404
    assert attacker.delete(_url(world)).status_code == 404
    sso = TenantSSO.objects.get(tenant=world.acme)
    assert (sso.issuer, sso.enforced) == ("https://idp.acme.test", False)


def test_an_admin_of_another_tenant_cannot_verify_delete_or_list_its_domains(world, api_as):
    claimed = services.claim_domain(actor=world.tenant_admin, tenant=world.acme, domain="acme.test")
    attacker = api_as(world.other_admin)
    assert attacker.post(f"/api/v1/domains/{claimed.pk}/verify").status_code == 404
    assert attacker.delete(f"/api/v1/domains/{claimed.pk}").status_code == 404
    assert attacker.get(f"/api/v1/tenants/{world.acme.pk}/domains").status_code == 404
    claimed.refresh_from_db()
    assert claimed.verified_at is None


def test_an_admin_of_another_tenant_cannot_claim_a_verified_domain(world, api_as):
    verified_domain(world, "acme.test")
    answer = api_as(world.other_admin).post(
        f"/api/v1/tenants/{world.globex.pk}/domains", {"domain": "ACME.test"}, format="json"
    )
    assert answer.status_code == 409 and answer.json()["code"] == "domain_taken"
    assert not Domain.objects.filter(tenant=world.globex).exists()


# -- enforcement -----------------------------------------------------------------------------------------------------


def test_enforcing_is_refused_until_tested_and_again_after_a_change(world, api_as):
    client = api_as(world.tenant_admin)
    client.put(_url(world), _body(world), format="json")
    verified_domain(world)
    refused = client.put(_url(world), _body(world, enforced=True), format="json")
    assert (refused.status_code, refused.json()["code"]) == (409, "sso_untested")
    assert TenantSSO.objects.get(tenant=world.acme).enforced is False
    pass_test(world)
    assert client.put(_url(world), _body(world, enforced=True), format="json").json()["enforced"] is True
    client.put(_url(world), _body(world, enforced=False), format="json")
    changed = client.put(_url(world), _body(world, client_id="new-client", enforced=True), format="json")
    assert (changed.status_code, changed.json()["code"]) == (409, "sso_untested")
    sso = TenantSSO.objects.get(tenant=world.acme)
    assert (sso.client_id, sso.enforced) == ("canopy", False)  # the refused PUT changed nothing at all


@pytest.mark.parametrize(
    "change",
    [
        {"issuer": "https://other.acme.test"},
        {"client_id": "x"},
        {"client_secret": "new-secret"},
        {"scopes": "openid"},
        {"groups_claim": "roles"},
        {"group_roles": []},
        {"default_role": "guest"},
    ],
)
def test_each_change_a_sign_in_depends_on_needs_a_new_test(world, api_as, change):
    client = api_as(world.tenant_admin)
    client.put(_url(world), _body(world), format="json")
    pass_test(world)
    assert client.get(_url(world)).json()["tested_since_change"] is True
    assert client.put(_url(world), _body(world, **change), format="json").status_code == 200
    assert client.get(_url(world)).json()["tested_since_change"] is False


def test_a_put_that_changes_nothing_keeps_the_test(world, api_as):
    client = api_as(world.tenant_admin)
    client.put(_url(world), _body(world), format="json")
    pass_test(world)
    client.put(_url(world), _body(world), format="json")
    assert client.get(_url(world)).json()["tested_since_change"] is True


def test_enforcing_needs_a_verified_domain(world, api_as):
    client = api_as(world.tenant_admin)
    client.put(_url(world), _body(world), format="json")
    pass_test(world)
    answer = client.put(_url(world), _body(world, enforced=True), format="json")
    assert (answer.status_code, answer.json()["code"]) == (409, "sso_no_domain")


def test_a_test_started_before_a_change_does_not_count(world):
    sso = configure(world)
    configure(world, client_id="changed")
    assert services.mark_tested(actor=world.tenant_admin, tenant=world.acme, changed_at=sso.changed_at) is False
    assert TenantSSO.objects.get(tenant=world.acme).tested_at is None


# -- domains ---------------------------------------------------------------------------------------------------------


def test_a_tenant_admin_claims_lists_and_deletes_domains(world, api_as, django_assert_max_num_queries):
    client = api_as(world.tenant_admin)
    answer = client.post(f"/api/v1/tenants/{world.acme.pk}/domains", {"domain": " Acme.TEST. "}, format="json")
    assert answer.status_code == 201, answer.content
    data = answer.json()
    assert data["domain"] == "acme.test" and data["verified"] is False
    assert data["txt_record"].startswith("canopy-verification=") and len(data["txt_record"]) > 30
    for name in ("a.acme.test", "b.acme.test", "c.acme.test"):
        services.claim_domain(actor=world.tenant_admin, tenant=world.acme, domain=name)
    client.get(
        f"/api/v1/tenants/{world.acme.pk}/domains"
    )  # the tenant's rules, invalidated by the claims, cached again
    with django_assert_max_num_queries(6):
        listed = client.get(f"/api/v1/tenants/{world.acme.pk}/domains")
    assert listed.json()["count"] == 4
    assert client.delete(f"/api/v1/domains/{data['id']}").status_code == 204
    assert not Domain.objects.filter(pk=data["id"]).exists()
    assert AuditEvent.objects.filter(action="domain.claimed").count() == 4
    assert AuditEvent.objects.filter(action="domain.deleted").count() == 1


@pytest.mark.parametrize("bad", ["", "localhost", "exa mple.com", "-bad.com", "a..b", "1.2.3.4", "x" * 260 + ".com"])
def test_a_bad_domain_is_a_field_error(world, api_as, bad):
    answer = api_as(world.tenant_admin).post(f"/api/v1/tenants/{world.acme.pk}/domains", {"domain": bad},
                                             format="json")  # fmt: skip
    assert answer.status_code == 400 and "domain" in answer.json()
    assert not Domain.objects.exists()


def test_claiming_the_same_domain_twice_is_a_conflict(world, api_as):
    client = api_as(world.tenant_admin)
    client.post(f"/api/v1/tenants/{world.acme.pk}/domains", {"domain": "acme.test"}, format="json")
    again = client.post(f"/api/v1/tenants/{world.acme.pk}/domains", {"domain": "ACME.test"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "domain_claimed")


class _Record:
    def __init__(self, text: str):
        self.strings = [text.encode()]


def _resolver(monkeypatch: Any, answer: Any) -> list[tuple[str, str]]:
    import dns.resolver

    asked: list[tuple[str, str]] = []

    def resolve(name: str, kind: str, **kwargs: Any) -> Any:
        asked.append((name, kind))
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(dns.resolver, "resolve", resolve)
    return asked


def test_verification_by_the_dns_txt_record(world, api_as, monkeypatch):
    domain = services.claim_domain(actor=world.tenant_admin, tenant=world.acme, domain="acme.test")
    asked = _resolver(monkeypatch, [_Record("v=spf1 -all"), _Record(domain.txt_record)])
    answer = api_as(world.tenant_admin).post(f"/api/v1/domains/{domain.pk}/verify")
    assert answer.status_code == 200, answer.content
    assert answer.json()["verified"] is True and asked == [("acme.test", "TXT")]
    domain.refresh_from_db()
    assert domain.verified_by == world.tenant_admin
    assert AuditEvent.objects.filter(action="domain.verified", changes__by="dns").exists()


def test_verification_without_the_record_is_a_clear_400_and_changes_nothing(world, api_as, monkeypatch):
    import dns.exception
    import dns.resolver

    domain = services.claim_domain(actor=world.tenant_admin, tenant=world.acme, domain="acme.test")
    client = api_as(world.tenant_admin)
    for answer, words in [
        ([_Record("canopy-verification=wrong")], "No TXT record"),
        (dns.resolver.NXDOMAIN(), "does not exist"),
        (dns.resolver.NoAnswer(), "No TXT record"),
        (dns.exception.Timeout(), "did not answer"),
    ]:
        _resolver(monkeypatch, answer)
        refused = client.post(f"/api/v1/domains/{domain.pk}/verify")
        assert refused.status_code == 400, refused.content
        assert words in refused.json()["domain"][0]
    domain.refresh_from_db()
    assert domain.verified_at is None


def test_a_superuser_verifies_without_dns(world, api_as, monkeypatch):
    domain = services.claim_domain(actor=world.tenant_admin, tenant=world.acme, domain="acme.test")
    asked = _resolver(monkeypatch, Exception("no DNS for superusers"))
    assert api_as(world.superuser).post(f"/api/v1/domains/{domain.pk}/verify").json()["verified"] is True
    assert asked == []


def test_a_domain_verified_by_another_tenant_first_is_409(world, api_as, monkeypatch):
    ours = services.claim_domain(actor=world.tenant_admin, tenant=world.acme, domain="shared.test")
    verified_domain(world, "shared.test", tenant=world.globex)
    _resolver(monkeypatch, [_Record(ours.txt_record)])
    answer = api_as(world.tenant_admin).post(f"/api/v1/domains/{ours.pk}/verify")
    assert (answer.status_code, answer.json()["code"]) == (409, "domain_taken")
    ours.refresh_from_db()
    assert ours.verified_at is None


# -- recovery codes and unlinked members -----------------------------------------------------------------------------


def test_recovery_codes_are_shown_once_hashed_and_regenerating_revokes_the_unused(world, api_as):
    client = api_as(world.tenant_admin)
    first = client.post(_url(world, "/recovery-codes"))
    assert first.status_code == 201
    codes = first.json()["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = list(RecoveryCode.objects.filter(tenant=world.acme).values_list("code_hash", flat=True))
    assert len(stored) == 10 and not set(codes) & set(stored)
    assert services.use_recovery_code(world.tenant_admin, world.acme, codes[0])
    second = client.post(_url(world, "/recovery-codes")).json()["codes"]
    assert not services.use_recovery_code(world.tenant_admin, world.acme, codes[1])  # revoked
    assert services.use_recovery_code(world.tenant_admin, world.acme, second[0])
    assert RecoveryCode.objects.filter(tenant=world.acme).count() == 11  # the used one stays, for the record
    assert AuditEvent.objects.filter(action="sso.recovery_codes").count() == 2


def test_unlinked_members_are_the_domain_members_without_an_identity(world, people, api_as):
    verified_domain(world, "acme.test")
    linked = UserFactory(username="linked", email="linked@acme.test")
    unlinked = UserFactory(username="unlinked", email="Unlinked@ACME.test")
    contractor = UserFactory(username="contractor", email="c@freelance.test")
    for user in (linked, unlinked, contractor):
        add_to_tenant(user, world.acme)
    ExternalIdentity.objects.create(user=linked, tenant=world.acme, issuer="https://idp.acme.test", subject="1")
    UserFactory(username="stranger", email="stranger@acme.test")  # not a member
    answer = api_as(world.tenant_admin).get(_url(world, "/unlinked-members"))
    assert answer.status_code == 200
    assert [m["username"] for m in answer.json()["results"]] == ["unlinked"]


def test_the_client_secret_is_rotated_with_every_other_secret(world, settings):
    import io

    from cryptography.fernet import Fernet
    from django.core.management import call_command

    old_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    configure(world)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "1 single sign-on configurations" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert crypto.decrypt(TenantSSO.objects.get(tenant=world.acme).client_secret_ciphertext) == "s3cret-value"


def test_the_unlinked_members_list_has_a_query_budget(world, api_as, django_assert_max_num_queries):
    verified_domain(world, "acme.test")
    for i in range(30):
        add_to_tenant(UserFactory(username=f"m{i:02}", email=f"m{i}@acme.test"), world.acme)
    client = api_as(world.tenant_admin)
    with django_assert_max_num_queries(8):
        answer = client.get(_url(world, "/unlinked-members"))
    assert answer.json()["count"] == 30 and len(answer.json()["results"]) == 30


def test_a_change_while_enforced_keeps_enforcement_on_and_asks_for_a_new_test(world, api_as):
    from tests.identity.sso_helpers import enforced

    enforced(world)
    client = api_as(world.superuser)
    answer = client.put(_url(world), _body(world, client_id="rotated"), format="json")
    assert answer.status_code == 200
    assert (answer.json()["enforced"], answer.json()["tested_since_change"]) == (True, False)
    again = client.put(_url(world), _body(world, client_id="rotated", enforced=True), format="json")
    assert again.status_code == 200 and again.json()["enforced"] is True  # already on: nothing is being enabled
    event = AuditEvent.objects.filter(action="sso.configured").latest("created_at")
    assert event.changes["client_id"] == ["canopy", "rotated"] and "s3cret-value" not in str(event.changes)


def test_the_sign_in_flow_reads_the_client_secret_through_the_service(world):
    sso = configure(world)
    assert services.client_secret_of(sso) == "s3cret-value"
    assert "s3cret-value" not in sso.client_secret_ciphertext
