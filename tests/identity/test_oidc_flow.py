"""Signing in through a tenant's IdP, end to end against a real OpenID Provider (scripts/test_idp, oidc-provider):
discovery on the log-in page, the authorization request with state/nonce/PKCE S256, the IdP's own log-in form, the
callback, just-in-time provisioning and group mapping — and the attacks: a wrong or replayed state, a replayed code,
another client's token, a key the IdP rotated, the same subject at two IdPs, an e-mail match across tenants."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from django.contrib.auth import get_user_model
from django.utils import timezone

from access import fences
from access.models import AuditEvent, OrgUserGrant, TenantMembership
from access.services.grants import grant_role
from config.actors import SYSTEM
from identity import oidc, signin
from identity.models import Domain, ExternalIdentity, SyncedGrant, TenantSSO
from tests.factories import UserFactory, add_to_tenant
from tests.identity.idp import callback_path, make_idp  # noqa: F401 - the fixture
from tests.identity.sso_world import client_of, configure, person, sign_in

User = get_user_model()
ACME = "canopy-acme"


@pytest.fixture(autouse=True)
def _loopback_idp(settings: Any) -> None:
    settings.SSO_ALLOW_PRIVATE_NETWORK = True  # the test IdP listens on 127.0.0.1


def roles_of(user: Any, tenant: Any) -> dict[str, str]:
    grants = OrgUserGrant.objects.filter(user=user, content_object__tenant=tenant).select_related(
        "role", "content_object"
    )
    return {g.content_object.name: g.role.key for g in grants}


@pytest.fixture
def acme_idp(make_idp):  # noqa: F811
    return make_idp(
        clients=[client_of(ACME), client_of("canopy-other")],
        users=[
            person("sub-ann", "ann", "ann@acme.test", ["engineering", "platform-admins"]),
            person("sub-sam", "sam", "sam@acme.test", ["engineering"]),
        ],
    )


def test_the_log_in_page_sends_an_sso_address_to_the_idp_with_state_nonce_and_pkce_s256(world, client, acme_idp):
    configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    response = client.get("/login/", {"email": "Ann@ACME.test", "next": "/o/x/"})
    assert response.status_code == 302
    url = urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{acme_idp.url}/auth"
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    attempt = client.session[signin.ATTEMPTS_KEY][params["state"]]
    assert params["client_id"] == ACME and params["response_type"] == "code"
    assert params["redirect_uri"] == oidc.redirect_uri()
    assert params["code_challenge_method"] == "S256"
    assert params["code_challenge"] == create_s256_code_challenge(attempt["verifier"])
    assert params["nonce"] == attempt["nonce"] and len(params["state"]) >= 32
    assert params["scope"].split()[0] == "openid"
    # A second attempt has fresh secrets.
    again = parse_qs(urlsplit(client.get("/login/", {"email": "ann@acme.test"})["Location"]).query)
    assert again["state"][0] != params["state"] and again["nonce"][0] != params["nonce"]


@pytest.mark.parametrize("claims_in_id_token", [False, True], ids=["claims-from-userinfo", "claims-in-id-token"])
def test_a_first_sign_in_creates_the_account_the_membership_and_the_highest_mapped_role(
    world,
    client,
    make_idp,  # noqa: F811
    claims_in_id_token,
):
    idp = make_idp(
        clients=[client_of(ACME)],
        users=[person("sub-ann", "ann", "ann@acme.test", ["engineering", "platform-admins"])],
        claims_in_id_token=claims_in_id_token,
    )
    configure(
        world.acme, idp, client_id=ACME, domain="acme.test",
        groups=[
            ("engineering", "integrator", world.marketing),
            ("platform-admins", "admin", world.marketing),  # the same org: the highest role wins
            ("engineering", "guest", world.logistics),
            ("sales", "admin", world.root),  # ann is not in sales
        ],
    )  # fmt: skip
    response = sign_in(client, idp, "ann", email="ann@acme.test")
    assert response.status_code == 302 and response["Location"] == "/"
    user = User.objects.get(email="ann@acme.test")
    assert user.username == "ann" and not user.has_usable_password() and user.email_verified
    assert TenantMembership.objects.filter(tenant=world.acme, user=user, is_admin=False).exists()
    assert roles_of(user, world.acme) == {"Marketing": "admin", "Logistics": "guest"}
    identity = ExternalIdentity.objects.get(user=user)
    assert (identity.tenant, identity.issuer, identity.subject) == (world.acme, idp.issuer, "sub-ann")
    assert identity.groups == ["engineering", "platform-admins"]
    actions = set(AuditEvent.objects.filter(tenant=world.acme).values_list("action", flat=True))
    assert {"sso.provisioned", "sso.signin", "sso.roles_synced"} <= actions
    # The session is an SSO session of this tenant: what the tenant's enforcement asks for.
    assert client.session["_auth_user_id"] == str(user.pk)
    context = fences.AuthContext.from_session(client.session[fences.SESSION_KEY])
    assert context.method == "sso" and context.sso_tenants == {world.acme.pk}
    assert client.get(f"/o/{world.marketing.pk}/").status_code == 200


def test_a_new_member_no_group_maps_gets_the_default_role_at_the_root(world, client, acme_idp):
    from access.models import Role

    configure(world.acme, acme_idp, client_id=ACME, domain="acme.test", default_role=Role.objects.get(key="guest"))
    sign_in(client, acme_idp, "sam", email="sam@acme.test")
    assert roles_of(User.objects.get(username="sam"), world.acme) == {"Acme": "guest"}


def test_group_sync_adds_and_removes_only_what_it_gave_and_a_missing_groups_claim_removes_nothing(
    world, client, acme_idp
):
    configure(
        world.acme, acme_idp, client_id=ACME, domain="acme.test", remove_unmapped_roles=True,
        groups=[("platform-admins", "admin", world.marketing), ("engineering", "integrator", world.emea)],
    )  # fmt: skip
    sign_in(client, acme_idp, "ann", email="ann@acme.test")
    ann = User.objects.get(username="ann")
    grant_role(actor=SYSTEM, target=world.logistics, role="guest", user=ann)  # by hand: never sync's to remove
    assert roles_of(ann, world.acme) == {"Marketing": "admin", "EMEA": "integrator", "Logistics": "guest"}

    # No groups claim at all: nothing is removed (the IdP may simply not have sent it).
    acme_idp.set_users([person("sub-ann", "ann", "ann@acme.test", None)])
    client.logout()
    sign_in(client, acme_idp, "ann", email="ann@acme.test")
    assert roles_of(ann, world.acme) == {"Marketing": "admin", "EMEA": "integrator", "Logistics": "guest"}

    # The groups claim, without platform-admins: sync takes back the admin role it gave, and only that.
    acme_idp.set_users([person("sub-ann", "ann", "ann@acme.test", ["engineering"])])
    client.logout()
    sign_in(client, acme_idp, "ann", email="ann@acme.test")
    assert roles_of(ann, world.acme) == {"EMEA": "integrator", "Logistics": "guest"}
    assert SyncedGrant.objects.filter(identity__user=ann).count() == 1
    synced = AuditEvent.objects.filter(action="sso.roles_synced").latest("created_at")
    assert synced.changes["removed"] == ["admin at Marketing"]


def test_without_removal_group_sync_only_adds(world, client, acme_idp):
    configure(
        world.acme, acme_idp, client_id=ACME, domain="acme.test", groups=[("platform-admins", "admin", world.marketing)]
    )
    sign_in(client, acme_idp, "ann", email="ann@acme.test")
    acme_idp.set_users([person("sub-ann", "ann", "ann@acme.test", [])])
    client.logout()
    sign_in(client, acme_idp, "ann", email="ann@acme.test")
    assert roles_of(User.objects.get(username="ann"), world.acme) == {"Marketing": "admin"}


def test_a_mapped_role_raises_a_lower_hand_given_one_and_removal_restores_it(world, client, acme_idp):
    bob = world.member
    bob.email = "ann@acme.test"
    bob.save()
    grant_role(actor=SYSTEM, target=world.marketing, role="guest", user=bob)
    configure(
        world.acme, acme_idp, client_id=ACME, domain="acme.test", remove_unmapped_roles=True,
        groups=[("platform-admins", "admin", world.marketing)],
    )  # fmt: skip
    sign_in(client, acme_idp, "ann", email="ann@acme.test")  # linked: bob is a verified member of Acme
    assert roles_of(bob, world.acme) == {"Marketing": "admin"}
    acme_idp.set_users([person("sub-ann", "ann", "ann@acme.test", [])])
    client.logout()
    sign_in(client, acme_idp, "ann", email="ann@acme.test")
    assert roles_of(bob, world.acme) == {"Marketing": "guest"}


# -- the attacks ----------------------------------------------------------------------------------------------------


def _leave_and_log_in(client: Any, idp: Any, username: str, email: str) -> str:
    return idp.log_in(client.get("/login/", {"email": email})["Location"], username)


def test_a_wrong_missing_or_foreign_state_is_refused_and_nothing_is_created(world, client, acme_idp):
    configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    back = _leave_and_log_in(client, acme_idp, "ann", "ann@acme.test")
    parts = urlsplit(back)
    code = parse_qs(parts.query)["code"][0]
    for query in (f"code={code}&state=forged", f"code={code}"):
        response = client.get(f"{parts.path}?{query}")
        assert response.status_code == 400 and b"not valid any more" in response.content
    # The attacker's own callback URL, opened in the victim's browser (log-in CSRF): not this session's attempt.
    from django.test import Client

    victim = Client()
    assert victim.get(callback_path(back)).status_code == 400
    assert "_auth_user_id" not in victim.session
    assert not User.objects.filter(email="ann@acme.test").exists()
    assert not ExternalIdentity.objects.exists()


def test_a_replayed_callback_and_a_replayed_code_are_refused(world, client, acme_idp):
    sso = configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    back = _leave_and_log_in(client, acme_idp, "ann", "ann@acme.test")
    assert client.get(callback_path(back)).status_code == 302
    client.logout()
    assert client.get(callback_path(back)).status_code == 400  # the state was used
    # Even with a fresh state of its own, the code itself is spent at the IdP.
    code = parse_qs(urlsplit(back).query)["code"][0]
    with pytest.raises(oidc.SignInFailed):
        oidc.exchange_code(sso, oidc.discover(sso.issuer), code=code, verifier="x" * 64)
    assert ExternalIdentity.objects.count() == 1


def _tokens_for(idp: Any, client_id: str, username: str) -> dict[str, Any]:
    """An honest token response of the IdP for another client (its own code, verifier and secret)."""
    attempt = oidc.new_attempt()
    provider = oidc.discover(idp.issuer)
    sso = TenantSSO(issuer=idp.issuer, client_id=client_id, scopes="openid email")
    back = idp.log_in(oidc.authorization_url(sso, provider, attempt), username)
    code = parse_qs(urlsplit(back).query)["code"][0]
    response = httpx.post(
        provider.token_endpoint,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": oidc.redirect_uri(),
              "code_verifier": attempt.verifier},
        auth=(client_id, f"{client_id}-secret"),
    )  # fmt: skip
    assert response.status_code == 200
    return response.json() | {"nonce": attempt.nonce}


def test_a_token_issued_to_another_client_of_the_idp_is_refused(world, client, acme_idp, monkeypatch):
    configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    stolen = _tokens_for(acme_idp, "canopy-other", "ann")
    provider = oidc.discover(acme_idp.issuer)
    with pytest.raises(oidc.SignInFailed) as refused:
        oidc.verify_id_token(stolen["id_token"], provider=provider, client_id=ACME, nonce=stolen["nonce"])
    assert refused.value.reason.startswith("id_token: aud")
    # End to end: the callback that receives it (say, from a compromised token endpoint) signs nobody in.
    back = _leave_and_log_in(client, acme_idp, "ann", "ann@acme.test")
    monkeypatch.setattr(oidc, "exchange_code", lambda *a, **k: stolen)
    response = client.get(callback_path(back))
    assert response.status_code == 400 and "_auth_user_id" not in client.session
    assert not ExternalIdentity.objects.exists()


def test_a_key_the_idp_rotated_is_accepted_after_one_jwks_refetch(world, client, acme_idp, monkeypatch):
    configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    assert sign_in(client, acme_idp, "ann", email="ann@acme.test").status_code == 302  # JWKS now cached
    old_kid = acme_idp.kid
    acme_idp.restart(rotate=True)
    assert acme_idp.kid != old_kid
    fetched: list[str] = []
    real = oidc._get_json
    monkeypatch.setattr(oidc, "_get_json", lambda url, what, *a: fetched.append(what) or real(url, what, *a))
    client.logout()
    assert sign_in(client, acme_idp, "sam", email="sam@acme.test").status_code == 302
    assert fetched.count("jwks") == 1  # the cached set lacked the new kid: fetched again, once
    assert User.objects.filter(username="sam").exists()


def test_the_same_subject_at_two_idps_is_two_accounts_and_an_email_never_links_across_tenants(world, make_idp):  # noqa: F811
    from django.test import Client

    acme_idp = make_idp(clients=[client_of(ACME)], users=[person("same-sub", "ann", "ann@acme.test", [])])
    globex_idp = make_idp(
        clients=[client_of("canopy-globex")],
        users=[
            person("same-sub", "ann", "ann@globex.test", []),
            person("sub-gina", "gina", world.other_admin.email, []),  # Globex's own admin's address
        ],
    )
    configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    configure(world.globex, globex_idp, client_id="canopy-globex", domain="globex.test")
    sign_in(Client(), acme_idp, "ann", email="ann@acme.test")
    sign_in(Client(), globex_idp, "ann", email="ann@globex.test")
    identities = ExternalIdentity.objects.filter(subject="same-sub").select_related("user")
    assert len(identities) == 2 and len({i.user_id for i in identities}) == 2
    assert {i.user.email for i in identities} == {"ann@acme.test", "ann@globex.test"}
    for identity in identities:
        assert list(TenantMembership.objects.filter(user=identity.user).values_list("tenant", flat=True)) == [
            identity.tenant_id
        ]

    # Acme's IdP asserting Globex's admin's (verified) address links nothing and creates nothing.
    acme_idp.set_users([person("sub-evil", "evil", world.other_admin.email, [])])
    browser = Client()
    response = sign_in(browser, acme_idp, "evil", tenant=world.acme)
    assert response.status_code == 400 and b"cannot be linked" in response.content
    assert "_auth_user_id" not in browser.session
    assert not TenantMembership.objects.filter(tenant=world.acme, user=world.other_admin).exists()
    assert User.objects.filter(email__iexact=world.other_admin.email).count() == 1
    assert not ExternalIdentity.objects.filter(subject="sub-evil").exists()


def test_an_existing_member_is_linked_only_with_an_address_verified_on_both_sides_in_a_claimed_domain(
    world,
    make_idp,  # noqa: F811
):
    from django.test import Client

    bob = world.member  # bob@example.com, verified, a member of Acme
    idp = make_idp(clients=[client_of(ACME)], users=[person("sub-bob", "bob", bob.email, [], verified=False)])
    configure(world.acme, idp, client_id=ACME)
    idp.set_users([person("sub-bob", "bob", bob.email, [])])
    assert sign_in(Client(), idp, "bob", tenant=world.acme).status_code == 400  # example.com is not Acme's domain
    Domain.objects.create(tenant=world.acme, domain="EXAMPLE.com", txt_token="t" * 32, verified_at=timezone.now())
    idp.set_users([person("sub-bob", "bob", bob.email, [], verified=False)])
    assert sign_in(Client(), idp, "bob", tenant=world.acme).status_code == 400  # the IdP did not verify it
    idp.set_users([person("sub-bob", "bob", bob.email, [])])
    bob.email_verified_at = None
    bob.save()
    assert sign_in(Client(), idp, "bob", tenant=world.acme).status_code == 400  # Canopy's side is unverified
    assert not ExternalIdentity.objects.exists()
    bob.email_verified_at = timezone.now()
    bob.save()
    assert sign_in(Client(), idp, "bob", tenant=world.acme).status_code == 302
    assert ExternalIdentity.objects.get().user == bob
    assert User.objects.filter(email__iexact=bob.email).count() == 1


def test_an_address_outside_the_tenants_verified_domains_is_never_taken_as_verified(world, make_idp):  # noqa: F811
    from django.test import Client

    idp = make_idp(clients=[client_of(ACME)], users=[person("sub-zed", "zed", "zed@gmail.test", [])])
    configure(world.acme, idp, client_id=ACME, domain="acme.test")
    assert sign_in(Client(), idp, "zed", tenant=world.acme).status_code == 302
    zed = User.objects.get(username="zed")
    assert zed.email == "zed@gmail.test" and not zed.email_verified  # Acme's IdP is no authority on gmail.test
    assert TenantMembership.objects.filter(tenant=world.acme, user=zed).exists()


def test_an_outsider_with_the_same_address_elsewhere_is_not_linked(world, make_idp):  # noqa: F811
    from django.test import Client

    outsider = UserFactory(username="olga", email="olga@acme.test")  # verified, member of no tenant
    idp = make_idp(clients=[client_of(ACME)], users=[person("sub-olga", "olga", "olga@acme.test", [])])
    configure(world.acme, idp, client_id=ACME, domain="acme.test")
    assert sign_in(Client(), idp, "olga", email="olga@acme.test").status_code == 400
    assert not TenantMembership.objects.filter(user=outsider).exists()


def test_the_idp_saying_no_or_being_down_is_a_clear_failure_page_not_a_500(world, client, acme_idp):
    configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    state = parse_qs(urlsplit(client.get("/login/", {"email": "ann@acme.test"})["Location"]).query)["state"][0]
    response = client.get("/login/sso/callback/", {"state": state, "error": "access_denied"})
    assert response.status_code == 400 and b"did not sign you in" in response.content
    from django.core.cache import cache

    cache.clear()  # the discovery document is cached; make the next sign-in ask the (stopped) IdP
    acme_idp.stop()
    response = client.get("/login/", {"email": "ann@acme.test"})
    assert response.status_code == 502 and b"cannot be reached" in response.content


def test_sso_start_needs_a_tenant_with_sso_and_keeps_next_on_this_site(world, client, acme_idp):
    assert client.get("/login/sso/", {"tenant": str(world.acme.pk)}).status_code == 404
    assert client.get("/login/sso/", {"tenant": "nope"}).status_code == 404
    configure(world.acme, acme_idp, client_id=ACME)
    response = client.get("/login/sso/", {"tenant": str(world.acme.pk), "next": "https://evil.example/"})
    assert response.status_code == 302
    state = parse_qs(urlsplit(response["Location"]).query)["state"][0]
    assert client.session[signin.ATTEMPTS_KEY][state]["next"] == "/"


def test_an_idp_on_a_private_address_or_without_tls_is_refused_unless_the_platform_allows_it(
    world, client, acme_idp, settings
):
    from django.core.cache import cache

    cache.clear()
    settings.SSO_ALLOW_PRIVATE_NETWORK = False
    sso = configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    response = client.get("/login/", {"email": "ann@acme.test"})
    assert response.status_code == 502 and b"must use https" in response.content  # http: refused before any request
    assert not client.session.get(signin.ATTEMPTS_KEY)
    # https to a loopback (or any private) address: the SSRF guard refuses to connect.
    TenantSSO.objects.filter(pk=sso.pk).update(issuer=f"https://127.0.0.1:{acme_idp.port}")
    with pytest.raises(oidc.SignInFailed) as refused:
        oidc.discover(f"https://127.0.0.1:{acme_idp.port}")
    assert "BlockedAddress" in refused.value.reason
    assert client.get("/login/", {"email": "ann@acme.test"}).status_code == 502


def test_an_sso_session_keeps_the_tenants_it_already_opened(world, client, make_idp):  # noqa: F811
    acme_idp = make_idp(clients=[client_of(ACME)], users=[person("s1", "alice", world.tenant_admin.email, [])])
    globex_idp = make_idp(clients=[client_of("g")], users=[person("s2", "alice", world.tenant_admin.email, [])])
    add_to_tenant(world.tenant_admin, world.globex)
    configure(world.acme, acme_idp, client_id=ACME, domain="example.com")
    configure(world.globex, globex_idp, client_id="g")
    # Linked at Globex before (example.com is Acme's domain, so Globex's IdP could not link her by address).
    ExternalIdentity.objects.create(
        user=world.tenant_admin, tenant=world.globex, issuer=globex_idp.issuer, subject="s2"
    )
    sign_in(client, acme_idp, "alice", tenant=world.acme)
    sign_in(client, globex_idp, "alice", tenant=world.globex)
    assert client.session["_auth_user_id"] == str(world.tenant_admin.pk)
    context = fences.AuthContext.from_session(client.session[fences.SESSION_KEY])
    assert context.sso_tenants == {world.acme.pk, world.globex.pk}


def test_an_answer_naming_another_issuer_is_refused_before_the_code_is_spent(world, client, acme_idp, monkeypatch):
    configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    back = urlsplit(_leave_and_log_in(client, acme_idp, "ann", "ann@acme.test"))
    spent: list[str] = []
    monkeypatch.setattr(oidc, "exchange_code", lambda *a, **k: spent.append("x") or {})
    query = back.query.replace("iss=", "iss=https%3A%2F%2Fevil.example%2F&was=")
    response = client.get(f"{back.path}?{query}")
    assert response.status_code == 400 and b"another identity provider" in response.content
    assert spent == [] and not ExternalIdentity.objects.exists()


def test_userinfo_about_another_subject_is_refused(world, client, acme_idp, monkeypatch):
    configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    real = oidc._get_json

    def lying_userinfo(url: str, what: str, *args: Any) -> Any:
        answer = real(url, what, *args)
        return answer | {"sub": "someone-else"} if what == "userinfo" else answer

    monkeypatch.setattr(oidc, "_get_json", lying_userinfo)
    response = sign_in(client, acme_idp, "ann", email="ann@acme.test")
    assert response.status_code == 400 and not ExternalIdentity.objects.exists()


class SsoRule:
    """A stand-in for sso-core's fence provider: the tenant closes to sessions not signed in through its IdP."""

    name = "test-sso-rule"

    def __init__(self, tenant_id: Any):
        self.tenant_id = tenant_id

    def enforcing(self, tenant_ids: Any) -> set[Any]:
        return {t for t in tenant_ids if t == self.tenant_id}

    def fences(self, user: Any, context: fences.AuthContext, tenant_id: Any) -> list[fences.Fence]:
        if tenant_id in context.sso_tenants:
            return []
        return [fences.Fence("sso_required", "Sign in through your company.", tenant_id)]


