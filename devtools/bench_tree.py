"""Tree writes for the benchmark: what a create or a ~100-node move costs at a random place in the tree.

The cheapest tree write in a nested set is the one at the end of the tree (nothing lies to its right); a write in
the middle renumbers every node to its right. So the writes here go where real ones go: a create under a parent
drawn uniformly from the tenant's orgs, a move of a ~100-node subtree under a target drawn the same way (and back),
through the services (tenant lock, audit and all), one at a time.

For each write, besides its latency:

- ``rows_rewritten``: row versions the write put in the org table. On PostgreSQL, exactly: the delta of
  ``pg_stat_get_xact_tuples_updated`` for the table, read inside the write's transaction (each is a dead row for
  VACUUM later; ``hot`` is how many of them were heap-only updates, which write no index entry). SQLite keeps no such
  counter: there it is ``rows_changed``.
- ``rows_changed``: rows whose lft, rght, level or parent differ after the write (a snapshot of the tree before and
  after): the least any renumbering of this nested set must write.
- ``position``: where the write lands, as a fraction of the tree's numbering (0 = its start, 1 = its end).
- ``cpu``: CPU time the write cost, this process's thread plus the PostgreSQL backend serving it (read from
  ``/proc/<pid>/schedstat`` when the server runs on this host): latency without the time spent waiting for a core,
  so it changes little when other work shares the machine. Waits for the disk (the commit's fsync) are not in it.

``concurrent()`` runs writers in other tenants (one process each, with its own connection) alone, then while the
measured tenant writes back to back, and reports both sides' latencies.

Everything a run creates is removed afterwards (``remove_created_leaves``) so that runs stay comparable.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, connections, transaction
from django.db.models import QuerySet

from config.actors import SYSTEM
from orgs import services
from orgs.models import Organization, Tenant

TREE_COLUMNS = ("lft", "rght", "level", "parent_id")
MOVE_SIZE = 100  # nodes in a moved subtree (the one closest to it is used when the tree has none that size)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


@dataclass
class Sample:
    kind: str
    us: float
    rows_rewritten: int | None = None
    hot: int | None = None
    rows_changed: int | None = None
    position: float | None = None
    distance: float | None = None  # moves: how far the subtree travelled, as a fraction of the numbering
    cpu_us: float | None = None
    nodes: int = 1


@dataclass
class Node:
    pk: Any
    parent_id: Any
    lft: int
    rght: int

    @property
    def size(self) -> int:
        return (self.rght - self.lft + 1) // 2


@dataclass
class TreeState:
    """The tenant's nodes as they were when the run started: writes are drawn from these only, so that every node
    the run creates stays a leaf (``remove_created_leaves`` relies on it) and every move returns home."""

    tenant: Tenant
    tree_id: int
    nodes: list[Node]
    created: list[Any] = field(default_factory=list)

    @classmethod
    def load(cls, tenant: Tenant) -> TreeState:
        rows = Organization.objects.filter(tenant=tenant, deleted_at__isnull=True).order_by("lft")
        nodes = [Node(pk, parent, lft, rght) for pk, parent, lft, rght in rows.values_list(
            "pk", "parent_id", "lft", "rght")]  # fmt: skip
        tree_id = Organization.objects.filter(tenant=tenant, parent__isnull=True).values_list("tree_id", flat=True)[0]
        return cls(tenant=tenant, tree_id=tree_id, nodes=nodes)

    def subtrees(self, size: int, exclude_prefix: str = "chain-") -> list[Node]:
        """Non-root subtrees of about ``size`` nodes (within 30 %), or the 20 closest to it in a small tree. The
        benchmark's chain (its names start with ``chain-``) is left where the policy figures expect it."""
        chain = set(
            Organization.objects.filter(tenant=self.tenant, name__startswith=exclude_prefix).values_list(
                "pk", flat=True
            )
        )
        candidates = [n for n in self.nodes if n.parent_id is not None and n.pk not in chain]
        band = [n for n in candidates if abs(n.size - size) <= 0.3 * size]
        if len(band) >= 5:
            return band
        return sorted(candidates, key=lambda n: abs(n.size - size))[:20]


def _org_table() -> str:
    return Organization._meta.db_table


