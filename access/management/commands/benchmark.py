"""python manage.py benchmark [--quick] [--json PATH]

Measures, in one run on the configured database: can() at depth 1/10/50/100 (queries, p50, p95, cached p50) next to
peers deciding the same checks (a naive guardian walk, cedarpy, pycasbin); a visible() page of 50 integration tasks at
10k (and 100k) orgs; org create and a 100-node subtree move in a 10k-org tenant; the switcher page and authorized
API retrieve/list through the test client. The synthetic tenants are built by seed_scale on first use and kept.
"""

from __future__ import annotations

import json
import platform
import random
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, reset_queries
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from access import bench, policy
from access.services import issue_token
from orgs import services
from orgs.management.commands.seed_scale import build_scale_tenant
from orgs.models import Organization, Tenant
from resources.models import Task

DEPTHS = (1, 10, 20, 50, 100)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn: Callable[[], Any], repeat: int, setup: Callable[[], Any] | None = None) -> dict[str, float]:
    """p50/p95 in microseconds of ``fn`` over ``repeat`` runs (``setup`` runs before each, untimed)."""
    samples = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return {"p50_us": round(percentile(samples, 0.5), 1), "p95_us": round(percentile(samples, 0.95), 1)}


def count_queries(fn: Callable[[], Any]) -> int:
    reset_queries()  # the query log is a bounded deque: a full one would count nothing
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx)


