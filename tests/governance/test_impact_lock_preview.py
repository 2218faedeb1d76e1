"""Previews of setting and locking a setting (governance/impact/settings_changes.py, settings_part.py), checked
against the change itself (the oracle), with their refusals, their audit summary and their query cost."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from access.models import AuditEvent
from config.actors import SYSTEM
from config.errors import Conflict, Forbidden, NotFound
from governance.impact.engine import Scope, observe, preview
from governance.impact.settings_changes import apply_setting, preview_setting, setting_parts
from governance.impact.settings_part import SettingsPart
from orgs import services as org_services
from resources import services
from resources.models import OrgSetting
from resources.settings_registry import setting_value
from tests.factories import make_chain, make_org
from tests.governance.impact_grants_world import GrantWorld, build, texts

pytestmark = pytest.mark.django_db


@pytest.fixture
def g(world: Any) -> GrantWorld:
    return build(world)


def _rows() -> list[tuple[Any, ...]]:
    return list(OrgSetting.objects.order_by("pk").values_list("pk", "org_id", "key", "value", "locked", "version"))


def _lock(world: Any, key: str, value: Any, org: Any = None) -> Any:
    return lambda: services.set_setting(actor=world.tenant_admin, org=org or world.marketing, key=key, value=value,
                                        locked=True)  # fmt: skip


def test_a_lock_lists_each_org_whose_value_changes_and_matches_the_lock(world: Any) -> None:
    services.set_setting(actor=SYSTEM, org=world.root, key="allowed_runtimes", value=["any-eu"])
    before = _rows()
    impact = preview_setting(actor=world.tenant_admin, org=world.marketing, key="allowed_runtimes",
                             value=["eu-1"], locked=True)  # fmt: skip
    assert _rows() == before  # nothing written
    assert impact.change == 'Lock “Allowed runtimes” in Marketing at ["eu-1"]'
    assert [s.key for s in impact.sections] == [p.key for p in setting_parts()] and "capabilities" not in [
        s.key for s in impact.sections
    ]
    lines = texts(impact, "settings")
    assert 'Allowed runtimes: ["any-eu"] → ["eu-1"] in Marketing and 2 other organizations' in lines, lines
    locked = "Allowed runtimes becomes locked from above in EMEA and Campaigns: it can no longer be changed there"
    assert locked in lines
    changed = next(e for e in impact.section("settings").entries if e.kind == "changes")
    assert changed.data["from"] == ["any-eu"] and changed.data["to"] == ["eu-1"] and changed.data["org_count"] == 3

    _, observed = observe(_lock(world, "allowed_runtimes", ["eu-1"]), Scope(root=world.marketing),
                          describe=impact.change, parts=setting_parts())  # fmt: skip
    assert observed.as_dict() == impact.as_dict()
    assert setting_value(world.campaigns, "allowed_runtimes") == ["eu-1"]


def test_locking_the_value_in_force_changes_no_value_but_locks_below(world: Any) -> None:
    services.set_setting(actor=SYSTEM, org=world.marketing, key="run_log_retention_days", value=14)
    impact = preview_setting(actor=world.tenant_admin, org=world.marketing, key="run_log_retention_days",
                             value=14, locked=True)  # fmt: skip
    assert [e.kind for e in impact.section("settings").entries] == ["locked"]
    assert impact.section("settings").entries[0].data["org_count"] == 2  # EMEA and Campaigns, not Marketing itself


def test_a_lock_over_values_set_below_is_refused_by_its_preview_as_by_the_lock(world: Any) -> None:
    services.set_setting(actor=SYSTEM, org=world.campaigns, key="run_log_retention_days", value=90)
    before = _rows()
    with pytest.raises(Conflict) as previewed:
        preview_setting(actor=world.tenant_admin, org=world.marketing, key="run_log_retention_days", value=7,
                        locked=True)  # fmt: skip
    with pytest.raises(Conflict) as real:
        _lock(world, "run_log_retention_days", 7)()
    assert previewed.value.code == real.value.code == "overridden_below"
    assert previewed.value.detail == real.value.detail and "Campaigns" in previewed.value.detail
    assert _rows() == before


def test_overrides_brought_under_a_lock_are_shown_shadowed(world: Any) -> None:
    """The settings part is every preview's: a move that brings a value set below under a lock shows it shadowed."""
    services.set_setting(actor=SYSTEM, org=world.emea, key="run_log_retention_days", value=7, locked=True)
    services.set_setting(actor=SYSTEM, org=world.logistics, key="run_log_retention_days", value=60)
    move = lambda: org_services.move_org(actor=world.tenant_admin, org=world.logistics, parent=world.emea)  # noqa: E731
    impact = preview(move, Scope(root=world.logistics), describe="move", parts=[SettingsPart()])
    lines = texts(impact, "settings")
    assert "Run log retention (days) set in Logistics (60) is shadowed by a lock above" in lines, lines
    assert "Run log retention (days): 60 → 7 in Logistics" in lines
    _, observed = observe(move, Scope(root=world.logistics), describe="move", parts=[SettingsPart()])
    assert observed.as_dict() == impact.as_dict()


def test_a_setting_preview_is_refused_like_the_change(world: Any, g: GrantWorld) -> None:
    with pytest.raises(Forbidden):  # an Integrator sees Marketing but may not set its policy
        preview_setting(actor=g.dora, org=world.marketing, key="allow_task_sharing", value=False, locked=True)
    with pytest.raises(NotFound):  # another tenant's org is not there for them
        preview_setting(actor=world.other_admin, org=world.marketing, key="allow_task_sharing", value=False)
    assert not OrgSetting.objects.exists()


def test_applying_a_lock_records_its_summary(world: Any) -> None:
    setting, impact = apply_setting(actor=world.tenant_admin, org=world.marketing, key="allow_task_sharing",
                                    value=False, locked=True)  # fmt: skip
    assert setting.locked and setting.value is False
    event = AuditEvent.objects.get(action="setting.set", target_id=str(setting.pk))
    assert event.changes["impact"]["change"] == impact.change
    assert event.changes["impact"]["settings"]["counts"] == {"changes": 1, "locked": 1}
    assert event.changes["locked"] is True


def test_a_lock_preview_costs_the_same_queries_whatever_the_subtree(world: Any) -> None:
    services.set_setting(actor=SYSTEM, org=world.emea, key="max_lookup_table_rows", value=500)

    def cost() -> int:
        with CaptureQueriesContext(connection) as queries:
            preview_setting(actor=world.tenant_admin, org=world.root, key="allowed_invite_domains",
                            value=["acme.test"], locked=True)  # fmt: skip
        return len(queries)

    cost()
    small = cost()
    for i in range(3):
        make_chain(make_org(world.campaigns, f"Region {i}"), 4, prefix=f"r{i}")
    assert cost() == small


def test_the_settings_part_reads_a_subtree_in_three_queries(world: Any) -> None:
    for i in range(4):
        make_chain(make_org(world.logistics, f"Depot {i}"), 3, prefix=f"d{i}")
    services.set_setting(actor=SYSTEM, org=world.logistics, key="max_lookup_table_rows", value=500)
    with CaptureQueriesContext(connection) as queries:
        snapshot = SettingsPart().capture(Scope(root=world.root))
    assert len(queries) == 3  # the root read again, its subtree, the settings on its path and below
    assert len(snapshot.orgs) == 5 + 4 * 4
