"""The benchmark's rollup section (manage.py benchmark --only rollup): see run() and report().

The roll-up of each synthetic tenant's root (10k and 100k orgs) for a tenant administrator, who sees everything,
and at the top of the 100-deep chain for the tenant's Integrator (a restricted viewer): the service served from its
fresh snapshot (what viewers wait for while the refresher runs; governance/rollup/snapshots.py) and computed and kept
(what a first viewer waits for, and what each refresher pass costs), the viewer's grants loaded afresh each time;
then the same two through the API (``GET /api/v1/orgs/{id}/rollup``).

The synthetic tenants have tasks but no runs: on first use this adds, once, three runs per task spread over the
last 30 days (85 % succeeded, 10 % failed, 3 % lost, 2 % stopped) on a global runtime and twenty local runtimes of
the tenant, so the aggregates have work to do.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, reset_queries, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access import policy
from access.models import TenantMembership
from access.services import issue_token
from devtools.bench_tree import percentile
from governance.models import RollupSnapshot
from governance.rollup.service import rollup
from orgs.models import Organization, Tenant
from resources.models import Run, Task
from runtimes.models import Runtime

RUNS_PER_TASK = 3
LOCAL_RUNTIMES = 20
STATUSES = ["succeeded"] * 85 + ["failed"] * 10 + ["lost"] * 3 + ["stopped"] * 2
TARGET_MS = 200


def run(tenant: Tenant, large: Tenant | None, bench: Any) -> dict[str, Any]:
    """Measure on the 10k-org tenant and the 100k-org large one (None with --quick)."""
    result: dict[str, Any] = {}
    for t in (tenant, large):
        if t is None:
            continue
        label = _label(t)
        bench.say(f"  rollup: {label} …")
        _ensure_runs(t, bench.say)
        root = Organization.objects.get(tenant=t, parent__isnull=True)
        admin = _tenant_admin(t)
        integrator = get_user_model().objects.get(username=f"{t.name.lower()}-bench")
        chain_top = Organization.objects.get(tenant=t, name="chain-1")
        repeat = bench.slow_repeat
        result[label] = {
            "orgs": Organization.objects.filter(tenant=t).count(),
            "runs_30d": Run.objects.filter(task__project__org__tenant=t).count(),
            "admin_root_served": _service(admin, root, repeat, served=True),
            "admin_root_computed": _service(admin, root, repeat, served=False),
            "integrator_chain_served": _service(integrator, chain_top, repeat, served=True),
            "integrator_chain_computed": _service(integrator, chain_top, repeat, served=False),
            "api_served": _api(admin, root, repeat, served=True),
            "api_computed": _api(admin, root, repeat, served=False),
        }
    return result


def report(result: dict[str, Any], say: Callable[[str], None]) -> None:
    if not result:
        say("\nrollup: nothing measured")
        return
    say(f"\nrollup of the root (period 7d; target p95 ≤ {TARGET_MS} ms on PostgreSQL)")
    for label, row in result.items():
        say(f"  {label} ({row['orgs']} orgs, {row['runs_30d']} runs in 30 days)")
        for key, name in (
            ("admin_root_served", "tenant admin at the root, served (a fresh snapshot)"),
            ("admin_root_computed", "tenant admin at the root, computed and kept (first view or refresher)"),
            ("integrator_chain_served", "Integrator at chain-1, served"),
            ("integrator_chain_computed", "Integrator at chain-1, computed and kept"),
            ("api_served", "API GET /orgs/{id}/rollup as the tenant admin, served"),
            ("api_computed", "API GET /orgs/{id}/rollup as the tenant admin, computed"),
        ):
            m = row[key]
            flag = "" if m["p95_ms"] <= TARGET_MS else "  (over target)"
            say(f"    {name}: {m['queries']} queries; p50 {m['p50_ms']} ms, p95 {m['p95_ms']} ms{flag}")


# -- measurements ----------------------------------------------------------------------------------------------------


def _timed(fn: Callable[[], Any], repeat: int, setup: Callable[[], Any] | None = None) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return {"p50_ms": round(percentile(samples, 0.5), 2), "p95_ms": round(percentile(samples, 0.95), 2)}


def _queries(fn: Callable[[], Any]) -> int:
    reset_queries()
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx)


def _stale() -> None:
    """Every kept roll-up too old to serve: the next read computes (what a first viewer, or one after the refresher
    stopped, waits for)."""
    RollupSnapshot.objects.update(computed_at=timezone.now() - timedelta(days=1))


def _service(user: Any, org: Organization, repeat: int, *, served: bool) -> dict[str, Any]:
    """The service as a request calls it: the viewer's grants loaded afresh, then the roll-up served from its fresh
    snapshot (``served``) or computed and kept (none fresh)."""

    def setup() -> None:
        policy.forget(user)
        if not served:
            _stale()

    rollup(user, org, "7d")  # keeps a snapshot (and warms the database's buffers)
    setup()
    queries = _queries(lambda: rollup(user, org, "7d"))
    return {"queries": queries, **_timed(lambda: rollup(user, org, "7d"), repeat, setup)}


def _api(user: Any, org: Organization, repeat: int, *, served: bool) -> dict[str, Any]:
    _, raw = issue_token(user=user, name="benchmark-rollup")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    path = f"/api/v1/orgs/{org.pk}/rollup?period=7d"
    hosts = [*settings.ALLOWED_HOSTS, "testserver"]
    setup = None if served else _stale
    with override_settings(ALLOWED_HOSTS=hosts, SECURE_SSL_REDIRECT=False, DEBUG=False):
        status = client.get(path).status_code
        if setup:
            setup()
        queries = _queries(lambda: client.get(path))
        return {"status": status, "queries": queries, **_timed(lambda: client.get(path), repeat, setup)}


# -- data -------------------------------------------------------------------------------------------------------------


def _label(tenant: Tenant) -> str:
    return {"Bench-10000": "10k", "Bench-100000": "100k"}.get(tenant.name, tenant.name)


def _tenant_admin(tenant: Tenant) -> Any:
    User = get_user_model()
    user, _ = User.objects.get_or_create(
        username=f"{tenant.name.lower()}-rollup-admin", defaults={"email": f"rollup@{tenant.name.lower()}.example"}
    )
    TenantMembership.objects.update_or_create(tenant=tenant, user=user, defaults={"is_admin": True})
    return user


def _ensure_runs(tenant: Tenant, say: Callable[[str], None]) -> None:
    """Three runs per task over 30 days, once per tenant (kept, like the tenant)."""
    if Run.objects.filter(task__project__org__tenant=tenant).exists():
        return
    rng = random.Random(12)  # noqa: S311 - synthetic data, reproducible
    start = time.perf_counter()
    glob, _ = Runtime.objects.get_or_create(
        name="bench-rollup-global", org=None, defaults={"kind": Runtime.Kind.GLOBAL, "all_tenants": True}
    )
    orgs = list(Organization.objects.filter(tenant=tenant).values_list("pk", flat=True))
    locals_ = [
        Runtime.objects.get_or_create(
            org_id=rng.choice(orgs), name=f"bench-local-{i}",
            defaults={"kind": Runtime.Kind.LOCAL, "last_seen": timezone.now() if i % 3 else None},
        )[0]
        for i in range(LOCAL_RUNTIMES)
    ]  # fmt: skip
    runtimes = [glob, glob, glob, *locals_]  # about half the work on the platform's runtime
    tasks = list(Task.objects.filter(project__org__tenant=tenant).values_list("pk", flat=True))
    now = timezone.now()
    runs = []
    with transaction.atomic():
        for task_id in tasks:
            for _ in range(RUNS_PER_TASK):
                runtime = rng.choice(runtimes)
                runs.append(Run(id=uuid.uuid4(), task_id=task_id, status=rng.choice(STATUSES), runtime=runtime,
                                runtime_name=runtime.name, created_at=now))  # fmt: skip
            if len(runs) >= 5000:
                _insert(runs, now, rng)
                runs = []
        _insert(runs, now, rng)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE resources_run")
    say(f"  rollup: added {len(tasks) * RUNS_PER_TASK} runs to {tenant.name} in {time.perf_counter() - start:.1f} s")


def _insert(runs: list[Run], now: Any, rng: random.Random) -> None:
    """Insert with ``created_at`` spread over 30 days: auto_now_add would stamp every row with now, so it is off for
    the insert (this process only; development data)."""
    if not runs:
        return
    for run in runs:
        run.created_at = run.finished_at = now - timedelta(seconds=rng.random() * 30 * 86400)
    field = Run._meta.get_field("created_at")
    setattr(field, "auto_now_add", False)  # noqa: B010 - DateTimeField has it; the stubs do not say
    try:
        Run.objects.bulk_create(runs, batch_size=5000)
    finally:
        setattr(field, "auto_now_add", True)  # noqa: B010
