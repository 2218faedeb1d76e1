"""The benchmark's peers must decide exactly like Canopy, or their timings mean nothing; the command must run."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from access import bench, policy
from access.roles import CAPABILITIES
from orgs.management.commands.seed_scale import build_scale_tenant
from orgs.models import Organization


@pytest.fixture
def scale(db):
    return build_scale_tenant(name="Peers", orgs=120, depth=30, users=25, tasks=10, seed=1)


def test_every_peer_agrees_with_canopy_on_every_org_and_capability(scale):
    from django.contrib.auth import get_user_model

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
    from django.contrib.auth import get_user_model

    bench_user = get_user_model().objects.get(username="peers-bench")
    deep = Organization.objects.get(tenant=scale, name="chain-30")
    assert policy.can(bench_user, "task.run", deep)
    assert bench.CasbinPeer(scale, max_depth=30).can(bench_user, "task.run", deep)
    assert not bench.CasbinPeer(scale, max_depth=2).can(bench_user, "task.run", deep)  # the PEERS.md pitfall


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
