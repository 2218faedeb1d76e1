"""The ``runtimes`` section of ``manage.py benchmark`` (PostgreSQL only), with real processes throughout: a server
(gunicorn, on a free loopback port, on the same database), real agents (``python -m runtimes.agent``) talking to it
over HTTP, and procrastinate 3.10 (a well-kept PostgreSQL job queue) doing the same no-op work on the same database
in the same run, in its own PostgreSQL schema (dropped afterwards).

(a) enqueue → claim / start latency, one run at a time, with an idle agent parked in its long-poll claim (the run is
    queued through the services, as Run does: placement, audit, log line, NOTIFY on commit); beside it procrastinate's
    deferred → started for one job at a time with an idle worker (its own event timestamps).
(b) no-op runs per second through 4 agent processes (batch claims), from the commit of N queued runs to the last
    one finished (the server's finished_at); beside it procrastinate's jobs per second through 4 worker processes
    from the commit of N deferred jobs to the last "succeeded" event. Every run must have run exactly once.
(c) a killed agent's run declared lost, with the default settings: measured (``kill -9`` mid-run with the reaper
    command running, ``--lost measure``; the full run's default) or computed from the settings and a timed sweep
    (``--quick``): worst case = lease + reaper interval + sweep.

What it creates (a tenant "Bench-runtimes" with a local runtime, a no-op task and a slow one) is kept for the next
run; its runs are deleted at the start and at the end.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import procrastinate
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from config.actors import SYSTEM
from orgs import services as org_services
from orgs.models import Organization, Project, Tenant
from resources import services as rs
from resources.models import Run, Task
from runtimes import reaper, tokens, wakeup
from runtimes.models import Runtime, RuntimeInstance

ROOT = Path(__file__).resolve().parent.parent
TENANT = "Bench-runtimes"
RUNTIME = "bench-local"
PROCRASTINATE_SCHEMA = "bench_procrastinate"
PROCRASTINATE_QUEUE = "bench"
LATENCY_TARGET_MS = 100.0
LOST_TARGET_S = 90.0
ACTIVE = list(Run.ACTIVE)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def unavailable() -> str | None:
    if connection.vendor != "postgresql":
        return f"needs PostgreSQL (this database is {connection.vendor}): run with DATABASE_URL=postgres://…"
    if connection.in_atomic_block:
        return "the server and agents need committed data (the run is inside a transaction)"
    return None


def database_url() -> str:
    db = connection.settings_dict
    credentials = db["USER"] or ""
    if db.get("PASSWORD"):
        credentials += f":{db['PASSWORD']}"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{credentials}@{host}:{port}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the data ------------------------------------------------------------------------------------------------------


@dataclass
class Setup:
    runtime: Runtime
    task: Task  # no steps: a no-op run
    slow_task: Task  # one http step to a local endpoint that answers after minutes (for the kill)
    slow_url: str


def setup(slow_url: str) -> Setup:
    """The tenant, its local runtime and the tasks (created once, committed: the server must see them)."""
    with transaction.atomic():
        tenant = Tenant.objects.filter(name=TENANT).first()
        if tenant is None:
            User = get_user_model()
            admin = User.objects.filter(username="bench-runtimes-admin").first() or User.objects.create_user(
                username="bench-runtimes-admin", email="bench-runtimes@example.com", password=None
            )
            tenant = org_services.create_tenant(actor=SYSTEM, name=TENANT, admin=admin, plan=Tenant.Plan.PAID)
        root = Organization.objects.get(tenant=tenant, parent__isnull=True)
        project = Project.objects.filter(org=root, name="Bench").first() or org_services.create_project(
            actor=SYSTEM, org=root, name="Bench"
        )
        runtime = Runtime.objects.filter(org=root, name=RUNTIME).first() or Runtime.objects.create(
            org=root, name=RUNTIME, kind=Runtime.Kind.LOCAL, description="manage.py benchmark --only runtimes"
        )
        task = _task(project, "no-op", [], runtime)
        slow = [{"type": "http", "name": "slow", "method": "GET", "url": slow_url}]
        slow_task = _task(project, "slow", slow, runtime)
        if slow_task.steps != slow:  # a new port every run
            Task.objects.filter(pk=slow_task.pk).update(steps=slow)
            slow_task.refresh_from_db()
        Run.objects.filter(task__project=project).delete()
    return Setup(runtime=runtime, task=task, slow_task=slow_task, slow_url=slow_url)


def _task(project: Project, name: str, steps: list[dict[str, Any]], runtime: Runtime) -> Task:
    task = Task.objects.filter(project=project, name=name).first()
    if task is None:
        task = rs.create_task(actor=SYSTEM, project=project, name=name, steps=steps)
    if task.runtime_id != runtime.pk:
        Task.objects.filter(pk=task.pk).update(runtime=runtime)
        task.refresh_from_db()
    return task


def enqueue_many(task: Task, runtime: Runtime, count: int, committed: list[float]) -> None:
    """``count`` queued runs in one transaction and one wake-up (what a batch enqueue does; procrastinate's side
    is its batch_defer); the commit's time is appended to ``committed``."""
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.time()))  # before the wake-up's NOTIFY
        Run.objects.bulk_create(
            Run(task=task, steps=task.steps, runtime=runtime, runtime_name=runtime.name) for _ in range(count)
        )
        wakeup.wake(runtime.pk)


