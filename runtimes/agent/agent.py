"""The agent's loops: claim, heartbeat, token rotation and the graceful stop.

Threads: the *claimer* long-polls ``claim`` for as many runs as there are free slots (``--concurrency``); each run
executes in a thread of its own (runtimes.agent.runner); the *heartbeat* thread reports the runs in hand every
``heartbeat_s`` and renews their leases. It shares nothing with step work but a lock held for a dict copy, and uses
its own connections to Canopy, so a busy or blocked step never delays it (CPU-starved renewals are how runners
lose their jobs: actions/runner#3539). It also rotates the token when less than a third of its lifetime is left.

Stopping (SIGTERM/SIGINT): claim nothing more; runs in hand go on for the grace period, heartbeats too
(buildkite/agent#992); then the ones still going have their step stopped and finish as ``stopped`` with error
"agent shut down". A long poll in flight is awaited (at most ``wait_s``): a run Canopy hands out meanwhile is
executed, not left claimed by a process that is gone. A second signal exits at once (the leases then expire and
Canopy's reaper takes over).
A 401 from Canopy ends the agent: its token was revoked or has expired."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtimes.agent import VERSION, state
from runtimes.agent import client as api
from runtimes.agent.runner import RunExecution, RunOptions

logger = logging.getLogger("canopy.agent")

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_TOKEN_INVALID = 3
DEFAULT_HEARTBEAT_S = 10.0
SHUTDOWN_FINISH_S = 15.0  # after the grace: how long stopped runs get to report before the agent exits anyway


@dataclass
class Config:
    url: str
    state_dir: Path
    concurrency: int = 4
    secrets_dir: str | None = None
    log_dir: Path | None = None
    name: str = ""
    grace_s: float = 30.0
    wait_s: int = 25


class Agent:
    def __init__(self, config: Config, saved: dict[str, Any]) -> None:
        self.config = config
        self.state = saved
        self.instance = str(saved["instance"])
        runtime = saved.get("runtime") or {}
        user_agent = f"canopy-agent/{VERSION}"
        token = str(saved["token"])
        self.client = api.CanopyClient(config.url, token, user_agent=user_agent)  # the runs' calls
        self.heartbeat_client = api.CanopyClient(config.url, token, user_agent=user_agent)
        self.claim_client = api.CanopyClient(config.url, token, user_agent=user_agent)
        self.heartbeat_s = float(saved.get("heartbeat_s") or DEFAULT_HEARTBEAT_S)
        self.paused = False
        self.runs: dict[str, RunExecution] = {}
        self.lock = threading.Lock()
        self.slot_freed = threading.Condition(self.lock)
        self.stopping = threading.Event()  # claim nothing more
        self.give_up = threading.Event()  # exit now: no more retries
        self.closed = threading.Event()  # the heartbeat thread ends
        self.token_revoked = False
        self.options = RunOptions(
            client=self.client,
            secrets_dir=config.secrets_dir,
            log_dir=config.log_dir or config.state_dir / "logs",
            allow_private=runtime.get("kind") == "local" or bool(runtime.get("allow_private_network")),
            agent_name=config.name or self.instance,
            give_up=self.give_up,
            on_token_invalid=self.token_invalid,
        )

    # -- control (any thread; signal handlers) ------------------------------------------------------------------

    def request_stop(self, why: str = "signal") -> None:
        """Claim nothing more. Called from a signal handler, so it takes no lock (the main thread may hold one):
        the claimer sees the event within a second."""
        if not self.stopping.is_set():
            logger.info(
                "stopping (%s): no new runs; %d running, given up to %.0f s to finish",
                why, len(self.runs), self.config.grace_s,
            )  # fmt: skip
        self.stopping.set()

    def token_invalid(self) -> None:
        if not self.token_revoked:
            self.token_revoked = True
            logger.error(
                "token revoked or expired (Canopy answered 401): stopping; enroll again with a new enrollment token"
            )
        self.stopping.set()
        self.give_up.set()
        for run in self.active():
            run.drop()

    def active(self) -> list[RunExecution]:
        with self.lock:
            return list(self.runs.values())

    # -- the main thread ----------------------------------------------------------------------------------------

    def run(self) -> int:
        runtime = self.state.get("runtime") or {}
        logger.info(
            "agent %s (instance %s) serving runtime %s at %s, %d concurrent run(s)",
            VERSION, self.instance, runtime.get("name", "?"), self.config.url, self.config.concurrency,
        )  # fmt: skip
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        claimer = threading.Thread(target=self._claim_loop, name="claimer", daemon=True)
        heartbeat.start()
        claimer.start()
        grace_ends: float | None = None
        finish_by: float | None = None
        while not self.give_up.is_set():
            if self.stopping.is_set():
                now = time.monotonic()
                grace_ends = grace_ends if grace_ends is not None else now + self.config.grace_s
                running = self.active()
                if not running and not claimer.is_alive():
                    break
                if not running:  # a long poll in flight: what it brings back must not be left claimed
                    claimer.join(timeout=0.2)
                    continue
                if finish_by is None and now >= grace_ends:
                    logger.info("grace period over: stopping %d run(s)", len(running))
                    for execution in running:
                        execution.shut_down()
                    finish_by = now + SHUTDOWN_FINISH_S
                if finish_by is not None and now >= finish_by:
                    logger.warning("%d run(s) did not report in time; exiting anyway", len(running))
                    break
            self.give_up.wait(0.2)
        self.give_up.set()
        self.closed.set()
        heartbeat.join(timeout=2)
        for connection in (self.client, self.heartbeat_client, self.claim_client):
            connection.close()
        if self.token_revoked:
            return EXIT_TOKEN_INVALID
        logger.info("stopped")
        return EXIT_OK

    # -- claiming -----------------------------------------------------------------------------------------------

    def _claim_loop(self) -> None:
        delays = api.backoff_delays()
        while not self.stopping.is_set():
            with self.slot_freed:
                while len(self.runs) >= self.config.concurrency and not self.stopping.is_set():
                    self.slot_freed.wait(1.0)
                free = self.config.concurrency - len(self.runs)
            if self.stopping.is_set():
                return
            asked = time.monotonic()
            try:
                claims = self.claim_client.claim(self.instance, min(free, 20), self.config.wait_s)
            except api.TokenInvalid:
                self.token_invalid()
                return
            except api.Unreachable as error:
                delay = next(delays)
                logger.warning("claim failed (%s); retrying in %.1f s", error, delay)
                self.stopping.wait(delay)
                continue
            except api.ApiError as error:
                logger.error("claim refused: HTTP %s %s (%s); retrying in 10 s", error.status, error.detail, error.code)
                self.stopping.wait(10)
                continue
            delays = api.backoff_delays()
            for claim in claims:
                self._launch(claim)
            if not claims and time.monotonic() - asked < 1.0:
                # Canopy answered at once with nothing (paused runtime, or a server without long polling).
                self.stopping.wait(self.heartbeat_s if self.paused else 1.0)

    def _launch(self, claim: dict[str, Any]) -> None:
        execution = RunExecution(claim, self.options)
        with self.lock:
            self.runs[execution.id] = execution
        threading.Thread(target=self._run_thread, args=(execution,), name=f"run-{execution.id}", daemon=True).start()

    def _run_thread(self, execution: RunExecution) -> None:
        try:
            execution.execute()
        finally:
            with self.slot_freed:
                self.runs.pop(execution.id, None)
                self.slot_freed.notify_all()

    # -- heartbeats and rotation --------------------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        failures = 0
        while not self.closed.is_set():
            running = [{"run": r.id, "lease": r.lease} for r in self.active() if not r.lost.is_set()]
            try:
                answer = self.heartbeat_client.heartbeat(self.instance, running) or {}
            except api.TokenInvalid:
                self.token_invalid()
                return
            except (api.Unreachable, api.ApiError) as error:
                failures += 1
                logger.warning("heartbeat failed (%s)", error)
                self.closed.wait(min(self.heartbeat_s, 1.0 * failures))
                continue
            failures = 0
            self._act_on(answer)
            self._maybe_rotate()
            self.closed.wait(self.heartbeat_s)

    def _act_on(self, answer: dict[str, Any]) -> None:
        with self.lock:
            runs = dict(self.runs)
        for run_id in answer.get("cancel") or []:
            if str(run_id) in runs:
                runs[str(run_id)].cancel()
        for run_id in answer.get("lost") or []:
            if str(run_id) in runs:
                runs[str(run_id)].drop()
        paused = bool(answer.get("paused"))
        if paused != self.paused:
            logger.info("runtime %s", "paused: claiming nothing" if paused else "resumed")
            self.paused = paused
        next_beat = answer.get("next_heartbeat_s")
        if isinstance(next_beat, int | float) and 0 < next_beat <= 300:
            self.heartbeat_s = float(next_beat)

    def _maybe_rotate(self) -> None:
        if not state.needs_rotation(self.state):
            return
        try:
            answer = self.heartbeat_client.rotate()
        except api.TokenInvalid:
            self.token_invalid()
            return
        except (api.Unreachable, api.ApiError) as error:
            logger.warning("token rotation failed (%s); will retry", error)
            return
        fresh = {**self.state, "token": answer["token"], "expires_at": answer["expires_at"]}
        fresh["issued_at"] = datetime.now(UTC).isoformat()
        try:
            state.save(self.config.state_dir, fresh)  # saved before it is used: a crash now keeps a working token
        except OSError as error:
            logger.error("cannot save the rotated token (%s): keeping the old one until it expires", error)
            return
        self.state = fresh
        for connection in (self.client, self.heartbeat_client, self.claim_client):
            connection.set_token(fresh["token"])
        logger.info("token rotated; the new one expires at %s", fresh["expires_at"])
