"""A preview shows its viewer only what they may see (the attack: an org admin above a cut of access inheritance
learns the names inside the subtree they cannot see by previewing a change that reaches it).

World (tests/governance/impact_world.py): Logistics › Depot › Vault, Vault cut (access_inheritance none). victor is
Admin of Depot, so Vault is not his to see (404 everywhere); Vault holds a project "Ledger" whose task "payroll" has
a queued run on Logistics' us-east. Locking allowed_runtimes at Depot to the root's eu-west reaches Vault: its value
changes, it becomes locked, its queued run becomes unplaceable. victor's preview says so without a name: "Changes in
1 organization you cannot see are not shown", in the service, the API, the console and the audit event. The tenant
administrator, who sees Vault, gets the whole preview (the same change: the narrowing is the viewer's, not the
change's)."""

from __future__ import annotations

from typing import Any

import pytest

from access import policy
from access.models import AuditEvent
from access.services.grants import grant_role
from config.actors import SYSTEM
from config.errors import Conflict
from governance.impact.settings_changes import preview_setting
from resources import services
from resources.models import OrgSetting, Run, Task
from tests.factories import UserFactory, add_to_tenant, make_project
from tests.governance.impact_world import ImpactWorld, build_impact_world, queue, setting

pytestmark = pytest.mark.django_db

SECRETS = ("Vault", "payroll", "Ledger")
LOCK = {"key": "allowed_runtimes", "value": ["eu-west"], "locked": True}


@pytest.fixture
def iw(world: Any) -> ImpactWorld:
    iw = build_impact_world(world)
    ledger = make_project(iw.vault, "Ledger")
    payroll = Task.objects.create(project=ledger, name="payroll", steps=[])
    queue(payroll, iw.us_east)
    return iw


@pytest.fixture
def victor(iw: ImpactWorld) -> Any:
    user = UserFactory(username="victor")
    add_to_tenant(user, iw.base.acme)
    grant_role(actor=SYSTEM, target=iw.depot, role="admin", user=user)
    assert policy.can(user, "policy.manage", iw.depot)
    assert not policy.can(user, "org.view", iw.vault)  # the cut: Vault is not his to see
    return user


def _leaks(text: str, iw: ImpactWorld) -> list[str]:
    return [s for s in (*SECRETS, str(iw.vault.pk)) if s in text]


def test_the_preview_of_a_lock_leaves_out_what_the_viewer_cannot_see(iw: ImpactWorld, victor: Any) -> None:
    impact = preview_setting(actor=victor, org=iw.depot, **LOCK)
    assert _leaks(repr(impact.as_dict()), iw) == []
    settings, runs = impact.section("settings"), impact.section("runs")
    assert [e.text for e in settings.entries if e.kind == "changes"] == [
        'Allowed runtimes: [] → ["eu-west"] in Depot and Bay'
    ], settings.entries
    assert settings.left_out == 1 and runs.left_out == 1
    assert settings.left_out_text == "Changes in 1 organization you cannot see are not shown."
    assert {e.data["task"]["name"] for e in runs.entries} == {"ship", "load"}  # Depot's own runs, shown

    # The same change previewed by who may see Vault: everything, nothing left out.
    whole = preview_setting(actor=iw.base.tenant_admin, org=iw.depot, **LOCK)
    assert "Vault" in repr(whole.as_dict()) and "payroll" in repr(whole.as_dict())
    assert whole.section("settings").left_out == 0 and whole.section("runs").left_out == 0
    assert Run.objects.filter(task__name="payroll", status=Run.Status.QUEUED).exists()  # a preview writes nothing


def test_the_api_dry_run_and_the_audit_event_name_nothing_hidden(iw: ImpactWorld, victor: Any, api_as: Any) -> None:
    url = f"/api/v1/orgs/{iw.depot.pk}/settings/allowed_runtimes"
    client = api_as(victor)
    dry = client.put(url + "?dry_run=true", {"value": ["eu-west"], "locked": True}, format="json")
    assert dry.status_code == 200, dry.content
    assert _leaks(dry.content.decode(), iw) == []
    assert {s["key"]: s["left_out"] for s in dry.json()["sections"]} == {"settings": 1, "runs": 1}
    assert not OrgSetting.objects.filter(org=iw.depot, key="allowed_runtimes").exists()

    done = client.put(url, {"value": ["eu-west"], "locked": True}, format="json")
    assert done.status_code == 200, done.content
    event = AuditEvent.objects.get(action="setting.set", org_id=iw.depot.pk)
    assert _leaks(repr(event.changes), iw) == []  # Depot's audit log is victor's to read
    assert event.changes["impact"]["runs"]["left_out"] == 1


def test_the_console_preview_names_nothing_hidden(iw: ImpactWorld, victor: Any, as_user: Any) -> None:
    response = as_user(victor).post(
        f"/o/{iw.depot.pk}/settings/",
        {"action": "set", "key": "allowed_runtimes", "value": '["eu-west"]', "locked": "on", "versions": ""},
    )
    html = response.content.decode()
    assert response.status_code == 200 and "What this change does" in html, html[:2000]
    assert "Changes in 1 organization you cannot see are not shown." in html
    assert _leaks(html, iw) == []
    assert not OrgSetting.objects.filter(org=iw.depot, key="allowed_runtimes").exists()


def test_a_lock_refused_over_a_hidden_override_counts_it_without_its_name(iw: ImpactWorld, victor: Any) -> None:
    setting(iw.vault, "run_log_retention_days", 365)
    before = list(OrgSetting.objects.order_by("pk").values_list("pk", "value", "locked", "version"))
    with pytest.raises(Conflict) as refused:
        services.set_setting(actor=victor, org=iw.depot, key="run_log_retention_days", value=30, locked=True)
    assert "in 1 organization you cannot see" in str(refused.value) and "Vault" not in str(refused.value)
    with pytest.raises(Conflict) as previewed:
        preview_setting(actor=victor, org=iw.depot, key="run_log_retention_days", value=30, locked=True)
    assert str(previewed.value) == str(refused.value)
    with pytest.raises(Conflict) as seen:  # who may see Vault is told where
        services.set_setting(actor=iw.base.tenant_admin, org=iw.depot, key="run_log_retention_days", value=30,
                             locked=True)  # fmt: skip
    assert "(in Vault)" in str(seen.value)
    assert list(OrgSetting.objects.order_by("pk").values_list("pk", "value", "locked", "version")) == before