# -- processes -----------------------------------------------------------------------------------------------------


class Processes:
    """Child processes with their output in files; stopped (SIGTERM, then SIGKILL) when the block ends."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        out = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
        out.close()
        self.children.append((name, process))
        return process

    def output(self, name: str, tail: int = 3000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def stop(self, process: subprocess.Popen[bytes], timeout: float = 40.0) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self) -> None:
        for _, process in reversed(self.children):
            self.stop(process)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_")}
    env.update({
        "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50), "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "False", "SECURE_COOKIES": "False",
        "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
    })  # fmt: skip
    for name in dir(settings):  # the server runs with this process's runtime settings (the defaults, or overrides)
        if name.startswith("RUNTIME_"):
            env[name] = str(getattr(settings, name))
    return env


SERVER = "gunicorn, 2 gthread workers × 16 threads"


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]


def start_server(procs: Processes, port: int) -> Server:
    """gunicorn with threads (claims wait in a long poll: a thread each) on the same database. 16 threads a worker:
    enough for 4 agents' long polls, heartbeats and runs, and few database connections on a shared server."""
    url = f"http://127.0.0.1:{port}"
    process = procs.start("server", [
        sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
        "--worker-class", "gthread", "--threads", "16", "--log-level", "warning", "--timeout", "120",
    ], child_env())  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/v1/health", timeout=2) as answer:  # noqa: S310 - loopback
                if answer.status == 200:
                    return Server(url=url, process=process)
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the benchmark's server did not start:\n{procs.output('server')}")


def start_agent(procs: Processes, url: str, runtime: Runtime, name: str, concurrency: int) -> subprocess.Popen[bytes]:
    _, raw = tokens.issue_enrollment_token(runtime, actor=SYSTEM)
    state = procs.workdir / f"state-{name}"
    env = {**child_env(), "CANOPY_ENROLLMENT_TOKEN": raw}
    return procs.start(name, [
        sys.executable, "-m", "runtimes.agent", "--url", url, "--state-dir", str(state), "--name", name,
        "--concurrency", str(concurrency), "--wait-s", "5", "--grace-s", "5",
    ], env)  # fmt: skip


def wait_for(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.02) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
    return time.monotonic() - start


def agents_ready(runtime: Runtime, count: int, since: Any) -> Callable[[], bool]:
    def ready() -> bool:
        return RuntimeInstance.objects.filter(runtime=runtime, last_heartbeat__gte=since).count() >= count

    return ready


# -- procrastinate, in its own schema ------------------------------------------------------------------------------


