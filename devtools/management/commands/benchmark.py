"""python manage.py benchmark [--quick] [--json PATH]

Measures, in one run on the configured database: can() at depth 1/10/50/100 (queries, p50, p95, cached p50) next to
peers deciding the same checks (a naive guardian walk, cedarpy, pycasbin); a visible() page of 50 integration tasks at
10k (and 100k) orgs; tree writes at random positions (org create, ~100-node subtree move: latency and rows rewritten
per write) at 10k (and 100k) orgs, and writers in 8 other tenants alone and while the 10k tenant writes; the switcher
page and authorized API retrieve/list through the test client; runtimes (PostgreSQL: a real server and agents,
side by side with procrastinate: devtools/bench_runtimes.py). The synthetic tenants are built by seed_scale on first
use and kept; what the tree writes create is removed again.
"""

from __future__ import annotations

import json
import os
import platform
import random
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, reset_queries
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from access import policy
from access.services import issue_token
from devtools import bench, bench_impact, bench_review, bench_rollup, bench_runtimes, bench_tree
from devtools.scale import build_scale_tenant
from orgs.models import Organization, Tenant
from resources.models import Task

DEPTHS = (1, 10, 20, 50, 100)
# Sections measured on the synthetic tenants by a module of their own: ``run(tenant, large, bench) -> dict`` (``bench``
# is this command: its ``repeat``, ``slow_repeat``, ``say``) and ``report(result, say)``.
MODULES = {"rollup": bench_rollup, "impact": bench_impact, "review": bench_review}
SECTIONS = ("checks", "peers", "list", "tree_writes", "api", "runtimes", *MODULES)
SCALE_SECTIONS = {"checks", "peers", "list", "tree_writes", "api", *MODULES}  # the ones that need the synthetic tenants


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
        parser.add_argument(
            "--writers",
            type=int,
            default=8,
            help="Writers in other tenants during the tree-write measurement (PostgreSQL; 0: none).",
        )
        parser.add_argument("--writer-orgs", type=int, help="Size of each writer's tenant (default 1000, 200 quick).")
        parser.add_argument(
            "--writer-seconds",
            type=float,
            help="How long the writers write, alone and then with the measured tenant busy "
            "(default 20, 3 with --quick).",
        )
        parser.add_argument("--only", help=f"Comma-separated sections to run (default all: {', '.join(SECTIONS)}).")
        parser.add_argument(
            "--lost",
            choices=["compute", "measure"],
            help="runtimes: how long a killed agent's run takes to be declared lost — measure it (kill -9 with the "
            "reaper running, ~40 s; the full run's default) or compute it from the settings and a timed sweep "
            "(--quick's default).",
        )
        parser.add_argument(
            "--runtime-runs", type=int, help="runtimes: no-op runs for the throughput (default 2000, 200 with --quick)."
        )
        parser.add_argument("--writer-pause-ms", type=float, default=200.0,
                            help="Each writer's pause after a create and after a move there and back "
                                 "(default 200).")  # fmt: skip

    def handle(self, *args: Any, **opts: Any) -> None:
        quick = opts["quick"]
        self.repeat = opts["repeat"] or (200 if quick else 1000)
        self.slow_repeat = max(3, min(50, self.repeat // 10))  # for measurements that take milliseconds each
        size = opts["orgs"] or (2_000 if quick else 10_000)
        self.say(f"Canopy benchmark on {connection.vendor} ({'quick' if quick else 'full'}); building data if needed…")
        only = set(opts["only"].split(",")) if opts["only"] else set(SECTIONS)
        if unknown := only - set(SECTIONS):
            raise CommandError(f"Unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}.")
        scaled = bool(only & SCALE_SECTIONS)
        tenant = self.scale_tenant(size) if scaled else None
        large = self.scale_tenant(100_000) if scaled and not quick else None
        result: dict[str, Any] = {
            "machine": {
                "cpus": _cpus(),
                "python": platform.python_version(),
                "database": connection.vendor,
                "platform": platform.platform(),
            },
            "quick": quick,
        }
        if "peers" in only:
            only.add("checks")  # the peers' ratios are to Canopy's own figures
        if tenant is not None:
            self.scaled(result, tenant, large, only, opts)
        if "runtimes" in only:
            bench_opts = bench_runtimes.options(quick, opts["lost"], self.say)
            if opts["runtime_runs"]:
                bench_opts.throughput_runs = opts["runtime_runs"]
            result["runtimes"] = bench_runtimes.run(bench_opts)
        self.report(result)
        if opts["json_path"]:
            with open(opts["json_path"], "w") as out:
                json.dump(result, out, indent=2, default=str)
            self.say(f"JSON written to {opts['json_path']}")

    def scaled(self, result: dict[str, Any], tenant: Tenant, large: Tenant | None, only: set[str],
               opts: dict[str, Any]) -> None:  # fmt: skip
        """The sections measured on the synthetic tenants."""
        user = self.bench_user(tenant)
        chain = {d: Organization.objects.get(tenant=tenant, name=f"chain-{d}") for d in DEPTHS}
        if "checks" in only:
            result["checks"] = self.checks(user, chain)
        if "peers" in only:
            result["peers"] = self.peers(tenant, user, chain, result["checks"])
        if "list" in only:
            result["list"] = self.lists(tenant, large)
        if "tree_writes" in only:
            result["tree_writes"] = self.tree_writes(tenant, large, opts)
        if "api" in only:
            result["api"] = self.pages(tenant, user, chain)
        for name, module in MODULES.items():
            if name in only:
                result[name] = module.run(tenant, large, self)

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
        # A running server's steady state: the tenant's authentication rules (access/fences.py) are cached already.
        policy.can(self.fresh(user), "task.run", next(iter(chain.values())))
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
    def tree_writes(self, tenant: Tenant, large: Tenant | None, opts: dict[str, Any]) -> dict[str, Any]:
        """Creates and ~100-node moves at random places (bench_tree), at each scale; then writers in other tenants
        alone and while the main tenant writes back to back."""
        quick = opts["quick"]
        vacuumed = bench_tree.vacuum_org_table()
        creates = max(3, self.slow_repeat)
        pairs = max(2, self.slow_repeat // 4)  # each pair is two measured moves: away and back home
        scales = {}
        for label, t, n_creates, n_pairs in (
            (_label(tenant), tenant, creates, pairs),
            ("100k", large, max(3, creates // 2), max(2, pairs // 2)),
        ):
            if t is not None:
                scales[label] = bench_tree.measure_scale(t, creates=n_creates, move_pairs=n_pairs, seed=11)
        concurrent: dict[str, Any] = {"skipped": "--writers 0"}
        if opts["writers"] > 0:
            concurrent = bench_tree.concurrency_unavailable() or {}
            if not concurrent:
                size = opts["writer_orgs"] or (200 if quick else 1_000)
                others = [self.writer_tenant(i, size) for i in range(opts["writers"])]
                seconds = opts["writer_seconds"] or (3.0 if quick else 20.0)
                concurrent = bench_tree.concurrent(tenant, others, seconds=seconds,
                                                   pause=opts["writer_pause_ms"] / 1000, seed=23)  # fmt: skip
        return {
            "method": {
                "positions": "create: under a parent drawn uniformly from the tenant's orgs; move: a subtree of "
                "about 100 nodes under a target drawn the same way, then back home (both moves measured)",
                "rows_rewritten": "PostgreSQL: row versions written to the org table by the write "
                "(pg_stat_get_xact_tuples_updated delta inside its transaction); SQLite: rows_changed",
                "rows_changed": "rows whose lft, rght, level or parent differ after the write (snapshot comparison)",
                "vacuumed_before": vacuumed,
            },
            "scales": scales,
            "concurrent": concurrent,
        }

    def writer_tenant(self, index: int, orgs: int) -> Tenant:
        name = f"Bench-writer-{index}-{orgs}"
        tenant = Tenant.objects.filter(name=name).first()
        if tenant is None:
            tenant = build_scale_tenant(name=name, orgs=orgs, depth=10, users=5, tasks=0, seed=100 + index)
        return tenant

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
        for name, module in MODULES.items():
            if name in r:
                module.report(r[name], self.say)
        if "checks" in r:
            self.report_checks(r)
        if "list" in r:
            self.say("\nvisible() page of 50 integration tasks")
            for label, row in r["list"].items():
                self.say(f"  {label} ({row['orgs']} orgs): filter {row['filter_queries']} query, total "
                         f"{row['queries']}; p50 {row['p50_us']} µs, p95 {row['p95_us']} µs")  # fmt: skip
        if "tree_writes" in r:
            self.report_tree_writes(r["tree_writes"])
        if "runtimes" in r:
            bench_runtimes.report(r["runtimes"], self.say)
        if "api" in r:
            self.say("\npages through the test client")
            for label, row in r["api"].items():
                self.say(f"  {label}: HTTP {row['status']}, {row['queries']} queries, p50 {row['p50_us']} µs, "
                         f"p95 {row['p95_us']} µs")  # fmt: skip

    def report_checks(self, r: dict[str, Any]) -> None:
        self.say("\ncan(user, 'task.run', org at depth d) — the grant sits at the top of the chain")
        self.say(f"  {'depth':>5} {'queries':>7} {'p50 µs':>9} {'p95 µs':>9} {'cached p50':>10} {'cached q':>8}")
        for row in r["checks"]:
            self.say(f"  {row['depth']:>5} {row['queries']:>7} {row['p50_us']:>9} {row['p95_us']:>9} "
                     f"{row['cached_p50_us']:>10} {row['cached_queries']:>8}")  # fmt: skip
        self.say("\npeers on the same decisions (ratio = peer p50 / Canopy p50; >1 means Canopy is faster)")
        for name, peer in r.get("peers", {}).items():
            agree = "agrees" if peer["agrees"] else f"DISAGREES on {peer['mismatches']}/{peer['checked']}"
            self.say(f"  {name}: {agree} on {peer['checked']} checks; load {peer['load_s']} s, "
                     f"+{peer['memory_mb']} MB")  # fmt: skip
            for row in peer["checks"]:
                extra = f" q={row['queries']}" if "queries" in row else ""
                self.say(f"    depth {row['depth']:>3}: p50 {row['p50_us']:>9} µs  p95 {row['p95_us']:>9} µs  "
                         f"vs uncached ×{row['canopy_uncached_ratio']}  vs cached ×{row['canopy_cached_ratio']}"
                         f"{extra}")  # fmt: skip

    def report_tree_writes(self, tw: dict[str, Any]) -> None:
        self.say("\ntree writes through the services, one at a time (rows = row versions written to the org table; "
                 "changed = rows whose tree columns changed; position 0 = start of the tree, 1 = its end)")  # fmt: skip
        self.say("  (cpu = CPU time of the app thread and its PostgreSQL backend: the write's cost without the "
                 "wait for a core on a busy machine)")  # fmt: skip
        self.say(f"  {'tenant':<7} {'write':<20} {'n':>3} {'p50 ms':>7} {'p95 ms':>7} {'cpu p50':>7} {'cpu p95':>7} "
                 f"{'rows p50':>8} {'rows p95':>8} {'changed p50':>11} {'position p50 [min, max]':>24}")  # fmt: skip
        for label, scale in tw["scales"].items():
            for key, title in (("create_random", "create (random)"), ("move_random", "move (random)"),
                               ("create_at_end", "create at the end")):  # fmt: skip
                row = scale[key]
                if not row.get("samples"):
                    continue
                if key == "move_random":
                    title = f"move {row['nodes']} nodes"
                rows, changed, pos = row.get("rows_rewritten", {}), row.get("rows_changed", {}), row["position"]
                cpu50 = _ms(row["cpu_p50_us"]) if "cpu_p50_us" in row else "-"
                cpu95 = _ms(row["cpu_p95_us"]) if "cpu_p95_us" in row else "-"
                self.say(f"  {label:<7} {title:<20} {row['samples']:>3} {_ms(row['p50_us']):>7} "
                         f"{_ms(row['p95_us']):>7} {cpu50:>7} {cpu95:>7} {rows.get('p50', '-'):>8} "
                         f"{rows.get('p95', '-'):>8} "
                         f"{changed.get('p50', '-'):>11} {pos['p50']:>8} [{pos['min']}, {pos['max']}]")  # fmt: skip
            if "table" in scale:
                before, after = scale["table"]["before"], scale["table"]["after"]
                self.say(f"  {'':<7} org table {before['table_mb']} → {after['table_mb']} MB, its indexes "
                         f"{before['indexes_mb']} → {after['indexes_mb']} MB over these writes")  # fmt: skip
        cc = tw["concurrent"]
        if "skipped" in cc:
            self.say(f"  writers in other tenants: skipped ({cc['skipped']})")
            return
        self.say(f"\n  {cc['writers']} writers in other tenants ({cc['writer_orgs']} orgs each, {cc['pause_ms']} ms "
                 f"pause, {cc['seconds']} s): p50 / p95 ms alone → with the {cc['measured_orgs']}-org tenant "
                 f"writing back to back")  # fmt: skip
        for kind in ("create", "move"):
            o = cc[f"others_{kind}"]
            a, b = o["alone"], o["with_busy_tenant"]
            cpu = ""
            if "cpu_p50_us" in a and "cpu_p50_us" in b:
                cpu = f"; cpu p50 {_ms(a['cpu_p50_us'])} → {_ms(b['cpu_p50_us'])}"
            self.say(f"    their {kind}: {_ms(a['p50_us'])} / {_ms(a['p95_us'])} → {_ms(b['p50_us'])} / "
                     f"{_ms(b['p95_us'])}  (×{o['p50_ratio']} / ×{o['p95_ratio']}; {a['samples']} → "
                     f"{b['samples']} writes{cpu})")  # fmt: skip
        for kind in ("create", "move"):
            m = cc[f"measured_{kind}"]
            if m.get("samples"):
                rows = m.get("rows_rewritten", {})
                self.say(f"    meanwhile the measured tenant's {kind}: p50 {_ms(m['p50_us'])} ms, p95 "
                         f"{_ms(m['p95_us'])} ms, cpu p50 {_ms(m.get('cpu_p50_us', 0))} ms, rows p50 "
                         f"{rows.get('p50', '-')} ({m['samples']} writes)")  # fmt: skip


def _ms(us: float) -> str:
    return f"{us / 1000:.1f}"


def _label(tenant: Tenant) -> str:
    return "10k" if tenant.name.endswith("10000") else "small"


def _cpus() -> int:
    return os.cpu_count() or 0