class Command(BaseCommand):
    help = "Benchmark authorization, lists, tree writes and pages against peers; prints a table, writes JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quick", action="store_true", help="Small tenants and fewer repetitions (< 2 min).")
        parser.add_argument("--json", dest="json_path", help="Write the results to this file.")
        parser.add_argument("--repeat", type=int, help="Timed runs per measurement (default 1000, 200 with --quick).")
        parser.add_argument("--orgs", type=int, help="Size of the main tenant (default 10000, 2000 with --quick).")

    def handle(self, *args: Any, **opts: Any) -> None:
        quick = opts["quick"]
        self.repeat = opts["repeat"] or (200 if quick else 1000)
        self.slow_repeat = max(3, min(50, self.repeat // 10))  # for measurements that take milliseconds each
        size = opts["orgs"] or (2_000 if quick else 10_000)
        self.say(f"Canopy benchmark on {connection.vendor} ({'quick' if quick else 'full'}); building data if needed…")
        tenant = self.scale_tenant(size)
        large = self.scale_tenant(100_000) if not quick else None
        result: dict[str, Any] = {
            "machine": {
                "cpus": _cpus(),
                "python": platform.python_version(),
                "database": connection.vendor,
                "platform": platform.platform(),
            },
            "quick": quick,
        }
        user = self.bench_user(tenant)
        chain = {d: Organization.objects.get(tenant=tenant, name=f"chain-{d}") for d in DEPTHS}
        result["checks"] = self.checks(user, chain)
        result["peers"] = self.peers(tenant, user, chain, result["checks"])
        result["list"] = self.lists(tenant, large)
        result["tree_writes"] = self.tree_writes(tenant)
        result["api"] = self.pages(tenant, user, chain)
        self.report(result)
        if opts["json_path"]:
            with open(opts["json_path"], "w") as out:
                json.dump(result, out, indent=2)
            self.say(f"JSON written to {opts['json_path']}")

    # -- data ------------------------------------------------------------------------------------------------------
    def scale_tenant(self, orgs: int) -> Tenant:
        name = f"Bench-{orgs}"
        tenant = Tenant.objects.filter(name=name).first()
        if tenant is None:
            start = time.perf_counter()
            tenant = build_scale_tenant(name=name, orgs=orgs, depth=100, users=max(200, orgs // 10),
                                        tasks=orgs, seed=7)  # fmt: skip
            self.say(f"  built {name} in {time.perf_counter() - start:.1f} s")
        return tenant

    def bench_user(self, tenant: Tenant) -> Any:
        return get_user_model().objects.get(username=f"{tenant.name.lower()}-bench")

    def fresh(self, user: Any) -> Any:
        policy.forget(user)
        return user

    # -- can() -----------------------------------------------------------------------------------------------------
    def checks(self, user: Any, chain: dict[int, Organization]) -> list[dict[str, Any]]:
        rows = []
        for depth, org in chain.items():
            queries = count_queries(lambda org=org: policy.can(self.fresh(user), "task.run", org))
            uncached = timed(lambda org=org: policy.can(user, "task.run", org), self.repeat,
                             setup=lambda: policy.forget(user))  # fmt: skip
            policy.can(user, "task.run", org)
            cached_queries = count_queries(lambda org=org: policy.can(user, "task.view", org))
            cached = timed(lambda org=org: policy.can(user, "task.view", org), self.repeat)
            rows.append({"depth": depth, "queries": queries, "cached_queries": cached_queries, **uncached,
                         "cached_p50_us": cached["p50_us"]})  # fmt: skip
        return rows

    def peers(self, tenant: Tenant, user: Any, chain: dict[int, Organization], checks: list[dict]) -> dict:
        """Same decisions, same data: every peer must agree with Canopy on a sample before it is timed."""
        rng = random.Random(3)  # noqa: S311 - a reproducible sample
        orgs = list(Organization.objects.filter(tenant=tenant).order_by("?")[:40]) + list(chain.values())
        users = [user, *get_user_model().objects.filter(username__startswith=f"{tenant.name.lower()}-user-")[:15]]
        caps = ["org.view", "task.run", "envvar.manage", "member.manage"]
        sample = [(rng.choice(users), rng.choice(caps), rng.choice(orgs)) for _ in range(min(150, self.repeat * 10))]
        sample += [(user, cap, org) for org in chain.values() for cap in caps]
        expected = [policy.can(self.fresh(u), c, o) for u, c, o in sample]
        out: dict[str, Any] = {}
        engines: list[Any] = [bench.NaiveGuardian(), bench.CedarPeer(tenant), bench.CasbinPeer(tenant, max(DEPTHS))]
        canopy = {row["depth"]: row for row in checks}
        for engine in engines:
            answers = [engine.can(u, c, o) for u, c, o in sample]
            mismatches = sum(a != e for a, e in zip(answers, expected, strict=True))
            entry: dict[str, Any] = {"agrees": mismatches == 0, "mismatches": mismatches, "checked": len(sample),
                                     "load_s": round(engine.load_s, 2), "memory_mb": round(engine.memory_mb, 1),
                                     "checks": []}  # fmt: skip
            repeat = self.slow_repeat if engine.name == "naive_guardian" else max(3, self.repeat // 2)
            for depth, org in chain.items():
                timing = timed(lambda org=org, e=engine: e.can(user, "task.run", org), repeat)
                row = {"depth": depth, **timing}
                if engine.name == "naive_guardian":
                    row["queries"] = count_queries(lambda org=org, e=engine: e.can(user, "task.run", org))
                row["canopy_uncached_ratio"] = round(timing["p50_us"] / canopy[depth]["p50_us"], 2)
                row["canopy_cached_ratio"] = round(timing["p50_us"] / max(canopy[depth]["cached_p50_us"], 0.01), 2)
                entry["checks"].append(row)
            out[engine.name] = entry
        return out

    # -- lists -----------------------------------------------------------------------------------------------------
    def lists(self, tenant: Tenant, large: Tenant | None) -> dict[str, Any]:
        out = {}
        for label, t in (("10k" if tenant.name.endswith("10000") else "small", tenant), ("100k", large)):
            if t is None:
                continue
            user = self.bench_user(t)
            orgs = Organization.objects.filter(tenant=t).count()

            def page(user: Any = user) -> list[Any]:
                return list(policy.visible(user, "task.view", Task.objects.all()).order_by("name")[:50])

            self.fresh(user)
            policy.access_for(user).subtree_rows  # noqa: B018 - load the grants, then count the filter alone
            filter_queries = count_queries(page)
            total_queries = count_queries(lambda user=user: page(self.fresh(user)))
            timing = timed(lambda: page(), self.slow_repeat, setup=lambda user=user: self.fresh(user))
            out[label] = {"orgs": orgs, "rows": len(page()), "filter_queries": filter_queries,
                          "queries": total_queries, **timing}  # fmt: skip
        return out

    # -- tree writes -----------------------------------------------------------------------------------------------
    def tree_writes(self, tenant: Tenant) -> dict[str, Any]:
        root = Organization.objects.get(tenant=tenant, parent__isnull=True)
        counter = iter(range(10**9))
        create = timed(
            lambda: services.create_org(actor=None, parent=root, name=f"bench-new-{time.time_ns()}-{next(counter)}"),
            self.slow_repeat,
        )
        nodes = Organization.objects.filter(tenant=tenant, level__gte=1).exclude(name__startswith="chain-")
        subtree = min(
            nodes.only("pk", "lft", "rght", "level")[:5000], key=lambda o: abs((o.rght - o.lft + 1) // 2 - 100)
        )
        size = (subtree.rght - subtree.lft + 1) // 2
        parents = [
            Organization.objects.get(tenant=tenant, name="chain-1"),
            Organization.objects.get(pk=subtree.parent_id),
        ]
        moves = []
        for i in range(2 * max(1, min(5, self.slow_repeat // 2))):  # even: the subtree ends where it began
            target = parents[i % 2]
            start = time.perf_counter_ns()
            services.move_org(actor=None, org=subtree, parent=target)
            moves.append((time.perf_counter_ns() - start) / 1000)
        return {"orgs": Organization.objects.filter(tenant=tenant).count(), "create_org": create,
                "move_subtree": {"nodes": size, "p50_us": round(percentile(moves, 0.5), 1),
                                 "p95_us": round(percentile(moves, 0.95), 1)}}  # fmt: skip

    # -- pages -----------------------------------------------------------------------------------------------------
    def pages(self, tenant: Tenant, user: Any, chain: dict[int, Organization]) -> dict[str, Any]:
        out = {}
        _, raw = issue_token(user=user, name="benchmark")
        api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
        console = Client()
        console.force_login(user)
        target = chain[50]
        hosts = [*settings.ALLOWED_HOSTS, "testserver"]
        with override_settings(ALLOWED_HOSTS=hosts, SECURE_SSL_REDIRECT=False, DEBUG=False):
            for label, client, path in (
                ("switcher_page", console, f"/o/{target.pk}/"),
                ("api_retrieve", api, f"/api/v1/orgs/{target.pk}"),
                ("api_list", api, "/api/v1/orgs?page_size=50"),
            ):
                client.get(path)
                reset_queries()
                queries = count_queries(lambda c=client, p=path: c.get(p))
                status = client.get(path).status_code
                repeat = self.slow_repeat
                out[label] = {"status": status, "queries": queries,
                              **timed(lambda c=client, p=path: c.get(p), repeat)}  # fmt: skip
        return out

    # -- output ----------------------------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.stdout.write(text)

    def report(self, r: dict[str, Any]) -> None:
        self.say("\ncan(user, 'task.run', org at depth d) — the grant sits at the top of the chain")
        self.say(f"  {'depth':>5} {'queries':>7} {'p50 µs':>9} {'p95 µs':>9} {'cached p50':>10} {'cached q':>8}")
        for row in r["checks"]:
            self.say(f"  {row['depth']:>5} {row['queries']:>7} {row['p50_us']:>9} {row['p95_us']:>9} "
                     f"{row['cached_p50_us']:>10} {row['cached_queries']:>8}")  # fmt: skip
        self.say("\npeers on the same decisions (ratio = peer p50 / Canopy p50; >1 means Canopy is faster)")
        for name, peer in r["peers"].items():
            agree = "agrees" if peer["agrees"] else f"DISAGREES on {peer['mismatches']}/{peer['checked']}"
            self.say(f"  {name}: {agree} on {peer['checked']} checks; load {peer['load_s']} s, "
                     f"+{peer['memory_mb']} MB")  # fmt: skip
            for row in peer["checks"]:
                extra = f" q={row['queries']}" if "queries" in row else ""
                self.say(f"    depth {row['depth']:>3}: p50 {row['p50_us']:>9} µs  p95 {row['p95_us']:>9} µs  "
                         f"vs uncached ×{row['canopy_uncached_ratio']}  vs cached ×{row['canopy_cached_ratio']}"
                         f"{extra}")  # fmt: skip
        self.say("\nvisible() page of 50 integration tasks")
        for label, row in r["list"].items():
            self.say(f"  {label} ({row['orgs']} orgs): filter {row['filter_queries']} query, total "
                     f"{row['queries']}; p50 {row['p50_us']} µs, p95 {row['p95_us']} µs")  # fmt: skip
        tw = r["tree_writes"]
        self.say(f"\ntree writes in a {tw['orgs']}-org tenant")
        self.say(f"  create org: p50 {tw['create_org']['p50_us']} µs, p95 {tw['create_org']['p95_us']} µs")
        mv = tw["move_subtree"]
        self.say(f"  move a {mv['nodes']}-node subtree: p50 {mv['p50_us']} µs, p95 {mv['p95_us']} µs")
        self.say("\npages through the test client")
        for label, row in r["api"].items():
            self.say(f"  {label}: HTTP {row['status']}, {row['queries']} queries, p50 {row['p50_us']} µs, "
                     f"p95 {row['p95_us']} µs")  # fmt: skip


def _cpus() -> int:
    import os

    return os.cpu_count() or 0