PROCRASTINATE_WORKER = """
import asyncio, sys
import procrastinate
url, schema, queue, concurrency = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
app = procrastinate.App(connector=procrastinate.PsycopgConnector(
    conninfo=url, kwargs={"options": f"-c search_path={schema}"}, min_size=1, max_size=concurrency))

@app.task(name="noop", queue=queue)
async def noop():
    return None

app.run_worker(queues=[queue], concurrency=concurrency, wait=True, install_signal_handlers=True)
"""


logging.getLogger("procrastinate").setLevel(logging.WARNING)


class Procrastinate:
    """procrastinate's schema in ``bench_procrastinate`` (created here, dropped in ``close``) and a sync app to
    defer with."""

    def __init__(self) -> None:
        self.url = database_url().replace("postgres://", "postgresql://", 1)
        self.drop()
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {PROCRASTINATE_SCHEMA}")
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=self.url, kwargs={"options": f"-c search_path={PROCRASTINATE_SCHEMA}"}, min_size=1, max_size=2
            )
        )

        @self.app.task(name="noop", queue=PROCRASTINATE_QUEUE)
        async def noop() -> None:
            return None

        self.noop = noop
        self.app.open()
        self.app.schema_manager.apply_schema()

    def worker(self, procs: Processes, name: str, concurrency: int) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-c", PROCRASTINATE_WORKER, self.url, PROCRASTINATE_SCHEMA, PROCRASTINATE_QUEUE,
                str(concurrency)]  # fmt: skip
        return procs.start(name, argv, child_env())

    def defer(self, count: int) -> None:
        if count == 1:
            self.noop.defer()
        else:
            self.noop.batch_defer(*({} for _ in range(count)))

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with connection.cursor() as cursor:
            cursor.execute(sql.replace("{schema}", PROCRASTINATE_SCHEMA), params or [])
            return list(cursor.fetchall())

    def succeeded(self) -> int:
        return int(self.query("SELECT count(*) FROM {schema}.procrastinate_jobs WHERE status = 'succeeded'")[0][0])

    def workers_ready(self, count: int) -> bool:
        return int(self.query("SELECT count(*) FROM {schema}.procrastinate_workers")[0][0]) >= count

    def clear(self) -> None:
        # TRUNCATE: procrastinate's row triggers name its tables without a schema (they run on its search_path)
        with connection.cursor() as cursor:
            cursor.execute(
                f"TRUNCATE {PROCRASTINATE_SCHEMA}.procrastinate_events, {PROCRASTINATE_SCHEMA}.procrastinate_jobs, "
                f"{PROCRASTINATE_SCHEMA}.procrastinate_periodic_defers CASCADE"
            )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.app.close()
        self.drop()

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {PROCRASTINATE_SCHEMA} CASCADE")


# -- a slow endpoint for the kill ----------------------------------------------------------------------------------


class _Slow(http.server.BaseHTTPRequestHandler):
    hold: threading.Event

    def do_GET(self) -> None:
        self.hold.wait(300)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@contextlib.contextmanager
def slow_endpoint() -> Iterator[str]:
    hold = threading.Event()
    handler = type("Slow", (_Slow,), {"hold": hold})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slow"
    finally:
        hold.set()
        server.shutdown()
        server.server_close()


# -- the measurements ----------------------------------------------------------------------------------------------


@dataclass
class Options:
    quick: bool
    latency_samples: int
    throughput_runs: int
    agents: int = 4
    concurrency: int = 10
    lost: str = "compute"  # or "measure"
    say: Callable[[str], None] = print


def options(quick: bool, lost: str | None, say: Callable[[str], None]) -> Options:
    return Options(
        quick=quick, latency_samples=15 if quick else 100, throughput_runs=200 if quick else 2000,
        lost=lost or ("compute" if quick else "measure"), say=say,
    )  # fmt: skip


