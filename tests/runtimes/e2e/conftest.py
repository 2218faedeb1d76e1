"""End to end: Canopy served by pytest-django's ``live_server``, agents as real processes (``python -m
runtimes.agent``), the systems their steps call as real HTTP servers (pytest-httpserver, threaded).

SQLite's test database is one in-memory connection that the live server's threads share with the test; an agent
makes overlapping calls (a long-poll claim, heartbeats, log batches), whose transactions would interleave on it.
On SQLite the fixture therefore serves one request at a time (and the test reads under the same lock), with the
claim's long poll capped at 1 s so that a heartbeat never waits long; PostgreSQL serves them in parallel."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection
from pytest_httpserver import HTTPServer

from access.services import issue_token
from config.actors import SYSTEM
from resources.models import Run
from runtimes.models import Runtime
from runtimes.tokens import issue_enrollment_token
from tests.factories import World, build_world

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Canopy:
    """The live server, with what a test needs to talk to it and read it back."""

    url: str
    lock: Any
    world: World
    api: httpx.Client  # the REST API as alice (tenant admin), over HTTP

    def read(self, read: Callable[[], Any]) -> Any:
        with self.lock:
            return read()

    def run(self, run: Run) -> Run:
        return self.read(lambda: Run.objects.get(pk=run.pk))

    def wait_run(self, run: Run, predicate: Callable[[Run], bool], timeout: float = 30) -> Run:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fresh = self.run(run)
            if predicate(fresh):
                return fresh
            time.sleep(0.1)
        fresh = self.run(run)
        raise AssertionError(f"run {run.pk} is {fresh.status} ({fresh.error}) after {timeout} s")

    def wait_for(self, read: Callable[[], Any], timeout: float = 30) -> Any:
        """The first truthy answer of ``read()``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if answer := self.read(read):
                return answer
            time.sleep(0.1)
        raise AssertionError(f"nothing after {timeout} s")

    def finished(self, run: Run, timeout: float = 30) -> Run:
        return self.wait_run(run, lambda r: r.status in Run.FINISHED, timeout)


class _SerializedApp:
    """A WSGI app that serves one request at a time (and whose lock the test shares to read)."""

    def __init__(self, app: Any, lock: Any) -> None:
        self.app, self.lock = app, lock

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self.lock:
            return list(self.app(environ, start_response))


@pytest.fixture
def canopy(live_server: Any, settings: Any, transactional_db: Any) -> Iterator[Canopy]:
    settings.RUNTIME_HEARTBEAT_S = 1
    settings.RUNTIME_REAPER_INTERVAL_S = 0.5  # claims and heartbeats sweep (the reaper command is not running)
    httpd = live_server.thread.httpd
    app = httpd.get_app()
    if connection.vendor == "sqlite":
        settings.RUNTIME_CLAIM_MAX_WAIT_S = 1
        lock: Any = threading.RLock()
        httpd.set_app(_SerializedApp(app, lock))
    else:
        lock = contextlib.nullcontext()
    world = build_world()
    _, raw = issue_token(user=world.tenant_admin)
    api = httpx.Client(base_url=live_server.url + "/api/v1/", headers={"Authorization": f"Bearer {raw}"}, timeout=30)
    try:
        yield Canopy(live_server.url, lock, world, api)
    finally:
        api.close()
        httpd.set_app(app)


@pytest.fixture
def target() -> Iterator[HTTPServer]:
    """The system the steps call."""
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@dataclass
class AgentProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    state_dir: Path
    output: Any = field(repr=False, default=None)

    @property
    def text(self) -> str:
        return self.log_path.read_text()

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def start_agent(canopy: Canopy, tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    """start_agent(runtime, *args, token=…) → an agent process enrolled on ``runtime`` (a fresh enrollment token
    unless ``token`` is given, or ``state_dir`` holds a state already)."""
    started: list[AgentProcess] = []

    def start(runtime: Runtime | None, *args: str, token: str | None = None, state_dir: Path | None = None,
              env: dict[str, str] | None = None) -> AgentProcess:  # fmt: skip
        state_dir = state_dir or tmp_path / f"agent-{len(started) + 1}"
        if token is None and runtime is not None and not (state_dir / "agent.json").exists():
            _, token = canopy.read(lambda: issue_enrollment_token(runtime, actor=SYSTEM))
        log_path = tmp_path / f"agent-{uuid.uuid4().hex[:8]}.log"
        output = open(log_path, "wb")  # noqa: SIM115 (closed at teardown)
        command = [sys.executable, "-m", "runtimes.agent", "--url", canopy.url, "--state-dir", str(state_dir)]
        process = subprocess.Popen(
            [*command, *args],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "CANOPY_ENROLLMENT_TOKEN": token or "",
                **(env or {}),
            },
        )
        agent = AgentProcess(process, log_path, state_dir, output)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.kill()
        agent.output.close()
