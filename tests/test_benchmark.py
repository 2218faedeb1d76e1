"""The benchmark's peers must decide exactly like Canopy, or their timings mean nothing; the command must run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from access import policy
from access.roles import CAPABILITIES
from devtools import bench, bench_runtimes, bench_tree
from devtools.scale import build_scale_tenant
from orgs.integrity import tree_problems
from orgs.models import Organization
from resources.models import Run


@pytest.fixture
def scale(db):
    return build_scale_tenant(name="Peers", orgs=120, depth=30, users=25, tasks=10, seed=1)


def test_every_peer_agrees_with_canopy_on_every_org_and_capability(scale):
    users = list(get_user_model().objects.filter(username__startswith="peers-"))
    orgs = list(Organization.objects.filter(tenant=scale))
    peers = [bench.NaiveGuardian(), bench.CedarPeer(scale), bench.CasbinPeer(scale, max_depth=30)]
    for user in users[:5]:
        for org in orgs[::13] + [o for o in orgs if o.name == "chain-30"]:
            for capability in CAPABILITIES[::5]:
                expected = policy.can(user, capability, org)
                for peer in peers:
                    assert peer.can(user, capability, org) == expected, (peer.name, user.username, org.name, capability)


def test_casbin_would_silently_deny_deep_paths_with_its_default_hierarchy_limit(scale):
    bench_user = get_user_model().objects.get(username="peers-bench")
    deep = Organization.objects.get(tenant=scale, name="chain-30")
    assert policy.can(bench_user, "task.run", deep)
    assert bench.CasbinPeer(scale, max_depth=30).can(bench_user, "task.run", deep)
    # the peer's pitfall: Casbin's role hierarchy stops at a fixed depth, so a deep grant silently stops applying
    assert not bench.CasbinPeer(scale, max_depth=2).can(bench_user, "task.run", deep)


def test_the_quick_benchmark_runs_and_writes_its_json(db, tmp_path, settings):
    path = tmp_path / "bench.json"

    out = StringIO()
    call_command("benchmark", "--quick", "--json", str(path), "--orgs", "300", "--repeat", "5", stdout=out)
    data = json.loads(path.read_text())
    assert {"checks", "peers", "list", "tree_writes", "api"} <= set(data)
    assert [row["queries"] for row in data["checks"]] == [1] * len(data["checks"])
    assert all(row["cached_queries"] == 0 for row in data["checks"])
    assert all(peer["agrees"] for peer in data["peers"].values())
    assert all(page["status"] == 200 for page in data["api"].values())
    assert "peers on the same decisions" in out.getvalue()


def test_the_quick_benchmark_measures_tree_writes_at_random_positions(db, tmp_path):
    path = tmp_path / "bench.json"
    call_command("benchmark", "--quick", "--only", "tree_writes", "--json", str(path), "--orgs", "300",
                 "--repeat", "5", stdout=StringIO())  # fmt: skip
    tree_writes = json.loads(path.read_text())["tree_writes"]
    scale = tree_writes["scales"]["small"]
    assert scale["orgs"] == 300
    creates, moves, at_end = scale["create_random"], scale["move_random"], scale["create_at_end"]
    assert creates["samples"] >= 3 and moves["samples"] >= 4 and at_end["samples"] >= 3
    # random positions: not only the end of the tree, where a create renumbers nothing but the root
    assert creates["position"]["min"] < 0.9 and moves["position"]["min"] < 0.9
    assert at_end["position"] == {"min": 1.0, "p50": 1.0, "max": 1.0} and at_end["rows_rewritten"]["p95"] == 1
    assert creates["rows_rewritten"]["p50"] > 0 and moves["rows_rewritten"]["p50"] > 0
    assert moves["rows_changed"]["p50"] >= moves["nodes"] > 1
    for row in (creates, moves, at_end):
        assert 0 < row["p50_us"] <= row["p95_us"]
    assert "skipped" in tree_writes["concurrent"]  # inside the test's transaction the writers could see nothing
    assert Organization.objects.filter(name__startswith="bench-new-").count() == 0  # what it created is gone
    assert tree_problems() == []


def test_a_create_in_the_middle_of_the_tree_counts_every_row_it_renumbers(scale):
    writer = bench_tree.TreeWriter(scale, seed=1)
    middle = sorted(writer.state.nodes, key=lambda n: n.lft)[len(writer.state.nodes) // 2]
    parent = Organization.objects.get(pk=middle.pk)
    # the parent, its ancestors and everything to its right: every row whose rght is at least the parent's
    expected = Organization.objects.filter(tree_id=parent.tree_id, rght__gte=parent.rght).count()
    sample = writer.create(next(n for n in writer.state.nodes if n.pk == middle.pk))
    assert 1 < expected < 120
    assert sample.rows_changed == expected
    assert sample.rows_rewritten == expected  # PostgreSQL: row versions counted by the server; SQLite: the same
    assert 0 < sample.position < 1
    writer.cleanup()
    assert tree_problems(scale) == []


# The writers are forked processes; forking a pytest-xdist worker (which runs an I/O thread) is unsafe, and a child
# once failed inside psycopg. So the run forks from a fresh, single-threaded interpreter on the test database, as
# `manage.py benchmark` does.
RUN_CONCURRENT = """
import json, django
django.setup()
from devtools import bench_tree
from orgs.models import Tenant
measured = Tenant.objects.get(name="Measured")
others = [Tenant.objects.get(name=f"Other-{i}") for i in range(2)]
print(json.dumps(bench_tree.concurrent(measured, others, seconds=1.0, pause=0.01, seed=5)))
"""


@pytest.mark.django_db(transaction=True)
def test_writers_in_other_tenants_run_alone_and_beside_a_busy_tenant(postgres_only):
    build_scale_tenant(name="Measured", orgs=150, depth=5, users=2, tasks=0, seed=2)
    for i in range(2):
        build_scale_tenant(name=f"Other-{i}", orgs=60, depth=3, users=2, tasks=0, seed=3 + i)
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    url = f"postgres://{credentials}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    run = subprocess.run(
        [sys.executable, "-c", RUN_CONCURRENT],
        env={**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings"},
        cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["writers"] == 2 and result["measured_orgs"] == 150
    for kind in ("create", "move"):
        assert result[f"others_{kind}"]["alone"]["samples"] > 0
        assert result[f"others_{kind}"]["with_busy_tenant"]["samples"] > 0
        assert result[f"measured_{kind}"]["samples"] > 0
        assert result[f"measured_{kind}"]["rows_rewritten"]["p50"] > 0
    assert tree_problems() == []  # every writer's orgs were removed and every moved subtree is home
    assert Organization.objects.filter(name__startswith="bench-new-").count() == 0


# -- the runtimes section (devtools/bench_runtimes.py): a real server, real agents and procrastinate ---------------


def test_the_runtimes_section_says_why_it_is_skipped_without_committed_postgresql_data(db, tmp_path):
    path = tmp_path / "bench.json"
    out = StringIO()
    call_command("benchmark", "--quick", "--only", "runtimes", "--json", str(path), stdout=out)
    skipped = json.loads(path.read_text())["runtimes"]["skipped"]
    # SQLite: needs PostgreSQL; PostgreSQL inside the test's transaction: the server could see nothing
    assert "PostgreSQL" in skipped or "committed data" in skipped
    assert f"skipped: {skipped}" in out.getvalue()
    assert not Organization.objects.filter(tenant__name__startswith="Bench-").exists()  # no scale tenant built


@pytest.mark.django_db(transaction=True)
def test_the_runtimes_section_measures_real_agents_beside_procrastinate(postgres_only):
    opts = bench_runtimes.options(quick=True, lost="compute", say=lambda text: None)
    opts.latency_samples, opts.throughput_runs = 5, 60
    result = bench_runtimes.run(opts)
    latency, throughput, lost = result["latency"], result["throughput"], result["lost"]
    assert latency["samples"] == 5
    assert 0 < latency["claim_p50_ms"] <= latency["start_p50_ms"] < 5_000
    assert 0 < latency["procrastinate_start_p50_ms"] < 5_000
    # every queued run ran exactly once, spread over the agents; procrastinate did the same jobs
    assert throughput["exactly_once"] and throughput["succeeded_once"] == 60 and throughput["agents_used"] >= 2
    assert throughput["runs_per_s"] > 0 and throughput["procrastinate_jobs_per_s"] > 0
    assert lost["method"].startswith("computed") and lost["worst_case_s"] >= lost["lease_s"] + lost["reaper_interval_s"]
    # what it ran is gone: its runs, and procrastinate's schema
    assert not Run.objects.filter(task__project__org__tenant__name=bench_runtimes.TENANT).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [bench_runtimes.PROCRASTINATE_SCHEMA])
        assert cursor.fetchone() is None
    out = []
    bench_runtimes.report(result, out.append)
    assert any("enqueue (commit) → started" in line for line in out)
