"""A synthetic enterprise tenant for the benchmark and the load test: N orgs (a chain D deep plus a broad tree), U users
with one grant each, T work items. Bulk inserts with the nested set computed in one pass (no per-node mptt save).

Development only (the devtools app): ``manage.py seed_scale`` and ``manage.py benchmark`` build it.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.db.models import Max

from access.models import OrgUserGrant, TenantMembership
from access.services.grants import hold_role_permission_id, resolve_role
from orgs.models import Organization, Project, Tenant
from resources.models import Task

BATCH = 5000


def build_scale_tenant(
    *,
    name: str,
    orgs: int,
    depth: int,
    users: int,
    tasks: int,
    branching: int = 10,
    seed: int = 42,
    progress: Any = None,
) -> Tenant:
    """The tenant with its tree, people and work items. The chain's nodes are named chain-1 … chain-D; the user
    ``<name>-bench`` holds Integrator on chain-1 (the top of the chain)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible from the seed
    with transaction.atomic():
        tenant = Tenant.objects.create(name=name, plan=Tenant.Plan.PAID)
        tree_id = (Organization.objects.aggregate(m=Max("tree_id"))["m"] or 0) + 1
        nodes = _plan_tree(tenant, tree_id, orgs, depth, branching)
        _bulk(Organization, nodes, "orgs", progress)
        _people(tenant, name, users, nodes, rng, progress)
        _work_items(nodes, tasks, rng, progress)
    if connection.vendor == "postgresql":
        # Fresh statistics: right after a bulk load the planner still believes the tables are tiny or empty
        # and picks sequential scans (a 50-row page took 38 ms instead of 4 ms before this).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return tenant


def _plan_tree(tenant: Tenant, tree_id: int, total: int, depth: int, branching: int) -> list[Organization]:
    """Root, a chain of ``depth`` under it, and breadth-first children (``branching`` each) for the rest; then one
    depth-first pass assigns lft/rght/level."""
    root = Organization(id=uuid.uuid4(), tenant=tenant, parent=None, name=tenant.name)
    children: dict[uuid.UUID, list[Organization]] = {root.id: []}
    nodes = [root]
    parent = root
    for i in range(1, depth + 1):
        node = Organization(id=uuid.uuid4(), tenant=tenant, parent_id=parent.id, name=f"chain-{i}")
        children[parent.id].append(node)
        children[node.id] = []
        nodes.append(node)
        parent = node
    queue = [root]
    head = 0
    index = 0
    while len(nodes) < total:
        parent = queue[head]
        if len(children[parent.id]) >= branching + (1 if parent is root else 0):
            head += 1
            continue
        index += 1
        node = Organization(id=uuid.uuid4(), tenant=tenant, parent_id=parent.id, name=f"org-{index}")
        children[parent.id].append(node)
        children[node.id] = []
        nodes.append(node)
        queue.append(node)
    counter = 1
    stack: list[tuple[Organization, int, bool]] = [(root, 0, False)]
    while stack:
        node, level, done = stack.pop()
        if done:
            node.rght = counter
            counter += 1
            continue
        node.tree_id, node.level, node.lft = tree_id, level, counter
        counter += 1
        stack.append((node, level, True))
        for child in reversed(children[node.id]):
            stack.append((child, level + 1, False))
    return nodes


def _bulk(model: Any, rows: list[Any], label: str, progress: Any) -> None:
    for start in range(0, len(rows), BATCH):
        model.objects.bulk_create(rows[start : start + BATCH], batch_size=BATCH)
        if progress:
            progress(label, min(start + BATCH, len(rows)), len(rows))


def _people(tenant: Tenant, name: str, count: int, nodes: list[Organization], rng: random.Random, progress: Any) -> Any:
    User = get_user_model()
    password = make_password(None)  # unusable: benchmark users never log in
    slug = name.lower().replace(" ", "-")
    users = [User(username=f"{slug}-user-{i}", email=f"u{i}@{slug}.example", password=password) for i in range(count)]
    bench = User(username=f"{slug}-bench", email=f"bench@{slug}.example", password=password)
    _bulk(User, [*users, bench], "users", progress)
    TenantMembership.objects.bulk_create(
        [TenantMembership(tenant=tenant, user=u) for u in [*users, bench]], batch_size=BATCH
    )
    root = nodes[0]
    roles = {key: resolve_role(root, key) for key in ("admin", "integrator", "guest")}
    permission = hold_role_permission_id(root)
    grants = [
        OrgUserGrant(user=u, content_object=rng.choice(nodes), role=roles[rng.choice(list(roles))],
                     permission_id=permission)
        for u in users
    ]  # fmt: skip
    chain_top = next(n for n in nodes if n.name == "chain-1")
    grants.append(OrgUserGrant(user=bench, content_object=chain_top, role=roles["integrator"],
                               permission_id=permission))  # fmt: skip
    _bulk(OrgUserGrant, grants, "grants", progress)
    return bench


def _work_items(nodes: list[Organization], count: int, rng: random.Random, progress: Any) -> None:
    """``count`` integration tasks, ten per project, the projects on random orgs."""
    projects = [
        Project(id=uuid.uuid4(), org=rng.choice(nodes), name=f"project-{i}") for i in range(max(1, count // 10))
    ]
    _bulk(Project, projects, "projects", progress)
    steps = [{"type": "log", "message": "hello"}]
    tasks = [Task(project=projects[i % len(projects)], name=f"task-{i}", steps=steps) for i in range(count)]
    _bulk(Task, tasks, "tasks", progress)
