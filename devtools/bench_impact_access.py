"""Benchmark rows of the grant and lock previews (governance/impact/access_changes.py, settings_changes.py), for the
impact section (devtools/bench_impact.py calls ``run_access`` and ``report_access``, on the 10k-org tenant).

- the preview of a grant's removal at the root of a subtree of about 100 orgs (a grant made there for the
  measurement: the holder and everyone whose grants reach the subtree are compared over it);
- the preview of a lock at the tenant's root (every org of the tenant read by the settings part).

Each preview rolls back what it does; the grant made for the measurement is removed again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db import connection, reset_queries
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from access.models import OrgUserGrant
from access.services.grants import grant_role
from config.actors import SYSTEM
from devtools.bench_tree import percentile
from governance.impact.access_changes import preview_removal
from governance.impact.settings_changes import preview_setting
from orgs.models import Organization, Tenant

#: The size of the subtree whose root loses a grant.
SUBTREE = 100


def _measure(fn: Callable[[], Any], repeat: int) -> dict[str, Any]:
    fn()  # warm
    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    p50, p95 = percentile(samples, 0.5), percentile(samples, 0.95)
    return {"queries": len(queries), "p50_ms": round(p50, 1), "p95_ms": round(p95, 1)}


def _subtree_root(tenant: Tenant) -> Organization:
    """The org whose subtree is closest to ``SUBTREE`` orgs (nested set: (rght - lft + 1) / 2 of them)."""
    return (
        Organization.objects.filter(tenant=tenant, deleted_at__isnull=True, rght__gte=F("lft") + 2 * SUBTREE - 1)
        .order_by((F("rght") - F("lft")).asc())
        .first()
    ) or Organization.objects.get(tenant=tenant, parent__isnull=True)


def run_access(tenant: Tenant, bench: Any) -> dict[str, Any]:
    repeat = max(5, bench.slow_repeat)
    root = Organization.objects.get(tenant=tenant, parent__isnull=True)
    top = _subtree_root(tenant)
    size = (top.rght - top.lft + 1) // 2
    holder = OrgUserGrant.objects.filter(content_object__tenant=tenant).exclude(content_object=top).first()
    if holder is None:
        return {}
    grant = grant_role(actor=SYSTEM, target=top, role="integrator", user=holder.user)
    try:
        grant = OrgUserGrant.objects.select_related("content_object", "role").get(pk=grant.pk)
        removal = _measure(lambda: preview_removal(actor=SYSTEM, grant=grant), repeat)
    finally:
        OrgUserGrant.objects.filter(pk=grant.pk).delete()
    orgs = Organization.objects.filter(tenant=tenant, deleted_at__isnull=True).count()
    lock = _measure(
        lambda: preview_setting(actor=SYSTEM, org=root, key="allow_task_sharing", value=False, locked=True), repeat
    )
    return {
        "removal": {**removal, "subtree_orgs": size},
        "lock": {**lock, "orgs": orgs},
        "repeat": repeat,
    }


def report_access(result: dict[str, Any], say: Callable[[str], None]) -> None:
    if not result:
        say("impact of grants and locks: nothing measured (no grant in the tenant)")
        return
    removal, lock = result["removal"], result["lock"]
    say(
        f"grant removal preview, root of {removal['subtree_orgs']} orgs: {removal['queries']} queries, "
        f"p50 {removal['p50_ms']} ms, p95 {removal['p95_ms']} ms"
    )
    say(
        f"setting lock preview, root of {lock['orgs']} orgs: {lock['queries']} queries, "
        f"p50 {lock['p50_ms']} ms, p95 {lock['p95_ms']} ms"
    )