def _xact_updates() -> tuple[int, int] | None:
    """Row updates (all, heap-only) on the org table in this transaction so far; None off PostgreSQL."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated(%s::regclass), pg_stat_get_xact_tuples_hot_updated(%s::regclass)",
            [_org_table(), _org_table()],
        )
        upd, hot = cursor.fetchone()
    return int(upd), int(hot)


def _backend_schedstat_path() -> str | None:
    """/proc/<pid>/schedstat of the PostgreSQL backend of this connection, if it runs on this host and is ours to
    read (a server in a container or elsewhere has pids of its own: the command line must name postgres)."""
    if connection.vendor != "postgresql":
        return None
    connection.ensure_connection()
    # A new connection (or a forked process's first one) has a backend of its own: the key says which it was.
    key = (os.getpid(), id(connection.connection))
    cached = getattr(connection, "_bench_schedstat", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    path = None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if b"postgres" in cmdline.read():
                path = f"/proc/{pid}/schedstat"
                _read_cpu_ns(path)
    except OSError:
        path = None
    connection._bench_schedstat = (key, path)  # type: ignore[attr-defined]
    return path


def _read_cpu_ns(path: str) -> int:
    with open(path) as stat:
        return int(stat.read().split()[0])


class CpuClock:
    """CPU nanoseconds of this thread plus those of the database backend, when it can be read."""

    def __init__(self) -> None:
        self.backend = _backend_schedstat_path()

    def now(self) -> int | None:
        if self.backend is None:
            return None
        try:
            return time.thread_time_ns() + _read_cpu_ns(self.backend)
        except OSError:
            return None


def snapshot(tree_id: int) -> dict[Any, tuple]:
    return {
        row[0]: row[1:]
        for row in Organization.objects.filter(tree_id=tree_id).values_list("pk", *TREE_COLUMNS).iterator(2000)
    }


def changed_rows(before: dict[Any, tuple], after: dict[Any, tuple]) -> int:
    """Rows present before whose tree columns differ after (a created row counts as an insert, not here)."""
    return sum(1 for pk, values in before.items() if after.get(pk, values) != values)


def tree_width(tree_id: int) -> int:
    return Organization.objects.filter(tree_id=tree_id, parent__isnull=True).values_list("rght", flat=True)[0]


def timed_write(write: Callable[[], Any], kind: str) -> tuple[Sample, Any]:
    """Run one service write and count what it rewrote. On PostgreSQL the write runs inside an outer transaction
    (its own atomic block becomes a savepoint) so that the counter can be read before the commit; the latency is
    the write plus the commit, without the counter's query."""
    clock = CpuClock()
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        before = _xact_updates()
        cpu_start = clock.now()
        start = time.perf_counter_ns()
        result = write()
        elapsed = time.perf_counter_ns() - start
        cpu_end = clock.now()
        after = _xact_updates()
    else:
        with transaction.atomic():
            before = _xact_updates()
            cpu_start = clock.now()
            start = time.perf_counter_ns()
            result = write()
            elapsed = time.perf_counter_ns() - start
            after = _xact_updates()
            commit_start = time.perf_counter_ns()
        elapsed += time.perf_counter_ns() - commit_start
        cpu_end = clock.now()  # includes the counter's query (some 50 µs): the commit's work matters more
    sample = Sample(kind=kind, us=elapsed / 1000)
    if cpu_start is not None and cpu_end is not None:
        sample.cpu_us = (cpu_end - cpu_start) / 1000
    if before is not None and after is not None:
        sample.rows_rewritten, sample.hot = after[0] - before[0], after[1] - before[1]
    return sample, result