def test_an_enforcing_tenant_opens_to_the_sso_session_and_not_to_the_password_one(world, make_idp):  # noqa: F811
    from django.core.cache import cache
    from django.test import Client

    idp = make_idp(clients=[client_of(ACME)], users=[person("s-alice", "alice", world.tenant_admin.email, [])])
    configure(world.acme, idp, client_id=ACME, domain="example.com")
    rule = fences.register(SsoRule(world.acme.pk))
    cache.clear()
    try:
        password = Client()
        password.post("/login/", {"username": "alice", "password": "correct-horse-battery-staple"})
        refused = password.get(f"/o/{world.marketing.pk}/")
        # The fence's page (sso-core's sso-required, once merged) or the plain 403: never the org page.
        assert refused.status_code == 403 or (refused.status_code == 302 and "sso" in refused["Location"])
        sso = Client()
        assert sign_in(sso, idp, "alice", email=world.tenant_admin.email).status_code == 302
        assert sso.get(f"/o/{world.marketing.pk}/").status_code == 200
    finally:
        fences._providers.remove(rule)
        cache.clear()


def test_a_mapping_to_a_role_unusable_at_its_org_is_a_clear_refusal_and_creates_nothing(world, client, acme_idp):
    from access.models import Role

    ops = Role.objects.create(key="ops", name="Ops", tenant=world.acme, org=world.logistics, custom_capabilities=[])
    sso = configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    sso.group_roles.create(group="engineering", role=ops, org=world.marketing)  # ops exists under Logistics only
    response = sign_in(client, acme_idp, "ann", email="ann@acme.test")
    assert response.status_code == 400 and b"roles could not be set up" in response.content
    assert not User.objects.filter(username="ann").exists() and not ExternalIdentity.objects.exists()


