"""The agent as a real process against a scripted Canopy (a threaded HTTP server speaking the agent API).

A scripted server is used here only for what the real one cannot be made to do on cue: answer a log batch with a
network error after storing it, report a sequence gap, lose a lease mid-run, revoke a token between two calls. The
end-to-end tests (tests/runtimes/e2e/) run the same agent against Canopy itself."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/api/v1/runtime-agent/"


class FakeCanopy:
    """The agent API in memory. ``runs[id]`` keeps what the agent reported: status, log lines by seq, finish."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.lock = threading.Lock()
        self.tokens = {"cna_first"}
        self.enrollment_tokens = {"cne_good"}
        self.queue: list[dict[str, Any]] = []
        self.runs: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[float, str, dict[str, Any]]] = []
        self.heartbeat_s = 0.3
        self.cancel: set[str] = set()
        self.lost: set[str] = set()
        self.log_hooks: list[Callable[[str, dict[str, Any]], Response | None]] = []
        self.heartbeat_hook: Callable[[], Response | None] | None = None
        self.running_now = 0
        self.running_max = 0
        routes = {
            "enroll": self.enroll, "token/rotate": self.rotate, "heartbeat": self.heartbeat, "claim": self.claim,
        }  # fmt: skip
        for path, handler in routes.items():
            server.expect_request(PREFIX + path, method="POST").respond_with_handler(self._wrap(path, handler))
        server.expect_request(re.compile(PREFIX + r"runs/[^/]+/\w+"), method="POST").respond_with_handler(
            self._wrap("run", self.run_call)
        )

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def _wrap(self, name: str, handler: Callable[[Request, dict[str, Any]], Response]) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            body = json.loads(request.get_data() or b"{}")
            with self.lock:
                self.calls.append((time.monotonic(), request.path.removeprefix(PREFIX), body))
            if name != "enroll":
                token = request.headers.get("Authorization", "").removeprefix("Bearer ")
                with self.lock:
                    known = token in self.tokens
                if not known:
                    return self.json({"detail": "Invalid token.", "code": "token_invalid"}, 401)
            return handler(request, body)

        return handle

    @staticmethod
    def json(data: Any, status: int = 200) -> Response:
        return Response(json.dumps(data), status=status, content_type="application/json")

    def paths(self, prefix: str = "") -> list[str]:
        with self.lock:
            return [path for _, path, _ in self.calls if path.startswith(prefix)]

    # -- the API ----------------------------------------------------------------------------------------------

    def enroll(self, request: Request, body: dict[str, Any]) -> Response:
        with self.lock:
            if body["enrollment_token"] not in self.enrollment_tokens:
                return self.json({"detail": "This enrollment token is expired, used or unknown.",
                                  "code": "enrollment_token_invalid"}, 400)  # fmt: skip
            self.enrollment_tokens.discard(body["enrollment_token"])
        return self.json({
            "runtime": {"id": "rt-1", "name": "edge", "kind": "local", "sovereign": False,
                        "allow_private_network": False},
            "instance": body["instance"]["id"], "token": "cna_first", "expires_at": "2099-01-01T00:00:00Z",
            "heartbeat_s": self.heartbeat_s, "lease_s": 30,
        }, 201)  # fmt: skip

    def rotate(self, request: Request, body: dict[str, Any]) -> Response:
        with self.lock:
            self.tokens.add("cna_rotated")
        return self.json({"token": "cna_rotated", "expires_at": "2099-06-01T00:00:00Z"})

    def heartbeat(self, request: Request, body: dict[str, Any]) -> Response:
        if self.heartbeat_hook and (answer := self.heartbeat_hook()):
            return answer
        running = {entry["run"] for entry in body["running"]}
        with self.lock:
            cancel, lost = sorted(self.cancel & running), sorted(self.lost & running)
        return self.json({"cancel": cancel, "lost": lost, "next_heartbeat_s": self.heartbeat_s, "paused": False})

    def claim(self, request: Request, body: dict[str, Any]) -> Response:
        deadline = time.monotonic() + min(body["wait_s"], 1)
        while time.monotonic() < deadline:
            with self.lock:
                taken, self.queue = self.queue[: body["max"]], self.queue[body["max"] :]
                for run in taken:
                    self.runs[run["id"]] = {"status": "claimed", "lines": {}, "next_seq": 1, "finish": None}
                    if body.get("start"):  # started by the claim, as Canopy does
                        self._start(self.runs[run["id"]])
            if taken:
                started = {"status": "running"} if body.get("start") else {}
                return self.json({"runs": [{**run, **started} for run in taken]})
            time.sleep(0.05)
        return Response(status=204)

    def run_call(self, request: Request, body: dict[str, Any]) -> Response:
        _, run_id, action = request.path.removeprefix(PREFIX).split("/")
        with self.lock:
            run = self.runs.get(run_id)
            lease_ok = run is not None and body.get("lease") == f"lease-{run_id}" and run_id not in self.lost
        if not lease_ok:
            return self.json({"detail": "The lease is no longer yours.", "code": "lease_lost"}, 409)
        assert run is not None
        if action == "start":
            with self.lock:
                self._start(run)
            return self.json({"cancel": False})
        if action == "logs":
            for hook in list(self.log_hooks):
                if (answer := hook(run_id, body)) is not None:
                    return answer
            with self.lock:
                answer = self._store_lines(run, body["lines"])
            return self.json(answer, 409 if answer.get("code") else 200)
        if action == "finish":
            with self.lock:
                if run["finish"] is not None:
                    return self.json({"id": run_id, "status": run["status"]})
                stored = self._store_lines(run, body.get("lines") or [])  # the last log batch, first
                if stored.get("code"):
                    return self.json(stored, 409)  # nothing finished
                run["status"], run["finish"] = body["status"], body
                self.running_now -= 1
            return self.json({"id": run_id, "status": body["status"]})
        return self.json({"detail": "no"}, 404)

    def _start(self, run: dict[str, Any]) -> None:
        if run["status"] == "claimed":
            run["status"] = "running"
            self.running_now += 1
            self.running_max = max(self.running_max, self.running_now)

    def _store_lines(self, run: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
        if lines and lines[0]["seq"] > run["next_seq"]:
            return {"detail": "gap", "code": "seq_gap", "next_seq": run["next_seq"]}
        for line in lines:
            if line["seq"] >= run["next_seq"]:
                run["lines"][line["seq"]] = line
                run["next_seq"] = line["seq"] + 1
        return {"next_seq": run["next_seq"], "cancel": False}

    # -- helpers for tests ------------------------------------------------------------------------------------

    def queue_run(self, steps: list[dict[str, Any]], **extra: Any) -> str:
        run_id = str(uuid.uuid4())
        with self.lock:
            self.queue.append({
                "id": run_id, "task": {"id": "t-1", "name": "Sync"}, "attempt": 1, "lease": f"lease-{run_id}",
                "lease_expires_at": "2099-01-01T00:00:00Z", "sovereign": False, "steps": steps,
                "context": {"task": {"id": "t-1", "name": "Sync"}, "org": {"id": "o", "name": "Acme"},
                            "run": {"id": run_id, "attempt": 1}, "credentials": {}, "lookup_tables": {}, "env": {}},
                **extra,
            })  # fmt: skip
        return run_id

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate():
                    return
            time.sleep(0.05)
        raise AssertionError("timed out waiting for the agent")

    def finished(self, run_id: str) -> dict[str, Any]:
        self.wait_for(lambda: self.runs.get(run_id, {}).get("finish") is not None)
        return self.runs[run_id]["finish"]


@pytest.fixture
def canopy() -> Iterator[FakeCanopy]:
    server = HTTPServer(threaded=True)
    server.start()
    yield FakeCanopy(server)
    server.clear()
    server.stop()


class AgentProcess:
    def __init__(self, canopy: FakeCanopy, state_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.log_path = state_dir.parent / f"agent-{uuid.uuid4().hex[:6]}.log"
        self.output = open(self.log_path, "w")  # noqa: SIM115
        command = [sys.executable, "-m", "runtimes.agent", "--url", canopy.url, "--state-dir", str(state_dir), *args]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=self.output, stderr=subprocess.STDOUT,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})},
        )  # fmt: skip

    @property
    def text(self) -> str:
        return self.log_path.read_text()

    def wait(self, timeout: float = 20) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self.output.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.output.close()


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.stop()