class TreeWriter:
    """Creates and moves at random places in one tenant, each measured; ``count_changes`` adds the snapshot
    comparison (a full read of the tree per write, untimed)."""

    def __init__(self, tenant: Tenant, seed: int, count_changes: bool = True, move_size: int = MOVE_SIZE) -> None:
        self.state = TreeState.load(tenant)
        self.rng = random.Random(seed)  # noqa: S311 - reproducible positions
        self.count_changes = count_changes
        self.counter = 0
        self.movable = self.state.subtrees(move_size)
        self._before = snapshot(self.state.tree_id) if count_changes else None

    def _finish(self, sample: Sample) -> Sample:
        if self.count_changes:
            after = snapshot(self.state.tree_id)
            sample.rows_changed = changed_rows(self._before, after)
            self._before = after
            if sample.rows_rewritten is None:  # SQLite: no counter of row versions
                sample.rows_rewritten = sample.rows_changed
        return sample

    def _position(self, value: int) -> float:
        return round(value / tree_width(self.state.tree_id), 4)

    def create(self, parent: Node | None = None) -> Sample:
        parent = parent or self.rng.choice(self.state.nodes)
        target = Organization(pk=parent.pk, tenant_id=self.state.tenant.pk)
        rght = Organization.objects.filter(pk=parent.pk).values_list("rght", flat=True)[0]
        position = self._position(rght)
        self.counter += 1
        name = f"bench-new-{time.time_ns()}-{self.counter}"
        sample, org = timed_write(lambda: services.create_org(actor=SYSTEM, parent=target, name=name), "create")
        self.state.created.append(org.pk)
        sample.position = position
        return self._finish(sample)

    def create_at_end(self) -> Sample:
        root = next(n for n in self.state.nodes if n.parent_id is None)
        return self.create(root)

    def move_pair(self) -> list[Sample]:
        """A ~100-node subtree to a random new parent, then back home: two measured moves."""
        node = self.rng.choice(self.movable)
        current = Organization.objects.only("lft", "rght").get(pk=node.pk)
        for _ in range(1000):
            target = self.rng.choice(self.state.nodes)
            fresh = Organization.objects.only("lft", "rght").get(pk=target.pk)
            inside = current.lft <= fresh.lft and fresh.rght <= current.rght
            if not inside and target.pk != node.parent_id:
                break
        else:
            raise RuntimeError("No org outside the subtree to move it under: the tree is too small.")
        samples = []
        for destination in (target.pk, node.parent_id):
            moving = Organization.objects.only("pk", "tenant_id", "lft", "rght").get(pk=node.pk)
            dest = Organization.objects.only("pk", "tenant_id", "rght").get(pk=destination)
            position = self._position(dest.rght)
            start_position = self._position(moving.lft)
            sample, _ = timed_write(lambda m=moving, d=dest: services.move_org(actor=SYSTEM, org=m, parent=d), "move")
            sample.position = position
            sample.nodes = (moving.rght - moving.lft + 1) // 2
            sample.distance = round(abs(position - start_position), 4)
            samples.append(self._finish(sample))
        return samples

    def cleanup(self) -> int:
        removed = remove_created_leaves(self.state.tenant, self.state.created)
        self.state.created = []
        return removed


def remove_created_leaves(tenant: Tenant, pks: Iterable[Any]) -> int:
    """Delete benchmark-created leaves for good and close their gaps in one UPDATE: each remaining lft/rght moves
    down by 2 for every removed leaf to its left, which restores the numbering the tree had before they came."""
    pks = list(pks)
    if not pks:
        return 0
    with transaction.atomic():
        services.lock_tenant(tenant.pk)
        leaves = list(
            Organization.objects.filter(pk__in=pks, tenant=tenant).values_list("pk", "lft", "rght", "tree_id")
        )
        if any(rght != lft + 1 for _, lft, rght, _ in leaves):
            raise RuntimeError("A benchmark-created org has children: it cannot be removed as a leaf.")
        if not leaves:
            return 0
        tree_id = leaves[0][3]
        # Django's collector, not mptt's per-node delete (which would renumber the tree once per node).

        QuerySet.delete(Organization.objects.filter(pk__in=[pk for pk, *_ in leaves]))
        gaps = sorted(lft for _, lft, _, _ in leaves)
        table = connection.ops.quote_name(_org_table())
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"UPDATE {table} SET "  # noqa: S608 - table name from the model
                    "lft = lft - 2 * (SELECT count(*) FROM unnest(%s::int[]) g WHERE g < lft), "
                    "rght = rght - 2 * (SELECT count(*) FROM unnest(%s::int[]) g WHERE g < rght) "
                    "WHERE tree_id = %s AND rght > %s",
                    [gaps, gaps, tree_id, gaps[0]],
                )
            else:
                values = ", ".join(["(%s)"] * len(gaps))
                cursor.execute(
                    f"WITH g(v) AS (VALUES {values}) UPDATE {table} SET "  # noqa: S608 - placeholders only
                    "lft = lft - 2 * (SELECT count(*) FROM g WHERE g.v < lft), "
                    "rght = rght - 2 * (SELECT count(*) FROM g WHERE g.v < rght) "
                    "WHERE tree_id = %s AND rght > %s",
                    [*gaps, tree_id, gaps[0]],
                )
    return len(leaves)