def test_an_attempt_older_than_ten_minutes_is_refused(world, client, acme_idp):
    configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    back = _leave_and_log_in(client, acme_idp, "ann", "ann@acme.test")
    session = client.session
    attempts = session[signin.ATTEMPTS_KEY]
    for attempt in attempts.values():
        attempt["created"] -= signin.ATTEMPT_TTL + 1
    session[signin.ATTEMPTS_KEY] = attempts
    session.save()
    response = client.get(callback_path(back))
    assert response.status_code == 400 and not ExternalIdentity.objects.exists()


def test_a_session_holds_a_few_open_attempts_at_most(world, client, acme_idp):
    configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    for _ in range(signin.MAX_ATTEMPTS + 3):
        client.get("/login/", {"email": "ann@acme.test"})
    assert len(client.session[signin.ATTEMPTS_KEY]) == signin.MAX_ATTEMPTS


def test_a_deactivated_account_or_a_removed_configuration_signs_nobody_in(world, client, acme_idp):
    sso = configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    sign_in(client, acme_idp, "ann", email="ann@acme.test")
    User.objects.filter(username="ann").update(is_active=False)
    client.logout()
    response = sign_in(client, acme_idp, "ann", email="ann@acme.test")
    assert response.status_code == 400 and b"deactivated" in response.content
    assert "_auth_user_id" not in client.session
    back = _leave_and_log_in(client, acme_idp, "sam", "sam@acme.test")
    TenantSSO.objects.filter(pk=sso.pk).delete()
    response = client.get(callback_path(back))
    assert response.status_code == 400 and b"not configured" in response.content
    assert not User.objects.filter(username="sam").exists()


