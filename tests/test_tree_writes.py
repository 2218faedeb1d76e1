"""Tree writes rewrite only what changes (orgs/tree.py), and place nodes exactly where django-mptt would.

Two tenants with the same tree take the same moves: one through Canopy's tree manager, the other through
django-mptt's own move; their numbering must agree after every move, in every position the admin can ask for.
"""

from __future__ import annotations

import random
from unittest import mock

import pytest
from django.db import connection, transaction
from mptt.exceptions import InvalidMove
from mptt.managers import TreeManager

from config.actors import SYSTEM
from orgs import services
from orgs.integrity import tree_problems
from orgs.models import Organization
from orgs.tree import OrgTreeManager
from tests.factories import make_org, make_tenant, root_of

POSITIONS = ("first-child", "last-child", "left", "right")


def build_tree(name: str, seed: int, size: int = 40) -> dict[str, Organization]:
    """``size`` orgs named n0 … n<size-1> under random parents (the same shape for the same seed)."""
    rng = random.Random(seed)
    tenant = make_tenant(name)
    nodes = {"n0": make_org(root_of(tenant), "n0")}
    for i in range(1, size):
        parent = nodes[f"n{rng.randrange(i)}"]
        nodes[f"n{i}"] = make_org(Organization.objects.get(pk=parent.pk), f"n{i}")
    return nodes


def layout(tenant_id) -> dict[str, tuple]:
    rows = Organization.objects.filter(tenant_id=tenant_id).select_related("parent")
    return {o.name: (o.lft, o.rght, o.level, o.parent.name if o.parent_id and o.parent.parent_id else None)
            for o in rows if o.parent_id}  # fmt: skip


def move(name: str, target: str, position: str, tenant_id) -> None:
    node = Organization.objects.get(tenant_id=tenant_id, name=name)
    other = Organization.objects.get(tenant_id=tenant_id, name=target)
    Organization._tree_manager.move_node(node, other, position)


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_moves_number_the_tree_exactly_as_django_mptt_does(seed):
    ours = build_tree("Ours", seed)
    theirs = build_tree("Theirs", seed)
    ours_tenant, theirs_tenant = ours["n0"].tenant_id, theirs["n0"].tenant_id
    assert layout(ours_tenant) == layout(theirs_tenant)
    rng = random.Random(seed * 100)
    names = sorted(ours)
    moved = 0
    for _ in range(60):
        name, target, position = rng.choice(names), rng.choice(names), rng.choice(POSITIONS)
        outcomes = []
        for tenant_id, method in (
            (ours_tenant, OrgTreeManager._move_child_within_tree),
            (theirs_tenant, TreeManager._move_child_within_tree),
        ):
            with mock.patch.object(OrgTreeManager, "_move_child_within_tree", method):
                try:
                    with transaction.atomic():
                        move(name, target, position, tenant_id)
                    outcomes.append("moved")
                except InvalidMove:
                    outcomes.append("refused")
        assert outcomes[0] == outcomes[1], (name, target, position)
        moved += outcomes[0] == "moved"
        assert layout(ours_tenant) == layout(theirs_tenant), (name, target, position)
    assert moved > 30
    assert tree_problems() == []


@pytest.mark.django_db
def test_moving_into_its_own_subtree_or_next_to_itself_is_refused():
    nodes = build_tree("Cycles", 5, size=10)
    parent = next(n for n in nodes.values() if Organization.objects.get(pk=n.pk).get_descendant_count())
    child = Organization.objects.filter(parent=parent).first()
    for position in POSITIONS:
        with pytest.raises(InvalidMove):
            Organization._tree_manager.move_node(Organization.objects.get(pk=parent.pk), child, position)
        with pytest.raises(InvalidMove):
            Organization._tree_manager.move_node(
                Organization.objects.get(pk=parent.pk), Organization.objects.get(pk=parent.pk), position
            )
    assert tree_problems() == []


@pytest.mark.django_db
def test_a_move_to_where_the_subtree_already_is_writes_nothing():
    tenant = make_tenant("Still")
    root = root_of(tenant)
    a = make_org(root, "a")
    b = make_org(root, "b")
    make_org(a, "a1")
    before = layout(tenant.pk)
    with mock.patch.object(OrgTreeManager, "_shift_block") as shift:
        Organization._tree_manager.move_node(Organization.objects.get(pk=a.pk), Organization.objects.get(pk=b.pk),
                                             "left")  # fmt: skip
        Organization._tree_manager.move_node(Organization.objects.get(pk=b.pk), Organization.objects.get(pk=root.pk),
                                             "last-child")  # fmt: skip
    assert not shift.called
    assert layout(tenant.pk) == before


def xact_updates() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_get_xact_tuples_updated(%s::regclass)", [Organization._meta.db_table])
        return cursor.fetchone()[0]


def test_a_move_rewrites_only_the_rows_between_its_old_and_new_place(postgres_only):
    """On PostgreSQL, every row an UPDATE touches is a new row version (and a dead one for VACUUM), changed or not:
    django-mptt's move touched every row of the tree."""
    tenant = make_tenant("Wide")
    root = root_of(tenant)
    branches = [make_org(root, f"b{i}") for i in range(6)]
    for branch in branches:
        for j in range(5):
            make_org(Organization.objects.get(pk=branch.pk), f"{branch.name}-{j}")
    # b1 (6 nodes) becomes b3's last child: b2's subtree and b3 with its children close up to the left, nothing
    # left of b1 or right of b3's last child changes (the root and b3 keep their rght).
    snapshot = {o.pk: (o.lft, o.rght, o.level) for o in Organization.objects.filter(tenant=tenant)}
    before = xact_updates()
    services.move_org(actor=SYSTEM, org=branches[1], parent=branches[3])
    rewritten = xact_updates() - before
    changed = sum((o.lft, o.rght, o.level) != snapshot[o.pk] for o in Organization.objects.filter(tenant=tenant))
    assert changed == 6 + 6 + 6  # the moved subtree, b2's subtree, b3 and its five children
    assert rewritten == changed + 1  # + the moved org's own save (its new parent)
    assert tree_problems(tenant) == []


def org_table_options() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [Organization._meta.db_table])
        return cursor.fetchone()[0] or []


@pytest.mark.django_db(transaction=True)
def test_the_org_table_leaves_room_on_its_pages_for_renumbered_rows(postgres_only):
    """New row versions stay on their page (orgs/migrations/0006): the table does not grow by every renumbering."""
    from django.db.migrations.executor import MigrationExecutor

    assert "fillfactor=70" in org_table_options()
    try:
        MigrationExecutor(connection).migrate([("orgs", "0005_invite_domains_moved_to_settings")])
        assert not any(option.startswith("fillfactor") for option in org_table_options())
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert "fillfactor=70" in org_table_options()
