"""The roll-up's read model (governance/rollup/snapshots.py): a roll-up is kept per org, period and audience (a
digest of what the viewer may see) and served again while fresh. What is served must be exactly what the viewer
would see computed live (the oracle); no viewer is ever served figures kept for what another may see (the attack:
an org admin above a cut, or a tenant administrator a fence restricts, reading the tenant administrators' roll-up;
someone whose grant was just revoked); a snapshot serves only while fresh and while its org has not moved; the
refresher computes the read ones again as their viewer and drops the others."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from access import policy
from access.models import OrgUserGrant
from access.services.grants import revoke_grant
from config.actors import SYSTEM
from governance.models import RollupSnapshot
from governance.rollup import service
from governance.rollup.service import PERIODS, VISIBILITY, Rollup, audience_of, compute, refresh_snapshots, rollup
from orgs import services as org_services
from orgs.models import Organization
from resources.services.tasks import share_task
from tests.factories import UserFactory, add_to_tenant, make_org, make_project
from tests.governance import rollup_world
from tests.twofactor.helpers import require_2fa

pytestmark = pytest.mark.django_db


@pytest.fixture
def rw(world: Any) -> rollup_world.RollupWorld:
    built = rollup_world.build(world)
    world.refresh()  # the orgs as a request reads them (Vault made the root's subtree wider)
    built.vault.refresh_from_db()
    return built


def _figures(result: Rollup) -> Rollup:
    """What a roll-up says, without when it was computed and how it was served."""
    return dataclasses.replace(result, since=None, computed_at=None, cache_seconds=0, from_snapshot=False)


def _fresh(user: Any) -> Any:
    """``user`` as the next request loads it: grants and fences read again."""
    policy.forget(user)
    return user


@pytest.mark.parametrize("period", list(PERIODS))
def test_what_is_served_is_what_each_viewer_sees_live(rw: Any, period: str) -> None:
    viewers = [rw.base.tenant_admin, *(rw.people[n] for n in ("carol", "sec", "ivy", "gus", "pat"))]
    for viewer in viewers:
        for org in (rw.base.root, rw.base.logistics):
            if not policy.can(viewer, "org.view", org):
                continue
            first = rollup(viewer, org, period)  # computed and kept
            served = rollup(_fresh(viewer), org, period)  # read back
            assert not first.from_snapshot and served.from_snapshot
            assert _figures(served) == _figures(first) == _figures(compute(viewer, org, period)), viewer
    # The tenant administrator counts the cut subtree (Vault); carol, Admin above the cut, does not.
    assert rollup(rw.base.tenant_admin, rw.base.root, period).total.orgs == 6
    assert rollup(rw.people["carol"], rw.base.root, period).total.orgs == 5


def test_the_roll_up_asks_the_policy_nothing_but_its_audience(rw: Any, monkeypatch: Any) -> None:
    """The audience digests the policy.visible calls of VISIBILITY: compute may depend on the viewer through those
    alone, or two viewers with one audience could see different figures."""
    asked: set[tuple[str, type]] = set()
    original = policy.visible

    def spy(user: Any, capability: str, queryset: Any) -> Any:
        asked.add((capability, queryset.model))
        return original(user, capability, queryset)

    monkeypatch.setattr(policy, "visible", spy)
    for viewer in (rw.people["carol"], rw.people["pat"]):
        compute(viewer, rw.base.root, "7d")
    assert asked == set(VISIBILITY)
    monkeypatch.setattr(policy, "can", lambda *a: pytest.fail("compute asked policy.can"))
    compute(rw.people["carol"], rw.base.root, "7d")


def test_viewers_who_may_see_the_same_share_one_snapshot(rw: Any, django_assert_max_num_queries: Any) -> None:
    admin = rw.base.tenant_admin
    other = UserFactory(username="tina")
    add_to_tenant(other, rw.base.acme, is_admin=True)
    tenant = rw.base.acme.pk
    assert audience_of(admin, tenant) == audience_of(other, tenant) != audience_of(rw.people["carol"], tenant)
    computed = rollup(admin, rw.base.root, "30d")
    policy.access_for(other).subtree_rows  # noqa: B018 - loaded by the page's own permission check
    with django_assert_max_num_queries(2):  # the fences' rules, the snapshot
        served = rollup(other, rw.base.root, "30d")
    assert served.from_snapshot and served.computed_at == computed.computed_at
    assert Rollup.from_payload(computed.as_payload(), cache_seconds=300) == computed
    assert RollupSnapshot.objects.count() == 1


def test_an_org_admin_above_a_cut_is_never_served_the_tenant_administrators_roll_up(rw: Any) -> None:
    carol = rw.people["carol"]
    assert rollup(rw.base.tenant_admin, rw.base.root, "7d").total.orgs == 6  # kept, with Vault in it
    hers = rollup(carol, rw.base.root, "7d")
    assert not hers.from_snapshot and hers.total.orgs == 5
    assert "Vault" not in [row.label for row in hers.rows]
    assert RollupSnapshot.objects.count() == 2


def test_a_tenant_administrator_a_fence_restricts_is_not_served_the_unfenced_roll_up(rw: Any) -> None:
    admin, acme = rw.base.tenant_admin, rw.base.acme.pk
    assert policy.sees_whole_tenant(admin, acme)
    assert not policy.sees_whole_tenant(rw.people["carol"], acme)  # Admin of the root org, not of the tenant
    assert not policy.sees_whole_tenant(rw.base.other_admin, acme)  # Globex's administrator
    whole = rollup(admin, rw.base.root, "7d")
    require_2fa(rw.base.marketing)  # no grace: a session without a second factor is fenced out of Marketing
    fenced = rollup(_fresh(admin), rw.base.root, "7d")
    assert not policy.sees_whole_tenant(admin, acme)
    assert not fenced.from_snapshot
    assert fenced.total.orgs == whole.total.orgs - 3  # Marketing, EMEA and Campaigns are closed to this session
    assert "Marketing" not in [row.label for row in fenced.rows]


def test_a_revoked_grant_or_a_new_share_shows_at_once(rw: Any) -> None:
    ivy, carol = rw.people["ivy"], rw.people["carol"]
    assert rollup(ivy, rw.base.logistics, "7d").total.tasks == 1
    share_task(actor=rw.base.tenant_admin, task=rw.tasks["site-build"], permission="view", user=ivy)
    assert rollup(_fresh(ivy), rw.base.root, "7d").total.tasks == 2  # her audience changed: computed for it
    before = rollup(carol, rw.base.root, "7d")
    grant = OrgUserGrant.objects.get(user=carol, content_object=rw.base.root)
    revoke_grant(actor=rw.base.tenant_admin, grant=grant)
    after = rollup(_fresh(carol), rw.base.root, "7d")  # (the page would now answer 404; the service still narrows)
    assert before.total.orgs == 5 and after.total.orgs == 0 and not after.from_snapshot


def test_a_snapshot_serves_while_fresh_then_is_computed_again(rw: Any) -> None:
    admin, root = rw.base.tenant_admin, rw.base.root
    before = rollup(admin, root, "7d").total.projects
    make_project(rw.base.logistics, "Late")  # no change of the tree: the snapshot still serves, figures as of then
    assert rollup(admin, root, "7d").total.projects == before
    RollupSnapshot.objects.update(computed_at=timezone.now() - timedelta(seconds=301))
    again = rollup(admin, root, "7d")
    assert again.total.projects == before + 1 and not again.from_snapshot
    assert RollupSnapshot.objects.get().computed_at > timezone.now() - timedelta(seconds=5)
    assert rollup(admin, root, "7d", use_cache=False).computed_at > again.computed_at  # asked afresh


def test_a_tree_change_below_makes_the_snapshot_stale_at_once(rw: Any) -> None:
    admin, root = rw.base.tenant_admin, rw.base.root
    assert rollup(admin, root, "7d").total.orgs == 6
    make_org(rw.base.logistics, "Depot-2")
    root.refresh_from_db()
    assert rollup(admin, root, "7d").total.orgs == 7
    org_services.move_org(actor=SYSTEM, org=rw.base.campaigns, parent=rw.base.logistics)
    marketing = Organization.objects.get(pk=rw.base.marketing.pk)
    assert rollup(admin, marketing, "7d").total.orgs == 2  # computed for the new place
    assert rollup(admin, marketing, "7d").from_snapshot  # and served from it


def test_the_refresher_computes_the_read_ones_as_their_viewer_and_drops_the_unread(rw: Any) -> None:
    admin, carol = rw.base.tenant_admin, rw.people["carol"]
    for org in (rw.base.root, rw.base.marketing, rw.base.logistics):
        rollup(admin, org, "7d")
    rollup(carol, rw.base.root, "7d")
    old = timezone.now() - timedelta(minutes=2)
    RollupSnapshot.objects.update(computed_at=old)
    RollupSnapshot.objects.filter(org=rw.base.logistics).update(read_at=timezone.now() - timedelta(days=2))
    make_project(rw.base.marketing, "Fresh")
    make_project(rw.vault, "Hidden")
    assert refresh_snapshots()["refreshed"] == 3
    assert RollupSnapshot.objects.count() == 3 and not RollupSnapshot.objects.filter(computed_at=old).exists()
    for viewer, org in ((admin, rw.base.marketing), (admin, rw.base.root), (carol, rw.base.root)):
        served = rollup(_fresh(viewer), org, "7d")
        assert served.from_snapshot, (viewer, org)
        assert _figures(served) == _figures(compute(viewer, org, "7d"))
    assert rollup(carol, rw.base.root, "7d").total.projects == 5  # computed as carol: not Keys, not Hidden
    out = StringIO()
    call_command("refresh_rollups", "--once", stdout=out)
    assert out.getvalue().strip() == "Roll-ups: 0 refreshed (slowest 0 ms), 0 dropped."  # nothing due any more


def test_the_refresher_drops_what_its_viewer_may_no_longer_open_or_a_deleted_org(rw: Any) -> None:
    carol = rw.people["carol"]
    rollup(carol, rw.base.root, "24h")
    rollup(rw.base.tenant_admin, rw.base.logistics, "24h")
    revoke_grant(actor=rw.base.tenant_admin, grant=OrgUserGrant.objects.get(user=carol, content_object=rw.base.root))
    org_services.delete_org(actor=SYSTEM, org=rw.base.logistics)
    RollupSnapshot.objects.update(computed_at=timezone.now() - timedelta(minutes=2))
    assert refresh_snapshots() == {"refreshed": 0, "dropped": 2, "ms": 0}
    assert not RollupSnapshot.objects.exists()


def test_without_the_refresher_an_org_keeps_only_the_roll_ups_read_lately(rw: Any) -> None:
    carol, admin, root = rw.people["carol"], rw.base.tenant_admin, rw.base.root
    rollup(admin, root, "7d")
    rollup(admin, rw.base.marketing, "7d")
    RollupSnapshot.objects.update(read_at=timezone.now() - timedelta(days=2))
    rollup(carol, root, "7d")  # a new audience at the root: the root's unread row goes, Marketing's stays
    assert sorted(RollupSnapshot.objects.values_list("org__name", "computed_for__username")) == [
        ("Acme", "carol"), ("Marketing", "alice"),
    ]  # fmt: skip


def test_the_refresher_command_refuses_a_bad_interval() -> None:
    err = StringIO()
    with pytest.raises(SystemExit):
        call_command("refresh_rollups", "--interval", "0", stderr=err)
    assert "--interval must be more than 0 seconds." in err.getvalue()


def test_the_service_keeps_no_second_cache() -> None:
    assert not hasattr(service, "cache")  # the snapshots are the only place figures are kept


@pytest.mark.django_db(transaction=True)
def test_a_page_read_keeps_its_roll_up_after_its_read_only_transaction(world: Any, as_user: Any) -> None:
    """On PostgreSQL a GET reads in a READ ONLY transaction (config/snapshots.py): the roll-up it computed is
    written after it commits, and the next read is served from it."""
    client = as_user(world.tenant_admin)
    url = f"/o/{world.root.pk}/overview/"
    first = client.get(url)
    assert first.status_code == 200 and not first.context["rollup"].from_snapshot
    assert RollupSnapshot.objects.filter(org=world.root, period="7d").count() == 1
    again = client.get(url)
    assert again.status_code == 200 and again.context["rollup"].from_snapshot
    assert again.context["rollup"].computed_at == first.context["rollup"].computed_at