def run(opts: Options) -> dict[str, Any]:
    """The whole section: the table's figures and how they were measured. Canopy's phases run with the server up;
    then it stops and procrastinate's run (the database serves other work too: the peaks stay apart)."""
    if reason := unavailable():
        return {"skipped": reason}
    workdir = Path(tempfile.mkdtemp(prefix="canopy-bench-runtimes-"))
    procs = Processes(workdir)
    queue: Procrastinate | None = None
    try:
        with slow_endpoint() as slow_url:
            data = setup(slow_url)
            server = start_server(procs, free_port())
            url = server.url
            opts.say(f"  runtimes: server {url} ({SERVER}), agents' state in {workdir}")
            latency = canopy_latency(procs, url, data, opts)
            throughput = canopy_throughput(procs, url, data, opts)
            lost_ = lost(procs, url, data, opts)
            procs.stop(server.process)
            queue = Procrastinate()
            latency |= procrastinate_latency(procs, queue, opts)
            throughput |= procrastinate_throughput(procs, queue, opts)
            return {
                "method": {
                    "server": f"{SERVER} on loopback, the same database",
                    "agents": f"python -m runtimes.agent --concurrency {opts.concurrency} (batch claims)",
                    "procrastinate": f"3.10 workers, schema {PROCRASTINATE_SCHEMA} (dropped after), async no-op task",
                    "enqueue": "Canopy: the commit of run_task (placement, audit, log line; NOTIFY on commit) or of "
                    "a batch of queued runs; procrastinate: its deferred event",
                },
                "latency": latency,
                "throughput": throughput,
                "lost": lost_,
            }
    except Exception as error:
        outputs = {name: procs.output(name, 1500) for name, _ in procs.children}
        raise RuntimeError(f"{error}\n" + "\n".join(f"--- {n}:\n{o}" for n, o in outputs.items() if o)) from error
    finally:
        procs.stop_all()
        if queue is not None:
            queue.close()
        Run.objects.filter(task__project__org__tenant__name=TENANT).delete()
        shutil.rmtree(workdir, ignore_errors=True)


def canopy_latency(procs: Processes, url: str, data: Setup, opts: Options) -> dict[str, Any]:
    since = timezone.now()
    agent = start_agent(procs, url, data.runtime, "latency-agent", 1)
    wait_for(agents_ready(data.runtime, 1, since), 60, "the agent to enroll and heartbeat")
    time.sleep(1.0)  # parked in its long-poll claim
    claim_ms, start_ms, total_ms = [], [], []
    for _ in range(opts.latency_samples):
        committed: list[float] = []
        called = time.time()
        with transaction.atomic():
            # Registered before run_task's wake-up: runs first after the commit, before the NOTIFY is sent. The
            # commit is the enqueue: before it no agent can see the run.
            transaction.on_commit(lambda c=committed: c.append(time.time()))
            run_ = rs.run_task(actor=SYSTEM, task=data.task)
        wait_for(lambda pk=run_.pk: Run.objects.filter(pk=pk, status__in=Run.FINISHED).exists(), 30,
                 "a latency run to finish", poll=0.005)  # fmt: skip
        run_.refresh_from_db()
        claim_ms.append((run_.claimed_at.timestamp() - committed[0]) * 1000)
        start_ms.append((run_.started_at.timestamp() - committed[0]) * 1000)
        total_ms.append((run_.started_at.timestamp() - called) * 1000)
        time.sleep(0.3)  # the agent goes back to its claim
    procs.stop(agent)
    return {
        "samples": len(start_ms),
        "claim_p50_ms": round(percentile(claim_ms, 0.5), 1), "claim_p95_ms": round(percentile(claim_ms, 0.95), 1),
        "start_p50_ms": round(percentile(start_ms, 0.5), 1), "start_p95_ms": round(percentile(start_ms, 0.95), 1),
        "run_task_call_to_start_p50_ms": round(percentile(total_ms, 0.5), 1),
        "run_task_call_to_start_p95_ms": round(percentile(total_ms, 0.95), 1),
        "target_p95_ms": LATENCY_TARGET_MS,
    }  # fmt: skip


