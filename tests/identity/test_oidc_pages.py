"""The sign-in pages around the IdP: the log-in page's discovery (which must reveal nothing), the two-step password
log-in with its lock-out, the tenant administrator's test sign-in and the break-glass recovery sign-in."""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access import fences
from access.models import AuditEvent
from identity import signin
from identity.models import Domain, ExternalIdentity, RecoveryCode, TenantSSO
from tests.factories import PASSWORD, UserFactory, add_to_tenant
from tests.identity.idp import callback_path, make_idp  # noqa: F401 - the fixture
from tests.identity.sso_world import client_of, configure, person

ACME = "canopy-acme"


@pytest.fixture(autouse=True)
def _loopback_idp(settings: Any) -> None:
    settings.SSO_ALLOW_PRIVATE_NETWORK = True


@pytest.fixture
def acme_idp(make_idp):  # noqa: F811
    return make_idp(
        clients=[client_of(ACME)],
        users=[
            person("sub-alice", "alice", "alice@example.com", ["admins"]),
            person("sub-ann", "ann", "ann@acme.test", []),
        ],
    )


def _shape(response: Any, address: str) -> tuple[int, str]:
    """The response with what legitimately differs taken out: the address typed and the CSRF token."""
    html = response.content.decode().replace(address, "ADDRESS")
    return response.status_code, re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", html)


# -- sign-in discovery ----------------------------------------------------------------------------------------------