def test_an_idp_holding_the_client_to_the_form_post_method_is_answered_with_it(world, client, acme_idp, monkeypatch):
    configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    methods: list[str] = []
    real = oidc._token_request

    def strict_idp(*args: Any, **kwargs: Any) -> httpx.Response:
        # As Okta answers a client registered for client_secret_post that authenticates in HTTP Basic.
        methods.append(kwargs["method"])
        if kwargs["method"] == "client_secret_basic":
            return httpx.Response(401, json={"error": "invalid_client"})
        return real(*args, **kwargs)

    monkeypatch.setattr(oidc, "_token_request", strict_idp)
    assert sign_in(client, acme_idp, "ann", email="ann@acme.test", next_url="/o/x/")["Location"] == "/o/x/"
    assert methods == ["client_secret_basic", "client_secret_post"]
    assert ExternalIdentity.objects.filter(subject="sub-ann").exists()
    # Any other refusal is not retried: the code is spent once.
    methods.clear()
    monkeypatch.setattr(
        oidc,
        "_token_request",
        lambda *a, **k: methods.append(k["method"]) or httpx.Response(400, json={"error": "invalid_grant"}),
    )
    client.logout()
    assert sign_in(client, acme_idp, "ann", email="ann@acme.test").status_code == 400
    assert methods == ["client_secret_basic"]


