"""The console shows a grant's and a lock's preview on the confirmation page, then the confirmed POST makes the change
(its audit event keeping the summary); refusals are the change's own."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from access.models import AuditEvent, OrgUserGrant, ProjectUserGrant
from config.actors import SYSTEM
from resources import services
from resources.models import OrgSetting
from tests.governance.impact_grants_world import GrantWorld, build

pytestmark = pytest.mark.django_db

IMPACT = "What this change does"


@pytest.fixture
def g(world: Any) -> GrantWorld:
    return build(world)


def _html(response: Any) -> str:
    return response.content.decode()


def _when(days: int) -> str:
    return (timezone.now() + timedelta(days=days)).strftime("%Y-%m-%d %H:%M")


def test_a_removal_shows_its_preview_then_removes(world: Any, g: GrantWorld, as_user: Any) -> None:
    client = as_user(world.tenant_admin)
    url = f"/o/{world.marketing.pk}/members/{g.dora_grant.pk}/remove"
    asked = client.post(url, {"version": g.dora_grant.version})
    assert asked.status_code == 200 and IMPACT in _html(asked)
    assert "dora loses" in _html(asked) and "Marketing and 2 other organizations" in _html(asked)
    assert OrgUserGrant.objects.filter(pk=g.dora_grant.pk).exists()
    done = client.post(url, {"version": g.dora_grant.version, "confirmed": "1"})
    assert done.status_code == 302 and not OrgUserGrant.objects.filter(pk=g.dora_grant.pk).exists()
    event = AuditEvent.objects.get(action="grant.delete", target_id=str(g.dora_grant.pk))
    assert event.changes["impact"]["change"] == "Remove dora's role Integrator on Marketing"


def test_a_project_removal_shows_its_preview(world: Any, g: GrantWorld, as_user: Any) -> None:
    client = as_user(world.tenant_admin)
    url = f"/o/{world.marketing.pk}/p/{world.website.pk}/members/"
    fields = {"action": "remove", "grant": str(g.gus_grant.pk), "version": g.gus_grant.version}
    asked = client.post(url, fields)
    assert asked.status_code == 200 and "gus loses" in _html(asked) and "project Website" in _html(asked)
    assert client.post(url, {**fields, "confirmed": "1"}).status_code == 302
    assert not ProjectUserGrant.objects.filter(pk=g.gus_grant.pk).exists()
    assert "impact" in AuditEvent.objects.get(action="grant.delete", target_id=str(g.gus_grant.pk)).changes


def test_a_downgrade_asks_with_its_preview_an_upgrade_does_not(world: Any, g: GrantWorld, as_user: Any) -> None:
    client = as_user(world.tenant_admin)
    url = f"/o/{world.marketing.pk}/members/{g.dora_grant.pk}/role"
    asked = client.post(url, {"role": "guest", "version": g.dora_grant.version})
    assert asked.status_code == 200 and IMPACT in _html(asked) and "dora loses" in _html(asked)
    assert OrgUserGrant.objects.get(pk=g.dora_grant.pk).role.key == "integrator"
    assert client.post(url, {"role": "guest", "version": g.dora_grant.version, "confirmed": "1"}).status_code == 302
    assert OrgUserGrant.objects.get(pk=g.dora_grant.pk).role.key == "guest"
    up = client.post(url, {"role": "admin"})
    assert up.status_code == 302 and OrgUserGrant.objects.get(pk=g.dora_grant.pk).role.key == "admin"
    counts = [e.changes["impact"]["capabilities"]["counts"] for e in AuditEvent.objects.filter(
        action="grant.update", target_id=str(g.dora_grant.pk)).order_by("created_at")]  # fmt: skip
    assert counts == [{"loses": 1}, {"gains": 1}]


def test_setting_an_end_previews_it_then_sets_it(world: Any, g: GrantWorld, as_user: Any) -> None:
    client = as_user(world.tenant_admin)
    url = f"/o/{world.marketing.pk}/members/{g.dora_grant.pk}/expiry"
    page = client.get(url)
    assert page.status_code == 200 and "dora" in _html(page) and 'name="expires_at"' in _html(page)
    asked = client.post(url, {"expires_at": _when(10), "version": g.dora_grant.version})
    assert asked.status_code == 200 and IMPACT in _html(asked) and "dora loses" in _html(asked)
    assert "End dora&#x27;s role Integrator on Marketing on " in _html(asked)
    assert OrgUserGrant.objects.get(pk=g.dora_grant.pk).expires_at is None
    done = client.post(url, {"expires_at": _when(10), "version": g.dora_grant.version, "confirmed": "1"})
    assert done.status_code == 302 and OrgUserGrant.objects.get(pk=g.dora_grant.pk).expires_at is not None
    event = AuditEvent.objects.get(action="grant.update", target_id=str(g.dora_grant.pk))
    assert event.changes["impact"]["capabilities"]["counts"] == {"loses": 1}
    # Clearing the end asks nothing: nobody loses anything.
    cleared = client.post(url, {"expires_at": ""})
    assert cleared.status_code == 302 and OrgUserGrant.objects.get(pk=g.dora_grant.pk).expires_at is None


def test_a_past_end_is_refused_and_changes_nothing(world: Any, g: GrantWorld, as_user: Any) -> None:
    response = as_user(world.tenant_admin).post(
        f"/o/{world.marketing.pk}/members/{g.dora_grant.pk}/expiry", {"expires_at": _when(-2)}
    )
    assert response.status_code == 400 and "The expiry must be in the future." in _html(response)
    assert OrgUserGrant.objects.get(pk=g.dora_grant.pk).expires_at is None


def test_the_end_page_is_denied_to_whoever_may_not_change_the_grant(world: Any, g: GrantWorld, as_user: Any) -> None:
    url = f"/o/{world.marketing.pk}/members/{g.dora_grant.pk}/expiry"
    assert as_user(g.dora).get(url).status_code == 403  # an Integrator sees Marketing's members only
    refused = as_user(g.dora).post(url, {"expires_at": _when(3)})
    assert refused.status_code == 403 and "dora loses" not in _html(refused)
    assert as_user(world.other_admin).get(url).status_code == 404
    logistics = f"/o/{world.logistics.pk}/members/{g.ops_grant.pk}/expiry"
    assert as_user(g.hank).get(logistics).status_code == 404  # not visible to him: nothing said about it
    assert OrgUserGrant.objects.get(pk=g.dora_grant.pk).expires_at is None


def test_an_integrator_cannot_be_shown_a_removal_preview(world: Any, g: GrantWorld, as_user: Any) -> None:
    client = as_user(g.dora)
    refused = client.post(f"/o/{world.marketing.pk}/members/{g.hank_grant.pk}/remove", {})
    assert refused.status_code == 403 and IMPACT not in _html(refused)
    hidden = client.post(f"/o/{world.logistics.pk}/members/{g.ops_grant.pk}/remove", {})
    assert hidden.status_code == 404 and "erin" not in _html(hidden)
    assert OrgUserGrant.objects.filter(pk=g.hank_grant.pk).exists()


def test_a_lock_asks_with_its_preview_then_locks(world: Any, as_user: Any) -> None:
    client = as_user(world.tenant_admin)
    url = f"/o/{world.marketing.pk}/settings/"
    fields = {"action": "set", "key": "allow_task_sharing", "value": "false", "locked": "on", "versions": ""}
    asked = client.post(url, fields)
    assert asked.status_code == 200 and IMPACT in _html(asked)
    assert "Allow task sharing: true → false in Marketing and 2 other organizations" in _html(asked)
    assert "becomes locked from above in EMEA and Campaigns" in _html(asked)
    assert not OrgSetting.objects.exists()
    assert client.post(url, {**fields, "confirmed": "1"}).status_code == 302
    setting = OrgSetting.objects.get()
    assert setting.locked and setting.value is False
    assert AuditEvent.objects.get(action="setting.set").changes["impact"]["settings"]["counts"] == {
        "changes": 1,
        "locked": 1,
    }
    # A value without a lock is saved without asking (it changes nothing the orgs below cannot change back).
    plain = {"action": "set", "key": "run_log_retention_days", "value": "9", "versions": ""}
    assert client.post(url, plain).status_code == 302


def test_a_lock_over_values_set_below_is_refused_before_asking(world: Any, as_user: Any) -> None:
    services.set_setting(actor=SYSTEM, org=world.campaigns, key="allow_task_sharing", value=True)
    response = as_user(world.tenant_admin).post(
        f"/o/{world.marketing.pk}/settings/",
        {"action": "set", "key": "allow_task_sharing", "value": "false", "locked": "on", "versions": ""},
    )
    assert response.status_code == 409 and "overridden or hidden below (in Campaigns)" in _html(response)
    assert list(OrgSetting.objects.values_list("org_id", flat=True)) == [world.campaigns.pk]


def test_the_admin_records_the_summary_of_its_changes(world: Any, g: GrantWorld, as_user: Any) -> None:
    client = as_user(world.tenant_admin)  # a tenant administrator is staff for their tenant in the admin
    response = client.post(f"/admin/access/orgusergrant/{g.dora_grant.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not OrgUserGrant.objects.filter(pk=g.dora_grant.pk).exists()
    event = AuditEvent.objects.get(action="grant.delete", target_id=str(g.dora_grant.pk))
    assert event.changes["impact"]["capabilities"]["counts"] == {"loses": 1}
    added = client.post(
        "/admin/resources/orgsetting/add/",
        {"org": str(world.marketing.pk), "key": "allow_task_sharing", "value": "false", "locked": "on"},
    )
    assert added.status_code == 302 and OrgSetting.objects.get().locked
    assert AuditEvent.objects.get(action="setting.set").changes["impact"]["settings"]["counts"] == {
        "changes": 1,
        "locked": 1,
    }
