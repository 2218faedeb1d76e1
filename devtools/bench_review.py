"""The benchmark's review section (manage.py benchmark --only review): see run() and report().

The access review of a subtree (governance.review.service.review, ``subtree=True``) as a reviewer holding Admin on
the tenant's root sees it: the whole tenant (10k orgs, one grant per synthetic user), a first-level department and
its subtree, and one org at the bottom of the 100-deep chain (its rows come through 100 ancestors). The reviewer is
made inside a transaction rolled back at the end: the benchmark tenants are left as they were."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from access import policy
from access.models import OrgUserGrant, TenantMembership
from access.services.grants import hold_role_permission_id, resolve_role
from governance.review import service
from orgs.models import Organization, Tenant


class _RolledBack(Exception):
    pass


def _reviewer(tenant: Tenant, root: Organization) -> Any:
    user = get_user_model().objects.create(username=f"{tenant.name.lower()}-reviewer", email="reviewer@bench.example")
    TenantMembership.objects.create(tenant=tenant, user=user)
    OrgUserGrant.objects.create(
        user=user, content_object=root, role=resolve_role(root, "admin"), permission_id=hold_role_permission_id(root)
    )
    return user


def _measure(tenant: Tenant, bench: Any) -> list[dict[str, Any]]:
    root = Organization.objects.get(tenant=tenant, parent__isnull=True)
    department = (
        Organization.objects.filter(tenant=tenant, level=1).exclude(name="chain-1").order_by("-rght", "lft").first()
    )
    bottom = Organization.objects.filter(tenant=tenant, name__startswith="chain-").order_by("-level").first()
    reviewer = _reviewer(tenant, root)
    cases = [("tenant root, subtree", root, True), ("a department, subtree", department, True),
             ("chain bottom (depth 100), the org", bottom, False)]  # fmt: skip
    rows = []
    for label, org, subtree in cases:
        if org is None:
            continue

        def review(org: Organization = org, subtree: bool = subtree) -> Any:
            return service.review(org, viewer=reviewer, subtree=subtree)

        size = Organization.objects.filter(org.descendants_q()).count() if subtree else 1
        policy.forget(reviewer)
        found = review()
        policy.forget(reviewer)
        queries = _queries(review)
        timing = _timed(review, max(20, bench.slow_repeat), lambda: policy.forget(reviewer))
        rows.append({"case": label, "orgs": size, "rows": len(found.rows), "queries": queries, **timing})
    return rows


def _timed(fn: Callable[[], Any], repeat: int, setup: Callable[[], Any]) -> dict[str, float]:
    """p50/p95 in microseconds of ``fn`` over ``repeat`` runs, ``setup`` (untimed) before each."""
    samples = []
    for _ in range(repeat):
        setup()
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    p50, p95 = (samples[min(len(samples) - 1, int(q * len(samples)))] for q in (0.5, 0.95))
    return {"p50_us": round(p50, 1), "p95_us": round(p95, 1)}


def _queries(fn: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        fn()
    return len(captured.captured_queries)


def run(tenant: Tenant, large: Tenant | None, bench: Any) -> dict[str, Any]:
    """Measure on the 10k-org tenant and the 100k-org large one (None with --quick)."""
    result: dict[str, Any] = {}
    for measured in (tenant, large):
        if measured is None:
            continue
        try:
            with transaction.atomic():
                result[measured.name] = _measure(measured, bench)
                raise _RolledBack
        except _RolledBack:
            pass
    return result


def report(result: dict[str, Any], say: Callable[[str], None]) -> None:
    if not result:
        say("\nreview: nothing measured")
        return
    say("\naccess review rows (governance.review.service.review), as an Admin of the root:")
    for key, rows in result.items():
        for row in rows:
            say(f"  {key} {row['case']:<36} orgs {row['orgs']:>6}  rows {row['rows']:>5}  queries {row['queries']}"
                f"  p50 {row['p50_us'] / 1000:.1f} ms  p95 {row['p95_us'] / 1000:.1f} ms")  # fmt: skip
