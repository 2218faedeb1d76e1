"""The roll-up's numbers against the hand-built world (tests/governance/rollup_world.py), for each kind of viewer."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from access.services.grants import grant_role
from governance.rollup.service import BadPeriod, Counts, Rollup, parse_period, rollup
from orgs.models import Organization
from resources.services.tasks import share_task
from tests.governance import rollup_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def rw(world: Any) -> rollup_world.RollupWorld:
    cache.clear()
    return rollup_world.build(world)


def _rows(result: Rollup) -> dict[str, Counts]:
    return {row.label if row.kind != "here" else "here": row.counts for row in result.rows}


def _runs(counts: Counts) -> dict[str, int]:
    return {status: n for status, n in counts.runs.items() if n}


def test_a_tenant_administrator_counts_everything_part_by_part(rw: Any) -> None:
    result = rollup(rw.base.tenant_admin, rw.base.root, "7d", use_cache=False)
    assert [(row.kind, row.label) for row in result.rows] == [
        ("here", "Acme"), ("child", "Marketing"), ("child", "Logistics"), ("child", "Vault"),
    ]  # fmt: skip
    rows = _rows(result)
    here, marketing, logistics, vault = rows["here"], rows["Marketing"], rows["Logistics"], rows["Vault"]
    assert (here.orgs, here.projects, here.tasks, here.failing_tasks, here.runs_total) == (1, 1, 1, 0, 0)
    assert here.people == 3  # alice (Admin of the root since sign-up), carol, sec
    assert (marketing.orgs, marketing.projects, marketing.tasks, marketing.failing_tasks) == (3, 2, 3, 1)
    assert _runs(marketing) == {"succeeded": 3, "failed": 2}  # the failed run of 20 days ago is outside 7 days
    assert (marketing.runtimes_online, marketing.runtimes_offline, marketing.runtimes_other) == (1, 0, 0)
    assert (marketing.people, marketing.teams, marketing.invitations, marketing.expiring_grants) == (1, 1, 1, 0)
    assert (logistics.tasks, logistics.failing_tasks, _runs(logistics)) == (1, 1, {"lost": 1})
    assert (logistics.runtimes_online, logistics.runtimes_offline) == (0, 1)
    assert (logistics.people, logistics.expiring_grants) == (1, 2)  # ivy's org grant and pat's project grant
    assert (vault.tasks, vault.failing_tasks, _runs(vault), vault.runtimes_other) == (1, 1, {"failed": 1}, 1)
    assert (vault.people, vault.invitations, vault.expiring_grants) == (1, 1, 1)

    total = result.total
    assert (total.orgs, total.projects, total.tasks, total.failing_tasks) == (6, 5, 6, 3)
    assert _runs(total) == {"succeeded": 3, "failed": 3, "lost": 1}
    assert (total.people, total.teams, total.invitations, total.expiring_grants) == (6, 1, 2, 3)
    assert total.failure_rate == pytest.approx(4 / 7)
    assert sum(sum(c.values()) for _, c in result.per_day) == 7
    assert {r["name"]: (r["kind"], r["runs"]) for r in result.runtimes} == {
        "platform": ("global", 4), "emea-agent": ("local", 2), "depot-agent": ("local", 1),
    }  # fmt: skip


def test_thirty_days_take_the_older_run(rw: Any) -> None:
    result = rollup(rw.base.tenant_admin, rw.base.root, "30d", use_cache=False)
    assert _runs(_rows(result)["Marketing"]) == {"succeeded": 3, "failed": 3}
    assert len(result.per_day) == 31 and result.step == "day"
    day = rollup(rw.base.tenant_admin, rw.base.root, "24h", use_cache=False)
    assert day.step == "hour" and _runs(day.total) == {"succeeded": 2, "lost": 1}


def test_an_admin_above_the_cut_does_not_see_below_it(rw: Any) -> None:
    result = rollup(rw.people["carol"], rw.base.root, "7d", use_cache=False)
    assert [row.label for row in result.rows] == ["Acme", "Marketing", "Logistics"]  # no Vault row, no elsewhere
    total = result.total
    assert (total.orgs, total.projects, total.tasks, total.failing_tasks, total.runs_total) == (5, 4, 5, 2, 6)
    assert (total.runtimes_online, total.runtimes_offline, total.runtimes_other) == (1, 1, 0)
    assert (total.people, total.invitations, total.expiring_grants) == (5, 1, 2)


def test_a_read_only_security_officer_sees_every_count_but_no_invitation(rw: Any) -> None:
    officer = rollup(rw.people["sec"], rw.base.root, "7d", use_cache=False).total
    admin = rollup(rw.people["carol"], rw.base.root, "7d", use_cache=False).total
    assert officer.invitations == 0  # the invitations page needs member.manage
    admin.invitations = 0
    assert officer == admin


def test_an_integrator_in_one_child_sees_only_that_part(rw: Any) -> None:
    result = rollup(rw.people["ivy"], rw.base.logistics, "7d", use_cache=False)
    assert [row.kind for row in result.rows] == ["here"]
    total = result.total
    assert (total.orgs, total.projects, total.tasks, total.failing_tasks, _runs(total)) == (1, 1, 1, 1, {"lost": 1})
    assert (total.runtimes_offline, total.people, total.expiring_grants, total.invitations) == (1, 1, 2, 0)


def test_a_guest_sees_their_subtree_without_invitations(rw: Any) -> None:
    result = rollup(rw.people["gus"], rw.base.marketing, "7d", use_cache=False)
    rows = _rows(result)
    assert list(rows) == ["here", "EMEA"]
    assert (rows["here"].tasks, rows["here"].failing_tasks, rows["EMEA"].tasks, rows["EMEA"].runtimes_online) == (
        2, 1, 1, 1,
    )  # fmt: skip
    assert result.total.invitations == 0


def test_a_subtree_visible_only_below_an_unopenable_child_goes_to_elsewhere(rw: Any) -> None:
    """vic (Admin on Vault only) sees nothing of the root; a grant deep below a child the viewer may not open is
    counted in the elsewhere row, unnamed."""
    grant_role(actor=rw.base.tenant_admin, target=rw.base.root, role="guest", user=rw.people["pat"])
    Organization.objects.filter(pk=rw.base.marketing.pk).update(access_inheritance="none")
    grant_role(actor=rw.base.tenant_admin, target=rw.base.emea, role="guest", user=rw.people["pat"])
    result = rollup(rw.people["pat"], rw.base.root, "7d", use_cache=False)
    labels = [row.label for row in result.rows]
    assert "Marketing" not in labels and "Vault" not in labels
    elsewhere = next(row for row in result.rows if row.kind == "elsewhere")
    assert (elsewhere.org_id, elsewhere.counts.orgs, elsewhere.counts.projects) == (None, 2, 1)  # EMEA, Campaigns; Ads


def test_a_second_read_is_served_from_what_was_kept(rw: Any, django_assert_num_queries: Any) -> None:
    carol, admin, root = rw.people["carol"], rw.base.tenant_admin, rw.base.root
    first = rollup(carol, root, "7d")
    with django_assert_num_queries(1):  # the snapshot (test_rollup_snapshots.py)
        again = rollup(carol, root, "7d")
    assert again.computed_at == first.computed_at and again.from_snapshot and not first.from_snapshot
    whole = rollup(admin, root, "7d")  # another viewer, who may see more: their own figures
    assert first.total.orgs == 5 and whole.total.orgs == 6


def test_a_bad_period_is_refused() -> None:
    assert parse_period(None) == "7d"
    with pytest.raises(BadPeriod):
        parse_period("1y")


def test_a_task_shared_below_the_cut_counts_with_its_runs_in_the_unnamed_row(rw: Any) -> None:
    """carol does not see Vault; a share of keys-rotate gives her that task (and its runs), nothing else there."""
    keys_rotate = rw.tasks["keys-rotate"]
    share_task(actor=rw.base.tenant_admin, task=keys_rotate, permission="view", user=rw.people["carol"])
    result = rollup(rw.people["carol"], rw.base.root, "7d", use_cache=False)
    assert "Vault" not in [row.label for row in result.rows]
    elsewhere = result.rows[-1]
    assert elsewhere.kind == "elsewhere" and elsewhere.org_id is None
    counts = elsewhere.counts
    assert (counts.orgs, counts.projects, counts.tasks, counts.failing_tasks, _runs(counts)) == (
        0, 0, 1, 1, {"failed": 1},
    )  # fmt: skip
    assert (counts.runtimes_other, counts.people, counts.invitations) == (0, 0, 0)  # vault-agent, vic: still hidden
