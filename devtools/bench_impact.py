"""The benchmark's impact section (manage.py benchmark --only impact): the preview of a ~100-node subtree move.

On the 10k-org tenant (and the 100k-org one), added for the measurement and removed after it: a tenant
administrator, and declarations spread over the tree at random — credentials
(some locked), environment variables, lookup tables, local runtimes, settings (default_runtime, allowed_runtimes,
some locked), hides — and queued runs on random tasks. Then ``org_changes.preview_move`` of a random ~100-node
subtree (devtools.bench_tree's choice of subtrees) under a random org outside it, timed: p50/p95, the queries of a
preview and of each part's capture, and the entries it found. The issue's target: p95 ≤ 500 ms at 10k orgs.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

from django.db import connection, reset_queries, transaction
from django.test.utils import CaptureQueriesContext

from access.models import TenantMembership
from devtools.bench_impact_access import report_access, run_access
from devtools.bench_tree import TreeState, percentile, vacuum_org_table
from governance.impact import org_changes
from governance.impact.engine import Scope
from governance.impact.parts import PARTS
from orgs import services
from orgs.models import Organization, Tenant
from resources.models import Credential, EnvVar, Hidden, LookupTable, OrgSetting, Run, Task
from runtimes.models import Runtime

MOVE_SIZE = 100
SEED = 12
DECLARATIONS = {"credentials": 1000, "env_vars": 1000, "lookup_tables": 300, "runtimes": 100, "settings": 300,
                "hides": 200, "queued_runs": 500}  # fmt: skip


class _RolledBack(Exception):
    pass


def _queries(fn: Callable[[], Any]) -> int:
    reset_queries()
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx)


def _move_alone(actor: Any, org: Organization, parent: Organization) -> float:
    """The move itself, rolled back: what the preview costs on top of it is the preview's own work (ms)."""
    start = time.perf_counter()
    try:
        with transaction.atomic():
            services.move_org(actor=actor, org=org, parent=parent)
            raise _RolledBack
    except _RolledBack:
        pass
    return (time.perf_counter() - start) * 1000


def _declare(tenant: Tenant, rng: random.Random) -> list[Any]:
    """Declarations and queued runs at random orgs of the tenant (bulk inserts): the rows made, to remove after."""
    orgs = list(Organization.objects.filter(tenant=tenant, deleted_at__isnull=True).values_list("pk", flat=True))

    def some(n: int) -> list[Any]:
        return [rng.choice(orgs) for _ in range(n)]

    def unique(rows: list[tuple[Any, str]]) -> list[tuple[Any, str]]:
        return list({(org, name.lower()): (org, name) for org, name in rows}.values())

    names = [f"c{i}" for i in range(40)]
    made: list[Any] = []
    made += Credential.objects.bulk_create(
        Credential(org_id=o, name=n, kind=Credential.Kind.GENERIC, locked=rng.random() < 0.05)
        for o, n in unique([(o, rng.choice(names)) for o in some(DECLARATIONS["credentials"])])
    )
    made += EnvVar.objects.bulk_create(
        EnvVar(org_id=o, key=n.upper(), value="v", locked=rng.random() < 0.05)
        for o, n in unique([(o, rng.choice(names)) for o in some(DECLARATIONS["env_vars"])])
    )
    made += LookupTable.objects.bulk_create(
        LookupTable(org_id=o, name=n)
        for o, n in unique([(o, rng.choice(names)) for o in some(DECLARATIONS["lookup_tables"])])
    )
    runtime_names = ["eu-west", "us-east", "ap-south", "on-prem"]
    made += Runtime.objects.bulk_create(
        Runtime(org_id=o, name=n, locked=rng.random() < 0.1)
        for o, n in unique([(o, rng.choice(runtime_names)) for o in some(DECLARATIONS["runtimes"])])
    )
    settings = []
    for org, key in unique([(o, rng.choice(["default_runtime", "allowed_runtimes", "run_log_retention_days"]))
                            for o in some(DECLARATIONS["settings"])]):  # fmt: skip
        value: Any = {"default_runtime": rng.choice(runtime_names), "run_log_retention_days": rng.randint(1, 90),
                      "allowed_runtimes": rng.sample(runtime_names, 2)}[key]  # fmt: skip
        settings.append(OrgSetting(org_id=org, key=key, value=value, locked=rng.random() < 0.1))
    made += OrgSetting.objects.bulk_create(settings)
    made += Hidden.objects.bulk_create(
        Hidden(org_id=o, kind=Hidden.Kind.CREDENTIAL, name=n)
        for o, n in unique([(o, rng.choice(names)) for o in some(DECLARATIONS["hides"])])
    )
    tasks = list(Task.objects.filter(project__org__tenant=tenant).values_list("pk", flat=True))
    made += Run.objects.bulk_create(
        Run(task_id=rng.choice(tasks), steps=[]) for _ in range(DECLARATIONS["queued_runs"])
    )
    return made


