"""manage.py runtime_agent as a real process (PostgreSQL: it shares the live server's test database): it creates
the platform's global runtime, enrolls and runs what is queued there; the SSRF guard of a global runtime refuses a
loopback address until the runtime is allowed private networks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from pytest_httpserver import HTTPServer

from runtimes.models import Runtime
from tests.runtimes.e2e.conftest import ROOT, Canopy
from tests.runtimes.queue_helpers import make_task, queue_run

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_command(canopy: Canopy, state_dir: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = state_dir.with_suffix(".log")
    command = [sys.executable, "manage.py", "runtime_agent", "--url", canopy.url, "--state-dir", str(state_dir), *args]
    env = {**os.environ, "DATABASE_URL": database_url()}
    env.pop("CANOPY_ENROLLMENT_TOKEN", None)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    return process, log


def test_the_command_serves_the_platform_runtime(
    postgres_only: Any, canopy: Canopy, target: HTTPServer, tmp_path: Path
) -> None:
    target.expect_request("/ping").respond_with_json({"pong": True})
    task = make_task(canopy.world.website, "Ping", steps=[
        {"type": "http", "method": "GET", "url": target.url_for("/ping"), "name": "ping", "into": "r"},
    ])  # fmt: skip
    process, log = start_command(canopy, tmp_path / "first")
    try:
        runtime = canopy.wait_for(lambda: Runtime.objects.filter(name="platform").first())
        assert runtime.kind == Runtime.Kind.GLOBAL and runtime.is_platform_default and runtime.all_tenants
        refused = canopy.finished(queue_run(task, runtime))
        assert refused.status == "failed"
        assert "step 1 (ping):" in refused.error and "private, loopback" in refused.error
        assert target.log == []
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(40) == 0, log.read_text()
    assert "enrolled as instance" in log.read_text()

    process, log = start_command(canopy, tmp_path / "second", "--allow-private-network")
    try:
        done = canopy.finished(queue_run(task, runtime))
        assert done.status == "succeeded", done.error
        assert len(target.log) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(40) == 0, log.read_text()
    assert Runtime.objects.filter(name__iexact="platform").count() == 1