def procrastinate_latency(procs: Processes, queue: Procrastinate, opts: Options) -> dict[str, Any]:
    """One job at a time to an idle worker; deferred → started from its own events (the database's clock)."""
    worker = queue.worker(procs, "latency-procrastinate", 1)
    wait_for(lambda: queue.workers_ready(1), 60, "a procrastinate worker")
    time.sleep(1.0)
    for number in range(1, opts.latency_samples + 1):
        queue.defer(1)
        wait_for(lambda n=number: queue.succeeded() >= n, 30, "a procrastinate job", poll=0.005)
        time.sleep(0.3)
    rows = queue.query(
        "SELECT extract(epoch FROM s.at - d.at) * 1000 FROM {schema}.procrastinate_events d "
        "JOIN {schema}.procrastinate_events s ON s.job_id = d.job_id AND s.type = 'started' WHERE d.type = 'deferred'"
    )
    started = [float(r[0]) for r in rows]
    procs.stop(worker)
    queue.clear()
    return {
        "procrastinate_start_p50_ms": round(percentile(started, 0.5), 1),
        "procrastinate_start_p95_ms": round(percentile(started, 0.95), 1),
    }


def canopy_throughput(procs: Processes, url: str, data: Setup, opts: Options) -> dict[str, Any]:
    n, agents = opts.throughput_runs, opts.agents
    since = timezone.now()
    started = [start_agent(procs, url, data.runtime, f"agent-{i}", opts.concurrency) for i in range(agents)]
    wait_for(agents_ready(data.runtime, agents, since), 60, f"{agents} agents to enroll")
    time.sleep(1.0)
    Run.objects.filter(task=data.task).delete()
    committed: list[float] = []
    enqueue_many(data.task, data.runtime, n, committed)
    wait_for(lambda: Run.objects.filter(task=data.task, status__in=Run.FINISHED).count() >= n, 600,
             f"{n} runs to finish", poll=0.05)  # fmt: skip
    runs = Run.objects.filter(task=data.task)
    last = max(runs.values_list("finished_at", flat=True))
    seconds = last.timestamp() - committed[0]
    statuses = dict(runs.order_by().values("status").annotate(n=Count("pk")).values_list("status", "n"))
    once = runs.filter(status=Run.Status.SUCCEEDED, attempt=1).count()
    instances = set(runs.values_list("instance_id", flat=True))
    for process in started:
        procs.stop(process)
    return {
        "runs": n, "agents": agents, "concurrency": opts.concurrency, "seconds": round(seconds, 2),
        "runs_per_s": round(n / seconds, 1), "succeeded_once": once, "exactly_once": once == n,
        "agents_used": len(instances), "statuses": statuses,
    }  # fmt: skip


def procrastinate_throughput(procs: Processes, queue: Procrastinate, opts: Options) -> dict[str, Any]:
    """As many worker processes as agents, the same concurrency each; N no-op jobs deferred in one batch; from the
    first deferred event to the last succeeded one."""
    n, agents = opts.throughput_runs, opts.agents
    workers = [queue.worker(procs, f"procrastinate-{i}", opts.concurrency) for i in range(agents)]
    wait_for(lambda: queue.workers_ready(agents), 60, f"{agents} procrastinate workers")
    time.sleep(1.0)
    queue.defer(n)
    wait_for(lambda: queue.succeeded() >= n, 600, f"{n} procrastinate jobs", poll=0.05)
    seconds = float(queue.query(
        "SELECT extract(epoch FROM (SELECT max(at) FROM {schema}.procrastinate_events WHERE type = 'succeeded') - "
        "(SELECT min(at) FROM {schema}.procrastinate_events WHERE type = 'deferred'))"
    )[0][0])  # fmt: skip
    for process in workers:
        procs.stop(process)
    queue.clear()
    return {
        "procrastinate_workers": agents, "procrastinate_seconds": round(seconds, 2),
        "procrastinate_jobs_per_s": round(n / seconds, 1),
    }  # fmt: skip