def test_a_lower_mapping_never_takes_a_member_below_the_role_they_held_by_hand(world, client, acme_idp):
    bob = world.member
    bob.email = "ann@acme.test"
    bob.save()
    grant_role(actor=SYSTEM, target=world.marketing, role="integrator", user=bob)
    configure(
        world.acme, acme_idp, client_id=ACME, domain="acme.test", remove_unmapped_roles=True,
        groups=[("platform-admins", "admin", world.marketing), ("engineering", "guest", world.marketing)],
    )  # fmt: skip
    sign_in(client, acme_idp, "ann", email="ann@acme.test")  # engineering + platform-admins: admin wins
    assert roles_of(bob, world.acme) == {"Marketing": "admin"}
    acme_idp.set_users([person("sub-ann", "ann", "ann@acme.test", ["engineering"])])  # guest only, now
    client.logout()
    sign_in(client, acme_idp, "ann", email="ann@acme.test")
    assert roles_of(bob, world.acme) == {"Marketing": "integrator"}  # back to bob's own role, not guest
    assert not SyncedGrant.objects.exists()  # the role is the administrator's again
    acme_idp.set_users([person("sub-ann", "ann", "ann@acme.test", [])])
    client.logout()
    sign_in(client, acme_idp, "ann", email="ann@acme.test")
    assert roles_of(bob, world.acme) == {"Marketing": "integrator"}