def summarize(samples: list[Sample]) -> dict[str, Any]:
    if not samples:
        return {"samples": 0}
    us = [s.us for s in samples]
    out: dict[str, Any] = {
        "samples": len(samples),
        "p50_us": round(percentile(us, 0.5), 1),
        "p95_us": round(percentile(us, 0.95), 1),
        "max_us": round(max(us), 1),
    }
    cpu = [s.cpu_us for s in samples if s.cpu_us is not None]
    if cpu:
        out["cpu_p50_us"] = round(percentile(cpu, 0.5), 1)
        out["cpu_p95_us"] = round(percentile(cpu, 0.95), 1)
    rewritten = [s.rows_rewritten for s in samples if s.rows_rewritten is not None]
    if rewritten:
        out["rows_rewritten"] = {
            "p50": int(percentile(rewritten, 0.5)),
            "p95": int(percentile(rewritten, 0.95)),
            "mean": round(sum(rewritten) / len(rewritten)),
        }
    hot = [s.hot for s in samples if s.hot is not None]
    if hot:
        out["hot_updates"] = sum(hot)
    changed = [s.rows_changed for s in samples if s.rows_changed is not None]
    if changed:
        out["rows_changed"] = {
            "p50": int(percentile(changed, 0.5)),
            "p95": int(percentile(changed, 0.95)),
            "mean": round(sum(changed) / len(changed)),
        }
    positions = [s.position for s in samples if s.position is not None]
    if positions:
        out["position"] = {
            "min": min(positions),
            "p50": round(percentile(positions, 0.5), 4),
            "max": max(positions),
        }
    if any(s.kind == "move" for s in samples):
        out["nodes"] = int(percentile([s.nodes for s in samples], 0.5))
        distances = [s.distance for s in samples if s.distance is not None]
        if distances:
            out["distance_p50"] = round(percentile(distances, 0.5), 4)
    return out


def table_size() -> dict[str, Any] | None:
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_relation_size(%s::regclass), pg_indexes_size(%s::regclass)", [_org_table(), _org_table()]
        )
        heap, indexes = cursor.fetchone()
    return {"table_mb": round(heap / 2**20, 1), "indexes_mb": round(indexes / 2**20, 1)}


