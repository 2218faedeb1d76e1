"""Integrity of the org trees: what check_org_tree verifies. One query per tenant, checks in Python."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from orgs.models import Organization, Tenant


def tree_problems(tenant: Tenant | None = None) -> list[str]:
    """Every inconsistency between parent links and mptt's lft/rght/level/tree_id, named by tenant.

    An empty list means every tree is sound: one root per tenant, a tree_id of its own, and nested sets that agree
    with the parent links exactly (each node's interval is inside its parent's, siblings do not overlap, the
    intervals number 1..2n without gaps, and level is the depth).
    """
    tenants = [tenant] if tenant is not None else list(Tenant.objects.order_by("name"))
    problems: list[str] = []
    tree_owner: dict[int, Any] = {}
    for t in tenants:
        label = f"Tenant {t.name} ({t.pk})"
        nodes = list(
            Organization.objects.filter(tenant=t).values("id", "parent_id", "name", "tree_id", "lft", "rght", "level")
        )
        if not nodes:
            problems.append(f"{label}: has no organization.")
            continue
        tree_ids = {n["tree_id"] for n in nodes}
        if len(tree_ids) != 1:
            problems.append(f"{label}: its organizations span several trees {sorted(tree_ids)}.")
            continue
        tree_id = tree_ids.pop()
        if tree_id in tree_owner:
            problems.append(f"{label}: shares tree_id {tree_id} with tenant {tree_owner[tree_id]}.")
        tree_owner[tree_id] = t.name
        problems.extend(f"{label}: {p}" for p in _check_nested_set(nodes))
    if tenant is None:
        foreign = Organization.objects.exclude(tree_id__in=list(tree_owner)).values_list("name", "tree_id")[:5]
        problems.extend(f"Organization {name} is in tree {tid}, owned by no tenant." for name, tid in foreign)
    return problems


def _check_nested_set(nodes: list[dict[str, Any]]) -> list[str]:
    problems = []
    by_id = {n["id"]: n for n in nodes}
    children: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    roots = []
    for node in nodes:
        if node["parent_id"] is None:
            roots.append(node)
        elif node["parent_id"] not in by_id:
            problems.append(f"node {node['name']} has a parent outside the tenant.")
        else:
            children[node["parent_id"]].append(node)
    if len(roots) != 1:
        return [*problems, f"has {len(roots)} roots instead of one."]
    values = sorted(v for n in nodes for v in (n["lft"], n["rght"]))
    if values != list(range(1, 2 * len(nodes) + 1)):
        problems.append("lft/rght values are not exactly 1..2n (gaps or duplicates).")
    # Walk from the root: each child's interval inside its parent's, siblings disjoint, level = depth.
    stack = [(roots[0], 0)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if node["lft"] >= node["rght"]:
            problems.append(f"node {node['name']} has lft {node['lft']} >= rght {node['rght']}.")
        if node["level"] != depth:
            problems.append(f"node {node['name']} has level {node['level']} at depth {depth}.")
        kids = sorted(children[node["id"]], key=lambda k: k["lft"])
        expected_width = 2 * _subtree_size(node["id"], children) - 1
        if node["rght"] - node["lft"] != expected_width:
            problems.append(f"node {node['name']} spans {node['lft']}..{node['rght']}, not its subtree's size.")
        previous_rght = node["lft"]
        for kid in kids:
            if not (node["lft"] < kid["lft"] and kid["rght"] < node["rght"]):
                problems.append(f"node {kid['name']} lies outside its parent {node['name']}.")
            if kid["lft"] <= previous_rght:
                problems.append(f"node {kid['name']} overlaps a sibling.")
            previous_rght = kid["rght"]
            stack.append((kid, depth + 1))
        if len(problems) > 50:
            return [*problems, "… (more)"]
    if seen != len(nodes):
        problems.append(f"{len(nodes) - seen} nodes are not reachable from the root (a cycle in parent links).")
    return problems


def _subtree_size(node_id: Any, children: dict[Any, list[dict[str, Any]]]) -> int:
    size, stack = 0, [node_id]
    while stack:
        current = stack.pop()
        size += 1
        stack.extend(k["id"] for k in children[current])
    return size
