"""The three parts of identity together, through their real paths: an SSO sign-in at the real test IdP still asks a
user with a second factor for a code (SSO never skips 2FA), an enforcing tenant with a 2FA subtree needs both, and
a break-glass code does not skip the second factor either."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from access import fences
from access.models import Role
from identity import services as sso_services
from tests.identity.idp import make_idp  # noqa: F401 - the fixture
from tests.identity.sso_world import client_of, configure, person, sign_in
from tests.twofactor.helpers import code_of, enrolled, require_2fa

User = get_user_model()
ACME = "canopy-acme"


@pytest.fixture(autouse=True)
def _loopback_idp(settings: Any) -> None:
    settings.SSO_ALLOW_PRIVATE_NETWORK = True


@pytest.fixture
def idp(make_idp):  # noqa: F811
    return make_idp(clients=[client_of(ACME)], users=[person("sub-ann", "ann", "ann@acme.test", ["engineering"])])


def _context(client: Any) -> fences.AuthContext:
    return fences.AuthContext.from_session(client.session.get(fences.SESSION_KEY))


def test_an_sso_sign_in_of_a_user_with_a_device_ends_at_the_code_step_and_needs_both_to_pass_both_fences(
    world, client, idp
):
    sso = configure(world.acme, idp, client_id=ACME, domain="acme.test", default_role=Role.objects.get(key="admin"))
    sign_in(client, idp, "ann", email="ann@acme.test")  # the first sign-in provisions ann (Admin at the root)
    ann = User.objects.get(email="ann@acme.test")
    device, _ = enrolled(ann)
    client.logout()
    # The tenant now enforces SSO and EMEA requires a second factor (no grace).
    sso.tested_at = sso.changed_at
    sso.save(update_fields=["tested_at"])
    sso_services.set_enforced(actor=world.tenant_admin, tenant=world.acme, enforced=True)
    require_2fa(world.emea)

    answer = sign_in(client, idp, "ann", email="ann@acme.test", next_url=f"/o/{world.emea.pk}/")
    assert answer.status_code == 302 and answer["Location"] == "/account/two-factor/verify/"
    assert "_auth_user_id" not in client.session  # no session before the code
    assert client.get(f"/o/{world.marketing.pk}/").status_code == 302  # to the log-in page

    answer = client.post("/account/two-factor/verify/", {"code": code_of(device)})
    assert answer.status_code == 302 and answer["Location"] == f"/o/{world.emea.pk}/"
    assert _context(client) == fences.AuthContext("sso", frozenset({world.acme.pk}), True)
    assert client.get(f"/o/{world.emea.pk}/").status_code == 200
    assert client.get(f"/api/v1/orgs/{world.campaigns.pk}").status_code == 200


def test_a_password_session_of_the_same_person_passes_neither_fence(world, client, idp):
    configure(world.acme, idp, client_id=ACME, domain="acme.test", default_role=Role.objects.get(key="admin"))
    sign_in(client, idp, "ann", email="ann@acme.test")
    ann = User.objects.get(email="ann@acme.test")
    ann.set_password("a-long-password-2026")
    ann.save()
    sso = ann.external_identities.get().tenant.sso
    sso.tested_at = sso.changed_at
    sso.save(update_fields=["tested_at"])
    sso_services.set_enforced(actor=world.tenant_admin, tenant=world.acme, enforced=True)
    client.logout()
    client.force_login(ann)  # a password session
    answer = client.get(f"/o/{world.marketing.pk}/")
    assert answer.status_code == 302 and answer["Location"].startswith("/sso/required/")
    assert client.get(f"/api/v1/orgs/{world.marketing.pk}").json()["code"] == "sso_required"


def test_a_break_glass_code_does_not_skip_the_second_factor(world, client):
    from tests.factories import PASSWORD

    alice = world.tenant_admin
    device, _ = enrolled(alice)
    codes = sso_services.regenerate_recovery_codes(actor=alice, tenant=world.acme)
    answer = client.post("/login/recovery/", {"username": alice.username, "password": PASSWORD, "code": codes[0]})
    assert answer.status_code == 302 and answer["Location"] == "/account/two-factor/verify/"
    assert "_auth_user_id" not in client.session
    assert client.post("/account/two-factor/verify/", {"code": code_of(device)}).status_code == 302
    assert _context(client) == fences.AuthContext("recovery", frozenset({world.acme.pk}), True)
    # The code is spent: the same one again opens nothing.
    client.logout()
    again = client.post("/login/recovery/", {"username": alice.username, "password": PASSWORD, "code": codes[0]})
    assert again.status_code == 400 and "_auth_user_id" not in client.session