def vacuum_org_table() -> bool:
    """VACUUM (ANALYZE) the org table before measuring, so that each run starts from the same state whatever the
    runs before it left (and whether autovacuum is on). Not possible inside a transaction (tests)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(_org_table())}")
    return True


def measure_scale(tenant: Tenant, creates: int, move_pairs: int, seed: int) -> dict[str, Any]:
    """Random creates, ~100-node moves there and back, and creates at the end of the tree (the old, cheapest
    figure) in one tenant; what they created is removed afterwards."""
    writer = TreeWriter(tenant, seed=seed)
    orgs = len(writer.state.nodes)
    size_before = table_size()
    at_end = [writer.create_at_end() for _ in range(max(3, creates // 2))]
    random_creates = [writer.create() for _ in range(creates)]
    moves = [sample for _ in range(move_pairs) for sample in writer.move_pair()]
    size_after = table_size()
    writer.cleanup()
    out = {
        "orgs": orgs,
        "create_random": summarize(random_creates),
        "move_random": summarize(moves),
        "create_at_end": summarize(at_end),
    }
    if size_before and size_after:
        out["table"] = {"before": size_before, "after": size_after}
    return out


# -- writers in other tenants ---------------------------------------------------------------------------------------


def _writer_loop(writer: TreeWriter, deadline: float, pause: float) -> list[Sample]:
    samples: list[Sample] = []
    while time.monotonic() < deadline:
        samples.append(writer.create())
        time.sleep(pause)
        samples.extend(writer.move_pair())
        time.sleep(pause)
    return samples


def _writer_process(tenant_pk: Any, seed: int, start_at: float, seconds: float, pause: float, out: Any) -> None:
    """One writer in a tenant of its own, with its own connection (the parent closed its connections before the
    fork, so none is shared)."""
    try:
        tenant = Tenant.objects.get(pk=tenant_pk)
        writer = TreeWriter(tenant, seed=seed, count_changes=False, move_size=10)  # small tenants: small subtrees
        time.sleep(max(0.0, start_at - time.time()))
        samples = _writer_loop(writer, time.monotonic() + seconds, pause)
        out.put(("ok", [(s.kind, s.us, s.cpu_us) for s in samples], writer.state.created))
    except BaseException:  # pragma: no cover - reported by the parent, with where it happened
        out.put(("error", traceback.format_exc(), []))
    finally:
        connections.close_all()


def _latencies(samples: list[tuple[str, float, float | None]], kind: str) -> dict[str, Any]:
    us = [u for k, u, _ in samples if k == kind]
    out = {"samples": len(us), "p50_us": round(percentile(us, 0.5), 1), "p95_us": round(percentile(us, 0.95), 1)}
    cpu = [c for k, _, c in samples if k == kind and c is not None]
    if cpu:
        out["cpu_p50_us"] = round(percentile(cpu, 0.5), 1)
        out["cpu_p95_us"] = round(percentile(cpu, 0.95), 1)
    return out


def concurrent(
    measured: Tenant,
    others: list[Tenant],
    seconds: float,
    pause: float,
    seed: int,
) -> dict[str, Any]:
    """Writers in ``others`` (one process each) for ``seconds`` alone, then again while ``measured`` takes creates
    and moves at random places back to back in this process. Each writer pauses ``pause`` s after a create and
    after a move there and back. If the others' CPU per write stays the same while their latency grows, the
    difference is waiting for a core (the machine), not for a lock or the disk."""
    unavailable = concurrency_unavailable()
    if unavailable:
        return unavailable
    context = multiprocessing.get_context("fork")

    def run_writers(busy: bool) -> tuple[list[tuple[str, float, float | None]], list[Sample]]:
        connections.close_all()  # no connection may be shared with the forked writers
        queue = context.Queue()
        start_at = time.time() + 2.0  # time for every writer to load its tree
        procs = [
            context.Process(target=_writer_process, args=(t.pk, seed + i, start_at, seconds, pause, queue))
            for i, t in enumerate(others)
        ]
        for proc in procs:
            proc.start()
        measured_samples: list[Sample] = []
        try:
            if busy:  # the measured tenant writes back to back: the most it can weigh on the others
                writer = TreeWriter(measured, seed=seed + 1000, count_changes=False)
                time.sleep(max(0.0, start_at - time.time()))
                measured_samples = _writer_loop(writer, time.monotonic() + seconds, 0.0)
                writer.cleanup()
            results = [queue.get(timeout=seconds + 600) for _ in procs]
        finally:
            for proc in procs:
                proc.join(timeout=60)
                if proc.is_alive():  # only after a failure here: the writers end at their deadline
                    proc.terminate()
        errors = [detail for status, detail, _ in results if status != "ok"]
        if errors:
            raise RuntimeError(f"A writer failed: {errors[0]}")
        created = [pk for _, _, pks in results for pk in pks]
        for tenant in others:
            remove_created_leaves(tenant, created)  # each tenant removes only its own among them
        samples = [sample for _, detail, _ in results for sample in detail]
        return samples, measured_samples

    alone, _ = run_writers(busy=False)
    together, measured_samples = run_writers(busy=True)
    out: dict[str, Any] = {
        "writers": len(others),
        "writer_orgs": Organization.objects.filter(tenant=others[0]).count() if others else 0,
        "seconds": seconds,
        "pause_ms": round(pause * 1000, 1),
        "measured_orgs": Organization.objects.filter(tenant=measured).count(),
    }
    for kind in ("create", "move"):
        a, b = _latencies(alone, kind), _latencies(together, kind)
        out[f"others_{kind}"] = {
            "alone": a,
            "with_busy_tenant": b,
            "p50_ratio": round(b["p50_us"] / a["p50_us"], 2) if a["p50_us"] else None,
            "p95_ratio": round(b["p95_us"] / a["p95_us"], 2) if a["p95_us"] else None,
        }
        out[f"measured_{kind}"] = summarize([s for s in measured_samples if s.kind == kind])
    return out


def concurrency_unavailable() -> dict[str, str] | None:
    """Why the writers cannot run here, or None."""
    if connection.vendor != "postgresql":
        return {"skipped": "needs PostgreSQL (several writers at once)"}
    if connection.in_atomic_block:
        return {"skipped": "the writers need committed data (the run is inside a transaction)"}
    return None