@pytest.fixture
def start(canopy: FakeCanopy, agents: list[AgentProcess], tmp_path: Path) -> Callable[..., AgentProcess]:
    def start(*args: str, state_dir: Path | None = None, enroll: bool = True, **kwargs: Any) -> AgentProcess:
        extra = ["--enrollment-token", "cne_good"] if enroll else []
        agent = AgentProcess(canopy, state_dir or tmp_path / "state", *extra, "--wait-s", "1", *args, **kwargs)
        agents.append(agent)
        return agent

    return start


def log_step(message: str, level: str = "info") -> dict[str, Any]:
    return {"type": "log", "message": message, "level": level}


def test_enrolls_runs_and_reuses_its_state(
    canopy: FakeCanopy, start: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    run_id = canopy.queue_run([log_step("hello {{ run.id }}"), {"type": "transform", "expression": "run.attempt"}])
    agent = start("--name", "edge-1")
    finish = canopy.finished(run_id)
    assert finish["status"] == "succeeded" and finish["error"] == ""
    assert [step["status"] for step in finish["steps"]] == ["succeeded", "succeeded"]
    canopy.wait_for(lambda: any(line["message"] == f"hello {run_id}" for line in canopy.runs[run_id]["lines"].values()))
    state_file = tmp_path / "state" / "agent.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    saved = json.loads(state_file.read_text())
    assert saved["token"] == "cna_first" and saved["runtime"]["name"] == "edge"
    enroll = next(body for _, path, body in canopy.calls if path == "enroll")
    assert enroll["instance"] == {"id": saved["instance"], "hostname": "edge-1", "version": "1.0.0"}
    agent.process.send_signal(signal.SIGTERM)
    assert agent.wait() == 0
    assert "enrolled as instance" in agent.text and f"finished run {run_id}: succeeded" in agent.text

    # Started again with the (now used) enrollment token: the state is reused, the token ignored, saying so.
    again = start()
    second = canopy.queue_run([log_step("again")])
    assert canopy.finished(second)["status"] == "succeeded"
    again.process.send_signal(signal.SIGTERM)
    assert again.wait() == 0
    assert canopy.paths("enroll") == ["enroll"]
    assert "the token is ignored" in again.text


def test_a_refused_enrollment_exits_with_canopys_message(
    canopy: FakeCanopy, start: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    canopy.enrollment_tokens.clear()
    agent = start()
    assert agent.wait() == 2
    assert "enrollment refused: This enrollment token is expired, used or unknown." in agent.text
    assert not (tmp_path / "state" / "agent.json").exists()
    assert canopy.paths("claim") == []


def test_plain_http_to_another_host_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runtimes.agent", "--url", "http://canopy.example.com", "--state-dir", str(tmp_path),
         "--enrollment-token", "cne_x"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Refusing plain http://" in done.stderr


def test_a_state_for_another_canopy_is_never_used_elsewhere(
    canopy: FakeCanopy, start: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "agent.json").write_text(json.dumps({
        "url": "https://other.example", "runtime": {}, "instance": "i", "token": "cna_first",
        "expires_at": "2099-01-01T00:00:00Z",
    }))  # fmt: skip
    agent = start(enroll=False)
    assert agent.wait() == 2
    assert "belongs to https://other.example" in agent.text
    assert canopy.calls == []


def test_logs_are_batched_numbered_from_one_and_resent_after_a_network_error(
    canopy: FakeCanopy, start: Callable[..., AgentProcess]
) -> None:
    failed_once: list[int] = []

    def store_then_fail(run_id: str, body: dict[str, Any]) -> Response | None:
        # The first batch is stored, but its answer is lost: the agent must send the same batch again.
        if not failed_once:
            failed_once.append(len(body["lines"]))
            with canopy.lock:
                canopy._store_lines(canopy.runs[run_id], body["lines"])
            return Response("bad gateway", status=502)
        return None

    canopy.log_hooks.append(store_then_fail)
    run_id = canopy.queue_run([log_step(f"line {n}") for n in range(120)])
    start()
    assert canopy.finished(run_id)["status"] == "succeeded"
    lines = canopy.runs[run_id]["lines"]
    assert sorted(lines) == list(range(1, len(lines) + 1))
    messages = [lines[seq]["message"] for seq in sorted(lines)]
    assert [m for m in messages if m.startswith("line ")] == [f"line {n}" for n in range(120)]
    # The last batch goes with the finish call (one request less per run).
    batches = [body["lines"] for _, path, body in canopy.calls if path.endswith(("/logs", "/finish"))]
    assert len(batches) >= 3 and all(len(batch) <= 200 for batch in batches)
    assert canopy.finished(run_id)["lines"] and batches[-1] == canopy.finished(run_id)["lines"]
    assert batches[0] == batches[1]  # the same batch, resent as it was
    assert batches[0][0]["seq"] == 1


def test_a_sequence_gap_resynchronizes_the_numbering(
    canopy: FakeCanopy, start: Callable[..., AgentProcess], slow: HTTPServer
) -> None:
    gaps: list[int] = []

    def forget_first(run_id: str, body: dict[str, Any]) -> Response | None:
        # Canopy "lost" the agent's first batch: it still expects seq 1 when the agent goes on at 3 or 4.
        if not gaps and body["lines"][0]["seq"] == 1:
            gaps.append(0)
            return FakeCanopy.json({"next_seq": 1, "cancel": False})
        return None

    canopy.log_hooks.append(forget_first)
    run_id = canopy.queue_run(
        [
            log_step("a"),
            {"type": "http", "method": "GET", "url": slow.url_for("/slow?s=1")},
            log_step("b"),
        ]
    )
    start()
    assert canopy.finished(run_id)["status"] == "succeeded"
    lines = canopy.runs[run_id]["lines"]
    assert sorted(lines) == list(range(1, len(lines) + 1))  # renumbered from next_seq: no hole, no overlap
    messages = [lines[seq]["message"] for seq in sorted(lines)]
    assert "b" in messages and "a" not in messages  # the forgotten batch stays forgotten; the rest arrived
    rejected = [
        body
        for _, path, body in canopy.calls
        if path.endswith(("/logs", "/finish")) and body.get("lines") and body["lines"][0]["seq"] > 1
    ]
    assert rejected  # the batch that met the gap (a logs call or the finish), sent again renumbered from 1 afterwards


def test_a_lost_lease_drops_the_run_without_finishing_it(
    canopy: FakeCanopy, start: Callable[..., AgentProcess], slow: HTTPServer
) -> None:
    run_id = canopy.queue_run([{"type": "http", "method": "GET", "url": slow.url_for("/slow"), "timeout_s": 20}])
    agent = start()
    canopy.wait_for(lambda: canopy.runs.get(run_id, {}).get("status") == "running")
    time.sleep(0.5)
    with canopy.lock:
        canopy.lost.add(run_id)
    canopy.wait_for(lambda: f"run {run_id}: lease lost" in agent.text, timeout=5)
    time.sleep(1)
    assert canopy.runs[run_id]["finish"] is None
    assert not [p for p in canopy.paths(f"runs/{run_id}/finish")]


@pytest.fixture
def slow() -> Iterator[HTTPServer]:
    server = HTTPServer(threaded=True)
    server.start()

    def slow_answer(request: Request) -> Response:
        time.sleep(float(request.args.get("s", "8")))
        return Response("done")

    server.expect_request("/slow").respond_with_handler(slow_answer)
    yield server
    server.clear()
    server.stop()


def test_a_stop_from_the_heartbeat_ends_a_slow_step_at_once(
    canopy: FakeCanopy, start: Callable[..., AgentProcess], slow: HTTPServer
) -> None:
    run_id = canopy.queue_run([
        {"type": "http", "method": "GET", "url": slow.url_for("/slow"), "name": "wait"}, log_step("never"),
    ])  # fmt: skip
    start()
    canopy.wait_for(lambda: canopy.runs.get(run_id, {}).get("status") == "running")
    time.sleep(0.5)
    asked = time.monotonic()
    with canopy.lock:
        canopy.cancel.add(run_id)
    finish = canopy.finished(run_id)
    assert time.monotonic() - asked < canopy.heartbeat_s + 1.5
    assert finish["status"] == "stopped" and finish["error"] == ""
    assert [s["status"] for s in finish["steps"]] == ["stopped", "skipped"]


def test_a_revoked_token_stops_the_agent_with_a_clear_message(
    canopy: FakeCanopy, start: Callable[..., AgentProcess]
) -> None:
    agent = start()
    canopy.wait_for(lambda: len([p for _, p, _ in canopy.calls if p == "heartbeat"]) >= 2)
    with canopy.lock:
        canopy.tokens.clear()
    assert agent.wait() == 3
    assert "token revoked or expired" in agent.text
    claims = len(canopy.paths("claim"))
    canopy.queue_run([log_step("x")])
    time.sleep(1.5)
    assert len(canopy.paths("claim")) == claims


def test_sigterm_lets_runs_finish_within_the_grace_then_stops_them(
    canopy: FakeCanopy, start: Callable[..., AgentProcess], slow: HTTPServer
) -> None:
    quick = canopy.queue_run([{"type": "http", "method": "GET", "url": slow.url_for("/slow?s=1")}])
    long = canopy.queue_run([{"type": "http", "method": "GET", "url": slow.url_for("/slow?s=30")}])
    agent = start("--grace-s", "2.5", "--concurrency", "2")
    canopy.wait_for(lambda: all(canopy.runs.get(r, {}).get("status") == "running" for r in (quick, long)))
    signalled = time.monotonic()
    agent.process.send_signal(signal.SIGTERM)
    assert canopy.finished(quick)["status"] == "succeeded"  # finished within the grace
    stopped = canopy.finished(long)
    assert stopped["status"] == "stopped" and stopped["error"] == "agent shut down"
    assert agent.wait() == 0
    assert 2.5 <= time.monotonic() - signalled < 8
    # Heartbeats went on during the grace, and nothing more was claimed.
    beats = [at for at, path, _ in canopy.calls if path == "heartbeat" and at > signalled + 0.5]
    assert beats
    assert not [at for at, path, _ in canopy.calls if path == "claim" and at > signalled + 1.5]


def test_a_second_signal_exits_at_once(
    canopy: FakeCanopy, start: Callable[..., AgentProcess], slow: HTTPServer
) -> None:
    run_id = canopy.queue_run([{"type": "http", "method": "GET", "url": slow.url_for("/slow?s=30")}])
    agent = start("--grace-s", "30")
    canopy.wait_for(lambda: canopy.runs.get(run_id, {}).get("status") == "running")
    agent.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    agent.process.send_signal(signal.SIGTERM)
    assert agent.wait(5) == 128 + signal.SIGTERM
    assert canopy.runs[run_id]["finish"] is None  # left to the lease and the reaper


def test_the_token_is_rotated_and_saved_before_it_is_used(
    canopy: FakeCanopy, start: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    state_dir, now = tmp_path / "state", datetime.now(UTC)
    state_dir.mkdir()
    (state_dir / "agent.json").write_text(json.dumps({
        "url": canopy.url, "runtime": {"name": "edge", "kind": "local"}, "instance": "i-1", "token": "cna_first",
        "issued_at": (now - timedelta(days=29)).isoformat(), "expires_at": (now + timedelta(days=1)).isoformat(),
    }))  # fmt: skip
    agent = start(enroll=False)
    canopy.wait_for(lambda: "token/rotate" in [p for _, p, _ in canopy.calls])
    time.sleep(0.5)
    assert json.loads((state_dir / "agent.json").read_text())["token"] == "cna_rotated"
    with canopy.lock:
        canopy.tokens.discard("cna_first")  # the old one stops working: the agent goes on with the new one
    run_id = canopy.queue_run([log_step("after rotation")])
    assert canopy.finished(run_id)["status"] == "succeeded"
    assert len(canopy.paths("token/rotate")) == 1
    agent.process.send_signal(signal.SIGTERM)
    assert agent.wait() == 0


def test_concurrency_limits_the_runs_in_hand(
    canopy: FakeCanopy, start: Callable[..., AgentProcess], slow: HTTPServer
) -> None:
    step = {"type": "http", "method": "GET", "url": slow.url_for("/slow?s=0.7")}
    runs = [canopy.queue_run([step]) for _ in range(5)]
    start("--concurrency", "2")
    for run_id in runs:
        assert canopy.finished(run_id)["status"] == "succeeded"
    assert canopy.running_max == 2
    claims = [body for _, path, body in canopy.calls if path == "claim"]
    assert all(1 <= body["max"] <= 2 for body in claims)


def test_a_failed_step_fails_the_run_naming_the_step(
    canopy: FakeCanopy, start: Callable[..., AgentProcess], httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/orders").respond_with_data("upstream exploded", status=500)
    run_id = canopy.queue_run([
        log_step("begin"),
        {"type": "http", "method": "GET", "url": httpserver.url_for("/orders"), "name": "fetch orders"},
        log_step("never"),
    ])  # fmt: skip
    start()
    finish = canopy.finished(run_id)
    assert finish["status"] == "failed"
    assert finish["error"] == "step 2 (fetch orders): HTTP 500 INTERNAL SERVER ERROR: upstream exploded"
    assert [s["status"] for s in finish["steps"]] == ["succeeded", "failed", "skipped"]
    assert finish["steps"][1]["error"] == finish["error"]


def test_a_sovereign_run_keeps_its_log_here_and_sends_only_metadata(
    canopy: FakeCanopy, start: Callable[..., AgentProcess], httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/pay").respond_with_data("card 4111-1111 declined", status=402)
    run_id = canopy.queue_run(
        [log_step("customer Zoë paid {{ run.id }}"),
         {"type": "http", "method": "POST", "url": httpserver.url_for("/pay"), "name": "charge"}],
        sovereign=True,
    )  # fmt: skip
    log_dir = tmp_path / "sovereign-logs"
    start("--log-dir", str(log_dir))
    finish = canopy.finished(run_id)
    assert finish["status"] == "failed"
    assert finish["log_location"] == str(log_dir / f"{run_id}.log")
    assert "4111" not in json.dumps(finish) and all("error" not in step for step in finish["steps"])
    sent = json.dumps([body for _, path, body in canopy.calls if path.startswith(f"runs/{run_id}")])
    assert "Zoë" not in sent and "4111" not in sent
    assert {line["message"] for line in canopy.runs[run_id]["lines"].values()} == {""}
    local = (log_dir / f"{run_id}.log").read_text()
    assert f"customer Zoë paid {run_id}" in local and "card 4111-1111 declined" in local
    assert stat.S_IMODE(log_dir.stat().st_mode) == 0o700


def test_heartbeats_go_on_while_every_slot_is_busy(
    canopy: FakeCanopy, start: Callable[..., AgentProcess], slow: HTTPServer
) -> None:
    # Steps that keep the CPU and the network busy do not delay the heartbeat thread.
    burn = {"type": "transform", "expression": "length(to_string(`" + json.dumps(list(range(20000))) + "`))"}
    step = {"type": "http", "method": "GET", "url": slow.url_for("/slow?s=3")}
    for _ in range(2):
        canopy.queue_run([*([burn] * 30), step])
    start("--concurrency", "2")
    canopy.wait_for(lambda: canopy.running_now == 2)
    began = time.monotonic()
    time.sleep(2.5)
    beats = [at for at, path, _ in canopy.calls if path == "heartbeat" and at >= began]
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    assert len(beats) >= 4 and max(gaps) < canopy.heartbeat_s + 1.2  # a step lasts 3 s


def test_a_secret_echoed_by_a_server_never_reaches_canopy(
    canopy: FakeCanopy, start: Callable[..., AgentProcess], httpserver: HTTPServer
) -> None:
    def echo(request: Request) -> Response:
        return Response(f"bad key {request.headers.get('X-Key')}", status=403)

    httpserver.expect_request("/api").respond_with_handler(echo)
    run_id = canopy.queue_run([{"type": "http", "method": "GET", "url": httpserver.url_for("/api"), "credential": "k"}])
    with canopy.lock:
        canopy.queue[-1]["context"]["credentials"] = {
            "k": {"kind": "api_key", "source": "runtime", "fields": {"header": "X-Key"}}
        }
    start(env={"CANOPY_SECRET_K_KEY": "rt-Secret-echo-42"})
    finish = canopy.finished(run_id)
    assert finish["status"] == "failed"
    assert finish["error"] == "step 1 (http): HTTP 403 FORBIDDEN: bad key [redacted]"
    assert "rt-Secret-echo-42" not in json.dumps([body for _, _, body in canopy.calls])


def test_a_sovereign_run_whose_log_cannot_be_written_fails_without_running(
    canopy: FakeCanopy, start: Callable[..., AgentProcess], tmp_path: Path, httpserver: HTTPServer
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the log directory should be")
    run_id = canopy.queue_run([{"type": "http", "method": "GET", "url": httpserver.url_for("/x")}], sovereign=True)
    start("--log-dir", str(blocked))
    finish = canopy.finished(run_id)
    assert finish["status"] == "failed" and "cannot write the run's local log" in finish["error"]
    assert [step["status"] for step in finish["steps"]] == ["skipped"]
    assert httpserver.log == []
