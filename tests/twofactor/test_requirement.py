"""The ``require_2fa`` setting and its fence: inherited, overridden and locked like every setting; past the grace
(counted from the setting row's ``updated_at``, to the second) a session or token without a verified second factor
is stopped in that subtree only (403 ``2fa_required`` to those whose roles reach it, lists leave it out), on every
path by which a user joins; the org API shows the effective requirement and where it comes from."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from access import fences, policy
from access.services.grants import grant_role
from access.services.invitations import accept_invitation, invite
from access.services.teams import add_team_member, create_team
from access.services.tokens import issue_token
from config.actors import SYSTEM
from config.errors import Conflict
from resources.models import OrgSetting
from resources.services import reset_setting, set_setting
from resources.settings_registry import clean_value
from tests.factories import UserFactory, add_to_tenant
from tests.twofactor.helpers import age, enrolled, require_2fa, token_client
from twofactor.fences import TwoFactorRequired
from twofactor.requirement import requirement_at

HOUR = timedelta(hours=1)


def _status(api: Any, org: Any) -> tuple[int, str | None]:
    answer = api.get(f"/api/v1/orgs/{org.pk}")
    return answer.status_code, (answer.json().get("code") if answer.status_code == 403 else None)


@pytest.fixture
def admin_m(people):
    return people["admin"]  # Admin on Marketing (parent of EMEA ⊃ Campaigns); Logistics is Marketing's sibling


# -- the setting ---------------------------------------------------------------------------------------------------


def test_the_setting_takes_required_and_grace_hours_and_refuses_anything_else():
    assert clean_value("require_2fa", {"required": True, "grace_hours": 24}) == {"required": True, "grace_hours": 24}
    assert clean_value("require_2fa", "true, 48") == {"required": True, "grace_hours": 48}
    assert clean_value("require_2fa", '{"required": false}') == {"required": False, "grace_hours": 0}
    for bad in ({"required": True, "grace_hours": 721}, {"required": True, "grace_hours": -1}, {"grace_hours": 1},
                {"required": "maybe"}, {"required": True, "extra": 1}, "true 1 2", [], None, 7):  # fmt: skip
        with pytest.raises(ValidationError):
            clean_value("require_2fa", bad)


def test_the_settings_api_sets_it_with_policy_manage_and_refuses_bad_values(world, people, api_as):
    admin = api_as(world.tenant_admin)
    url = f"/api/v1/orgs/{world.emea.pk}/settings/require_2fa"
    bad = admin.put(url, {"value": {"required": True, "grace_hours": 9999}}, format="json")
    assert bad.status_code == 400 and "value" in bad.json()
    assert not OrgSetting.objects.filter(key="require_2fa").exists()
    guest = api_as(people["guest"])  # sees EMEA, lacks policy.manage
    assert guest.put(url, {"value": {"required": True}}, format="json").status_code == 403
    assert not OrgSetting.objects.filter(key="require_2fa").exists()
    answer = admin.put(url, {"value": {"required": True, "grace_hours": 12}, "locked": True}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["value"] == {"required": True, "grace_hours": 12} and answer.json()["locked"]
    inherited = admin.get(f"/api/v1/orgs/{world.campaigns.pk}/settings/require_2fa").json()
    assert inherited["source"] == "inherited" and inherited["org"]["id"] == str(world.emea.pk)


def test_the_console_settings_form_sets_it(world, client):
    client.force_login(world.tenant_admin)
    page = f"/o/{world.logistics.pk}/settings/"
    answer = client.post(page, {"action": "set", "key": "require_2fa", "value": "true, 24", "versions": ""})
    assert answer.status_code == 302, answer.content
    assert OrgSetting.objects.get(org=world.logistics, key="require_2fa").value == {"required": True, "grace_hours": 24}
    shown = client.get(page).content.decode()
    assert "required, 24 h of grace" in shown
    bad = client.post(page, {"action": "set", "key": "require_2fa", "value": "sometimes", "versions": ""})
    assert bad.status_code == 400
    assert OrgSetting.objects.get(org=world.logistics, key="require_2fa").value["grace_hours"] == 24


def test_a_lock_above_forbids_turning_it_off_below(world, admin_m, api_as, api):
    require_2fa(world.marketing, locked=True)
    with pytest.raises(Conflict):
        set_setting(actor=SYSTEM, org=world.emea, key="require_2fa", value={"required": False})
    # The tenant administrator, verified (unverified, Marketing's subtree is closed to them too: 403 2fa_required).
    assert _status(api_as(world.tenant_admin), world.campaigns) == (403, "2fa_required")
    answer = token_client(api, world.tenant_admin, otp_verified=True).put(
        f"/api/v1/orgs/{world.campaigns.pk}/settings/require_2fa", {"value": {"required": False}}, format="json"
    )
    assert (answer.status_code, answer.json()["code"]) == (409, "locked")
    assert not OrgSetting.objects.filter(org__in=[world.emea, world.campaigns]).exists()
    assert _status(api_as(admin_m), world.campaigns) == (403, "2fa_required")


def test_a_lock_wins_over_a_declaration_below_that_predates_it(world, admin_m, api_as):
    require_2fa(world.emea, required=False)
    OrgSetting.objects.create(
        org=world.marketing, key="require_2fa", value={"required": True, "grace_hours": 0}, locked=True
    )  # fmt: skip  - as if the lock had been set around the service
    fences.invalidate(world.acme.pk)
    assert _status(api_as(admin_m), world.emea) == (403, "2fa_required")


# -- the grace, to the second --------------------------------------------------------------------------------------


def test_the_grace_is_exactly_honoured(world, admin_m, api_as):
    setting = require_2fa(world.emea, grace_hours=24)
    client = api_as(admin_m)
    assert _status(client, world.emea) == (200, None)  # just set: 24 h to go
    age(setting, 24 * HOUR - timedelta(seconds=1))
    assert _status(client, world.emea) == (200, None)  # one second before the end of the grace: open
    age(setting, 24 * HOUR)
    assert _status(client, world.emea) == (403, "2fa_required")  # at the end of the grace: closed
    assert "requires two-factor authentication" in client.get(f"/api/v1/orgs/{world.emea.pk}").json()["detail"]


def test_a_change_restarts_the_grace_and_saving_the_same_value_does_not(world, admin_m, api_as):
    setting = require_2fa(world.emea, grace_hours=2)
    age(setting, 3 * HOUR)
    client = api_as(admin_m)
    assert _status(client, world.emea)[0] == 403
    require_2fa(world.emea, grace_hours=2)  # the same value: nothing written, the grace stays over
    assert _status(client, world.emea)[0] == 403
    require_2fa(world.emea, grace_hours=1)  # a change: one hour from now
    assert _status(client, world.emea)[0] == 200


def test_turning_it_off_or_resetting_it_opens_at_once(world, admin_m, api_as):
    age(require_2fa(world.emea), HOUR)
    client = api_as(admin_m)
    assert _status(client, world.emea)[0] == 403
    reset_setting(actor=SYSTEM, org=world.emea, key="require_2fa")
    assert _status(client, world.emea)[0] == 200
    assert TwoFactorRequired().enforcing([world.acme.pk]) == set()


# -- subtree only --------------------------------------------------------------------------------------------------


def test_only_the_subtree_is_closed(world, admin_m, api_as, django_assert_max_num_queries):
    age(require_2fa(world.emea), HOUR)
    client = api_as(admin_m)
    assert _status(client, world.emea) == (403, "2fa_required")
    assert _status(client, world.campaigns) == (403, "2fa_required")
    assert _status(client, world.marketing) == (200, None)  # the parent
    tenant_admin = api_as(world.tenant_admin)
    assert _status(tenant_admin, world.logistics) == (200, None)  # a sibling
    assert _status(tenant_admin, world.root) == (200, None)
    with django_assert_max_num_queries(8):
        listed = {o["id"] for o in client.get("/api/v1/orgs?page_size=100").json()["results"]}
    assert str(world.marketing.pk) in listed
    assert listed.isdisjoint({str(world.emea.pk), str(world.campaigns.pk)})
    projects = tenant_admin.get(f"/api/v1/orgs/{world.marketing.pk}/projects").json()["results"]
    assert [p["name"] for p in projects] == ["Website"]  # Marketing's own project, untouched
    # Someone whose roles never reached it still gets 404, as before.
    assert _status(api_as(world.outsider), world.emea) == (404, None)


def test_an_override_below_opens_its_own_subtree_only(world, admin_m, api_as):
    age(require_2fa(world.marketing), HOUR)
    require_2fa(world.emea, required=False)
    client = api_as(admin_m)
    assert _status(client, world.marketing)[0] == 403
    assert _status(client, world.emea)[0] == 200
    assert _status(client, world.campaigns)[0] == 200
    # A requirement still in its grace below a required one: its subtree waits for its own grace.
    require_2fa(world.emea, grace_hours=5)
    assert _status(client, world.campaigns)[0] == 200
    assert _status(client, world.marketing)[0] == 403


def test_a_verified_session_or_token_passes(world, admin_m, api, client):
    age(require_2fa(world.emea), HOUR)
    assert _status(token_client(api, admin_m, otp_verified=True), world.campaigns) == (200, None)
    client.force_login(admin_m)
    session = client.session
    session[fences.SESSION_KEY] = fences.AuthContext("password", frozenset(), True).as_session()
    session.save()
    assert client.get(f"/api/v1/orgs/{world.emea.pk}").status_code == 200


def test_the_fence_costs_one_query_in_an_enforcing_tenant(world, admin_m):
    age(require_2fa(world.emea), HOUR)
    provider = TwoFactorRequired()
    assert provider.enforcing([world.acme.pk, world.globex.pk]) == {world.acme.pk}
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        found = provider.fences(admin_m, fences.AuthContext("password"), world.acme.pk)
    assert len(queries) == 1 and [f.org_id for f in found] == [world.emea.pk]
    assert provider.fences(admin_m, fences.AuthContext("password", frozenset(), True), world.acme.pk) == []


def test_changing_the_setting_drops_the_cached_rules_at_once(world, admin_m):
    assert policy.can(admin_m, "org.view", world.emea)  # caches "Acme enforces nothing"
    policy.forget(admin_m)
    require_2fa(world.emea)
    assert not policy.can(admin_m, "org.view", world.emea)


# -- every join path -----------------------------------------------------------------------------------------------


def _verified(user: Any) -> Any:
    fences.attach(user, fences.AuthContext("password", frozenset(), True))
    return user


def test_a_user_invited_into_the_subtree_is_stopped(world, api_as):
    age(require_2fa(world.emea), HOUR)
    _, raw = invite(actor=_verified(world.tenant_admin), org=world.emea, email="newbie@example.com", role="integrator")
    newbie, _ = accept_invitation(raw_token=raw, username="newbie", password="a-long-enough-passphrase-1")
    assert _status(api_as(newbie), world.emea) == (403, "2fa_required")
    assert policy.can(world.tenant_admin, "member.manage", world.marketing)  # the inviter's rights are untouched


def test_a_pending_invitation_into_the_subtree_keeps_its_backing_when_rights_change_elsewhere(world, people):
    from access.models import Invitation
    from access.services.backing import revoke_unbacked_invitations

    age(require_2fa(world.emea), HOUR)
    invitation, _ = invite(actor=_verified(world.tenant_admin), org=world.emea, email="x@example.com", role="guest")
    # A sweep after some write (the inviter loaded from the database, with no authentication context of theirs).
    assert revoke_unbacked_invitations(actor=SYSTEM, tenant_id=world.acme.pk) == 0
    assert Invitation.objects.get(pk=invitation.pk).revoked_at is None


def test_a_user_granted_through_a_team_is_stopped(world, api_as):
    age(require_2fa(world.emea), HOUR)
    team = create_team(actor=SYSTEM, org=world.marketing, name="Field")
    grant_role(actor=SYSTEM, target=world.emea, role="integrator", team=team)
    joiner = UserFactory(username="joiner")
    add_to_tenant(joiner, world.acme)
    add_team_member(actor=SYSTEM, team=team, user=joiner)
    assert policy.can(joiner, "org.view", world.marketing) is False  # the team's grant is on EMEA only
    assert _status(api_as(joiner), world.emea) == (403, "2fa_required")


def test_a_user_provisioned_into_the_subtree_is_stopped(world, api_as, api):
    age(require_2fa(world.emea), HOUR)
    provisioned = UserFactory(username="jit")  # as single sign-on's first sign-in makes them
    add_to_tenant(provisioned, world.acme)
    grant_role(actor=SYSTEM, target=world.emea, role="admin", user=provisioned)
    _, raw = issue_token(user=provisioned, sso_tenants=[world.acme.pk])  # through the IdP, without a second factor
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert _status(api, world.emea) == (403, "2fa_required")
    assert _status(api, world.campaigns) == (403, "2fa_required")


def test_a_user_with_a_device_still_needs_a_verified_token(world, admin_m, api):
    age(require_2fa(world.emea), HOUR)
    enrolled(admin_m)
    assert _status(token_client(api, admin_m), world.emea)[0] == 403  # password-only token
    assert _status(token_client(api, admin_m, otp_verified=True), world.emea)[0] == 200


# -- the org API ---------------------------------------------------------------------------------------------------


def test_the_org_api_shows_the_effective_requirement_and_its_source(world, api_as, django_assert_max_num_queries):
    setting = require_2fa(world.emea, grace_hours=6)
    client = api_as(world.tenant_admin)
    shown = client.get(f"/api/v1/orgs/{world.campaigns.pk}").json()["require_2fa"]
    assert shown["required"] is True and shown["grace_hours"] == 6 and shown["source"] == str(world.emea.pk)
    expected = setting.updated_at + timedelta(hours=6)
    assert abs(timezone.datetime.fromisoformat(shown["enforced_after"].replace("Z", "+00:00")) - expected) < timedelta(
        seconds=1
    )
    assert client.get(f"/api/v1/orgs/{world.marketing.pk}").json()["require_2fa"] == {
        "required": False, "grace_hours": 0, "source": None, "enforced_after": None,
    }  # fmt: skip
    assert requirement_at(world.logistics).source is None
    with django_assert_max_num_queries(8):
        client.get(f"/api/v1/orgs/{world.campaigns.pk}")