def test_the_log_in_page_asks_for_the_address_first(db, client):
    response = client.get("/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="email"' in html and 'name="password"' not in html
    assert "?password=1" in html  # and a way to the password form for those who have one


def test_discovery_answers_unknown_unverified_and_ssoless_addresses_and_unknown_users_alike(world, acme_idp):
    configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    # Globex claimed a domain it has not verified, and has SSO: still nothing to see.
    configure(world.globex, acme_idp, client_id=ACME, domain="globex.test", verified=False)
    # A verified domain of a tenant without SSO.
    tenant_without = world.acme.__class__.objects.create(name="Initech")
    Domain.objects.create(tenant=tenant_without, domain="initech.test", txt_token="x" * 32, verified_at=timezone.now())
    shapes, queries = set(), set()
    for address in ("nobody@unknown.test", "ann@globex.test", "ann@initech.test", "no-such-user", "bob"):
        for ask in ("get", "post"):
            client = Client()
            with CaptureQueriesContext(connection) as captured:
                if ask == "get":
                    response = client.get("/login/", {"email": address})
                else:
                    response = client.post("/login/", {"email": address})
            shapes.add(_shape(response, address))
            queries.add(len(captured))
            assert response.status_code == 200
            assert 'name="password"' in response.content.decode()
            assert f'value="{address}"' in response.content.decode()  # the username field, filled in
    assert len(shapes) == 1, "the page differs between kinds of addresses"
    assert len(queries) == 1, "the page costs more queries for some addresses"
    # While the claimed, verified domain of a tenant with SSO leaves for its IdP.
    assert Client().get("/login/", {"email": "ann@acme.test"}).status_code == 302


def test_an_empty_address_is_asked_again(db, client):
    response = client.post("/login/", {"email": "  "})
    assert response.status_code == 400 and 'name="email"' in response.content.decode()


def test_the_two_step_password_log_in_works_and_still_locks_out(world, client, settings):
    settings.AXES_FAILURE_LIMIT = 2
    page = client.post("/login/", {"email": "alice"})
    assert 'name="password"' in page.content.decode()
    assert client.post("/login/", {"username": "alice", "password": "nope"}).status_code == 200
    client.post("/login/", {"username": "alice", "password": "nope"})
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429 and "_auth_user_id" not in client.session


def test_a_password_log_in_is_a_password_session(world, client):
    response = client.post("/login/", {"username": "alice", "password": PASSWORD, "next": "/o/x/"})
    assert response.status_code == 302 and response["Location"] == "/o/x/"
    assert fences.AuthContext.from_session(client.session[fences.SESSION_KEY]).method == "password"
    # Signed in already: the page sends on.
    assert client.get("/login/", {"email": "ann@acme.test"}).status_code == 302


def test_the_password_link_skips_discovery_for_members_of_a_tenant_that_allows_passwords(world, client, acme_idp):
    configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    response = client.get("/login/", {"password": "1"})
    assert response.status_code == 200 and 'name="password"' in response.content.decode()


# -- the test sign-in -----------------------------------------------------------------------------------------------


def _test_sign_in(client: Any, idp: Any, tenant: Any, username: str = "alice") -> Any:
    leave = client.get("/login/sso/test/", {"tenant": str(tenant.pk)})
    assert leave.status_code == 302 and leave["Location"].startswith(idp.url)
    return client.get(callback_path(idp.log_in(leave["Location"], username)))


def test_a_tenant_admin_tests_the_sign_in_without_their_session_changing(world, client, acme_idp):
    sso = configure(world.acme, acme_idp, client_id=ACME)
    client.force_login(world.tenant_admin)
    client.get("/")  # the session as a password log-in leaves it
    before = dict(client.session.items())
    response = _test_sign_in(client, acme_idp, world.acme, username="ann")  # any person of the IdP will do
    assert response.status_code == 200 and b"The test sign-in worked" in response.content
    sso.refresh_from_db()
    assert sso.tested_by == world.tenant_admin and sso.tested_since_change
    assert AuditEvent.objects.filter(action="sso.tested", tenant=world.acme, actor=world.tenant_admin).exists()
    assert client.session["_auth_user_id"] == before["_auth_user_id"]
    assert client.session[fences.SESSION_KEY] == before[fences.SESSION_KEY]  # still a password session
    assert not ExternalIdentity.objects.exists()  # a test provisions nobody


def test_a_test_of_a_configuration_changed_meanwhile_does_not_count(world, client, acme_idp):
    sso = configure(world.acme, acme_idp, client_id=ACME)
    client.force_login(world.tenant_admin)
    leave = client.get("/login/sso/test/", {"tenant": str(world.acme.pk)})
    back = acme_idp.log_in(leave["Location"], "ann")
    TenantSSO.objects.filter(pk=sso.pk).update(changed_at=timezone.now())
    response = client.get(callback_path(back))
    assert response.status_code == 400 and b"changed during the test" in response.content
    sso.refresh_from_db()
    assert sso.tested_at is None


@pytest.mark.parametrize("who", ["member", "other_admin", "outsider"])
def test_only_the_tenants_administrators_can_start_a_test(world, client, acme_idp, who):
    configure(world.acme, acme_idp, client_id=ACME)
    client.force_login(getattr(world, who))
    assert client.get("/login/sso/test/", {"tenant": str(world.acme.pk)}).status_code == 404
    assert not client.session.get(signin.ATTEMPTS_KEY)


def test_a_test_sign_in_needs_a_signed_in_user_and_a_tenant_with_sso(world, client, acme_idp):
    response = client.get("/login/sso/test/", {"tenant": str(world.acme.pk)})
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    client.force_login(world.tenant_admin)
    assert client.get("/login/sso/test/", {"tenant": str(world.acme.pk)}).status_code == 404  # no SSO yet
    assert client.get("/login/sso/test/", {"tenant": "x"}).status_code == 404


def test_another_admins_test_callback_in_my_session_does_not_count(world, acme_idp):
    sso = configure(world.acme, acme_idp, client_id=ACME)
    admin = Client()
    admin.force_login(world.tenant_admin)
    back = acme_idp.log_in(admin.get("/login/sso/test/", {"tenant": str(world.acme.pk)})["Location"], "ann")
    bob = Client()
    bob.force_login(world.member)
    assert bob.get(callback_path(back)).status_code == 400  # not bob's attempt
    sso.refresh_from_db()
    assert sso.tested_at is None


# -- break-glass recovery -------------------------------------------------------------------------------------------


def _codes(tenant: Any, *codes: str) -> None:
    for code in codes:
        normalized = code.replace("-", "").lower()
        RecoveryCode.objects.create(tenant=tenant, code_hash=hashlib.sha256(normalized.encode()).hexdigest())


def test_a_tenant_admin_signs_in_with_a_recovery_code_once(world, client):
    _codes(world.acme, "abcde-fghij-klmno")
    assert client.get("/login/recovery/").status_code == 200
    data = {"username": "alice", "password": PASSWORD, "code": "ABCDE-FGHIJ-KLMNO"}
    response = client.post("/login/recovery/", data)
    assert response.status_code == 302
    context = fences.AuthContext.from_session(client.session[fences.SESSION_KEY])
    assert context.method == "recovery" and context.sso_tenants == {world.acme.pk}
    used = RecoveryCode.objects.get()
    assert used.used_by == world.tenant_admin and used.used_at is not None
    assert AuditEvent.objects.filter(action="sso.recovery_used", tenant=world.acme).count() == 1
    again = Client().post("/login/recovery/", data)
    assert again.status_code == 400 and "_auth_user_id" not in again.wsgi_request.session


@pytest.mark.parametrize(
    "case", ["wrong-password", "not-an-admin", "admin-of-another-tenant", "wrong-code", "unknown-user"]
)
def test_a_refused_recovery_looks_the_same_and_spends_no_code(world, client, case):
    _codes(world.acme, "abcde-fghij-klmno")
    add_to_tenant(UserFactory(username="dave"), world.acme)
    data = {"username": "alice", "password": PASSWORD, "code": "abcde-fghij-klmno"}
    data |= {
        "wrong-password": {"password": "nope"},
        "not-an-admin": {"username": "dave"},
        "admin-of-another-tenant": {"username": world.other_admin.username},
        "wrong-code": {"code": "zzzzz-zzzzz-zzzzz"},
        "unknown-user": {"username": "nobody"},
    }[case]
    response = client.post("/login/recovery/", data)
    assert response.status_code == 400 and signin.RECOVERY_REFUSED in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert RecoveryCode.objects.get().used_at is None
    assert not AuditEvent.objects.filter(action="sso.recovery_used").exists()


def test_guessing_recovery_codes_with_a_right_password_locks_out(world, client, settings):
    settings.AXES_FAILURE_LIMIT = 2
    _codes(world.acme, "abcde-fghij-klmno")
    for _ in range(2):
        client.post("/login/recovery/", {"username": "alice", "password": PASSWORD, "code": "wrong"})
    response = client.post("/login/recovery/", {"username": "alice", "password": PASSWORD, "code": "abcde-fghij-klmno"})
    assert response.status_code == 429
    assert RecoveryCode.objects.get().used_at is None


def test_the_callback_url_the_idp_sends_back_to_is_the_registered_one(world, client, acme_idp):
    configure(world.acme, acme_idp, client_id=ACME, domain="acme.test")
    leave = client.get("/login/", {"email": "ann@acme.test"})
    back = urlsplit(acme_idp.log_in(leave["Location"], "ann"))
    assert back.path == "/login/sso/callback/"
    assert parse_qs(back.query)["iss"] == [acme_idp.issuer]  # RFC 9207, checked by the callback