def _fresh_statistics() -> None:
    """VACUUM (ANALYZE) the org table and ANALYZE the tables just filled, as a live database has them (devtools.scale
    does the same after its bulk load): otherwise the planner takes the new rows for none, and the row versions each
    rolled-back move leaves in the org table pile up under the later samples. PostgreSQL, outside a transaction."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    vacuum_org_table()
    tables = [m._meta.db_table for m in (Credential, EnvVar, LookupTable, Runtime, OrgSetting, Hidden, Run)]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(t) for t in tables))


def measure(tenant: Tenant, repeat: int) -> dict[str, Any]:
    """Previews of random ~100-node moves, each in its own transaction as in a request; what the section added to
    the tenant (declarations, runs, an administrator) is removed at the end."""
    rng = random.Random(SEED)  # noqa: S311 - a reproducible sample
    membership = TenantMembership.objects.filter(tenant=tenant).select_related("user").first()
    assert membership is not None, "the synthetic tenant has members"
    actor, was_admin = membership.user, membership.is_admin
    with transaction.atomic():
        TenantMembership.objects.filter(pk=membership.pk).update(is_admin=True)
        made = _declare(tenant, rng)
    try:
        _fresh_statistics()
        state = TreeState.load(tenant)
        movable = state.subtrees(MOVE_SIZE)
        nodes = {n.pk: n for n in state.nodes}
        samples: list[float] = []
        moves: list[float] = []
        queries: list[int] = []
        entries: list[int] = []
        sizes: list[int] = []
        parts: dict[str, list[int]] = {part.key: [] for part in PARTS}
        for i in range(repeat):
            if i and i % 10 == 0:
                _fresh_statistics()  # untimed: autovacuum's work on a live server
            node = rng.choice(movable)
            while True:
                target = rng.choice(state.nodes)
                if not (node.lft <= target.lft and target.rght <= node.rght) and target.pk != node.parent_id:
                    break
            org = Organization.objects.get(pk=node.pk)
            parent = Organization.objects.get(pk=target.pk)
            start = time.perf_counter()
            impact = org_changes.preview_move(actor=actor, org=org, parent=parent)
            samples.append((time.perf_counter() - start) * 1000)
            moves.append(_move_alone(actor, Organization.objects.get(pk=node.pk), parent))
            entries.append(sum(len(s.entries) for s in impact.sections))
            sizes.append(nodes[node.pk].size)
            if len(queries) < 5:
                queries.append(_queries(lambda o=org, p=parent: org_changes.preview_move(actor=actor, org=o,
                                                                                        parent=p)))  # fmt: skip
                for part in PARTS:
                    parts[part.key].append(_queries(lambda part=part, o=org: part.capture(Scope(root=o))))
        return {
            "orgs": len(state.nodes),
            "previews": repeat,
            "subtree_nodes": {"min": min(sizes), "max": max(sizes)},
            "p50_ms": round(percentile(samples, 0.5), 1),
            "p95_ms": round(percentile(samples, 0.95), 1),
            "move_alone_p50_ms": round(percentile(moves, 0.5), 1),
            "move_alone_p95_ms": round(percentile(moves, 0.95), 1),
            "load_average": round(os.getloadavg()[0], 2),
            "queries": {"min": min(queries), "max": max(queries)},
            "capture_queries": {key: max(counts) for key, counts in parts.items()},
            "entries_mean": round(sum(entries) / len(entries), 1),
            "declared": DECLARATIONS,
        }
    finally:
        with transaction.atomic():
            for model in (Run, Hidden, OrgSetting, Runtime, LookupTable, EnvVar, Credential):
                model.objects.filter(pk__in=[row.pk for row in made if type(row) is model]).delete()
            TenantMembership.objects.filter(pk=membership.pk).update(is_admin=was_admin)


def run(tenant: Tenant, large: Tenant | None, bench: Any) -> dict[str, Any]:
    """Measure on the 10k-org tenant and the 100k-org large one (None with --quick)."""
    repeat = max(20, bench.slow_repeat)
    bench.say(f"impact: {repeat} previews of a ~{MOVE_SIZE}-node move on {tenant.name}…")
    result = {"main": measure(tenant, repeat)}
    if large is not None:
        bench.say(f"impact: {repeat} previews on {large.name}…")
        result["large"] = measure(large, repeat)
    bench.say(f"impact: previews of a grant's removal and a setting lock on {tenant.name}…")
    result["access"] = run_access(tenant, bench)
    return result


def report(result: dict[str, Any], say: Callable[[str], None]) -> None:
    say("\nimpact: preview of a ~100-node subtree move (governance/impact: capabilities, declarations, runs)")
    if not result:
        say("  nothing measured")
        return
    say(
        f"  {'orgs':>7} {'nodes':>9} {'p50 ms':>8} {'p95 ms':>8} {'move alone':>12} {'queries':>9}  "
        "per part (capture)  entries  load"
    )
    for key in ("main", "large"):
        row = result.get(key)
        if not row:
            continue
        nodes = f"{row['subtree_nodes']['min']}-{row['subtree_nodes']['max']}"
        queries = f"{row['queries']['min']}-{row['queries']['max']}"
        parts = ", ".join(f"{k} {v}" for k, v in row["capture_queries"].items())
        alone = f"{row['move_alone_p50_ms']}/{row['move_alone_p95_ms']}"
        say(f"  {row['orgs']:>7} {nodes:>9} {row['p50_ms']:>8} {row['p95_ms']:>8} {alone:>12} {queries:>9}  {parts}  "
            f"{row['entries_mean']}  {row['load_average']}")  # fmt: skip
    main = result.get("main")
    if main:
        verdict = "meets" if main["p95_ms"] <= 500 else "MISSES"
        say(f"  target p95 ≤ 500 ms at 10k orgs: {verdict} ({main['p95_ms']} ms)")
    if "access" in result:
        report_access(result["access"], lambda line: say(f"  {line}"))