def lost(procs: Processes, url: str, data: Setup, opts: Options) -> dict[str, Any]:
    """A killed agent's run declared lost, with the default lease and reaper interval."""
    lease_s, interval_s = settings.RUNTIME_LEASE_S, settings.RUNTIME_REAPER_INTERVAL_S
    sweeps = []
    for _ in range(5):
        start = time.perf_counter()
        reaper.reap()
        sweeps.append((time.perf_counter() - start) * 1000)
    sweep_ms = percentile(sweeps, 0.5)
    out: dict[str, Any] = {
        "lease_s": lease_s, "reaper_interval_s": interval_s, "heartbeat_s": settings.RUNTIME_HEARTBEAT_S,
        "sweep_ms": round(sweep_ms, 1), "worst_case_s": round(lease_s + interval_s + sweep_ms / 1000, 1),
        "target_s": LOST_TARGET_S,
    }  # fmt: skip
    if opts.lost != "measure":
        out.update(method="computed: lease + reaper interval + a timed sweep (the worst case)",
                   seconds=out["worst_case_s"])  # fmt: skip
        return out
    since = timezone.now()
    agent = start_agent(procs, url, data.runtime, "doomed-agent", 1)
    wait_for(agents_ready(data.runtime, 1, since), 60, "the agent to enroll")
    reaper_process = procs.start("reaper", [sys.executable, "manage.py", "runtimes_reaper"], child_env())
    run_ = rs.run_task(actor=SYSTEM, task=data.slow_task)
    wait_for(lambda: Run.objects.filter(pk=run_.pk, status=Run.Status.RUNNING).exists(), 60, "the slow run to start")
    time.sleep(2.0)  # mid-step
    agent.send_signal(signal.SIGKILL)
    agent.wait()
    killed = time.time()
    wait_for(lambda: Run.objects.filter(pk=run_.pk, status=Run.Status.LOST).exists(), lease_s + interval_s + 60,
             "the run to be declared lost", poll=0.1)  # fmt: skip
    seconds = time.time() - killed
    procs.stop(reaper_process)
    out.update(method="measured: kill -9 mid-run, the reaper command running with the default interval",
               seconds=round(seconds, 1))  # fmt: skip
    return out


def report(r: dict[str, Any], say: Callable[[str], None]) -> None:
    say("\nruntimes (real server, real agents over HTTP; procrastinate 3.10 on the same database, same run)")
    if "skipped" in r:
        say(f"  skipped: {r['skipped']}")
        return
    lat, tp, lo = r["latency"], r["throughput"], r["lost"]
    ok = "✓" if lat["start_p95_ms"] <= lat["target_p95_ms"] else "✗"
    rows = [
        ("enqueue (commit) → claimed, p50 / p95", f"{lat['claim_p50_ms']} / {lat['claim_p95_ms']} ms", "—"),
        ("enqueue (commit) → started, p50 / p95", f"{lat['start_p50_ms']} / {lat['start_p95_ms']} ms {ok} (≤ 100)",
         f"{lat['procrastinate_start_p50_ms']} / {lat['procrastinate_start_p95_ms']} ms"),
        (f"no-op throughput, {tp['agents']} processes × {tp['concurrency']}",
         f"{tp['runs_per_s']} runs/s ({tp['runs']} in {tp['seconds']} s)",
         f"{tp['procrastinate_jobs_per_s']} jobs/s ({tp['runs']} in {tp['procrastinate_seconds']} s)"),
        ("Run pressed (run_task call) → started", f"{lat['run_task_call_to_start_p50_ms']} / "
         f"{lat['run_task_call_to_start_p95_ms']} ms", "—"),
        ("exactly once", f"{tp['succeeded_once']}/{tp['runs']} succeeded at attempt 1", "—"),
        ("killed agent's run → lost", f"{lo['seconds']} s ({lo['method'].split(':')[0]}; "
         f"worst case {lo['worst_case_s']} s, target ≤ {lo['target_s']:.0f})", "not built in"),
    ]  # fmt: skip
    say(f"  {'measure':<42} {'Canopy':<52} procrastinate")
    for label, ours, theirs in rows:
        say(f"  {label:<42} {ours:<52} {theirs}")
    say(f"  (latency: {lat['samples']} samples, an idle agent parked in its claim; lost: {lo['method']}; lease "
        f"{lo['lease_s']} s, reaper every {lo['reaper_interval_s']} s, sweep {lo['sweep_ms']} ms)")  # fmt: skip
