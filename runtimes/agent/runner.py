"""One claimed run: start it, execute its steps in order, ship its log in batches, finish it.

The log goes to Canopy from a thread of its own (:class:`RunLog`): a batch every ~0.5 s or 50 lines, ``seq`` from 1
per attempt; a batch that met a network error is sent again as it was (Canopy ignores lines it has), a ``seq_gap``
renumbers what is pending from Canopy's ``next_seq``. A sovereign run's full log stays on this machine
(``<log dir>/<run id>.log``); Canopy gets each line's level and time with an empty message, and no step error.

The run ends one of four ways: all steps succeeded; a step failed (the run fails, naming the step); it was stopped
(a user's Stop, or the agent shutting down after its grace period: ``stopped``); or its lease was lost (Canopy gave
the run to someone else: the agent drops it and reports nothing more)."""

from __future__ import annotations

import functools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from runtimes.agent import client as api
from runtimes.agent.credentials import Credentials
from runtimes.agent.steps import Interrupt, StepEnv, StepError, StepStopped, describe, execute

logger = logging.getLogger("canopy.agent")

MAX_MESSAGE = 10_000
FLUSH_EVERY_S = 0.5
FLUSH_LINES = 50
MAX_BATCH = 200
SHUTDOWN_ERROR = "agent shut down"
IDENTITY_REUSE_MIN_S = 60  # a cached identity token is reused while it has more than this left


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class RunOptions:
    """What the agent hands every run."""

    client: api.CanopyClient
    secrets_dir: str | None
    log_dir: Path
    allow_private: bool
    agent_name: str
    give_up: threading.Event  # set when the agent must exit now: no more retries
    on_token_invalid: Callable[[], None]


class RunLog:
    """The log of one run attempt, shipped to Canopy in batches from its own thread."""

    def __init__(self, run: RunExecution) -> None:
        self.run = run
        self.pending: list[dict[str, Any]] = []
        self.next_seq = 1
        self.condition = threading.Condition()
        self.closed = False
        self.handoff = False  # closed for finish: the last batch (at most MAX_BATCH lines) goes with it
        self.local: TextIO | None = None
        if run.sovereign:
            run.options.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.local = open(run.log_location, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self.thread = threading.Thread(target=self._ship, name=f"log-{run.id}", daemon=True)
        self.thread.start()

    def add(self, level: str, message: str) -> None:
        message = self.run.redact(message)
        at = now_iso()
        if self.local is not None:
            self.local.write(f"{at} {level.upper():7} {message}\n")
            self.local.flush()
        with self.condition:
            if self.closed:
                return
            self.pending.append(
                {
                    "seq": self.next_seq,
                    "at": at,
                    "level": level,
                    "message": "" if self.run.sovereign else message[:MAX_MESSAGE],
                }
            )
            self.next_seq += 1
            if len(self.pending) >= FLUSH_LINES:
                self.condition.notify()

    def close(self) -> None:
        """Ship what is left (the thread ends once the log is empty, the lease lost or the agent giving up)."""
        self._close(handoff=False)

    def close_for_finish(self) -> list[dict[str, Any]]:
        """Stop shipping and hand over the last batch (not yet acknowledged lines, at most MAX_BATCH: the thread
        ships any excess first), to go with the finish call: one request less per run."""
        self._close(handoff=True)
        with self.condition:
            return [dict(line) for line in self.pending]

    def resync(self, next_seq: int) -> list[dict[str, Any]]:
        """Canopy lacks lines before ours: number what is pending from its next_seq (returned)."""
        with self.condition:
            for offset, line in enumerate(self.pending):
                line["seq"] = next_seq + offset
            self.next_seq = next_seq + len(self.pending)
            pending = [dict(line) for line in self.pending]
        logger.warning("run %s: log resynchronized at seq %s", self.run.id, next_seq)
        return pending

    def _close(self, *, handoff: bool) -> None:
        with self.condition:
            self.closed, self.handoff = True, handoff
            self.condition.notify()
        self.thread.join()
        if self.local is not None:
            self.local.close()

    def _ship(self) -> None:
        delays = api.backoff_delays()
        unanswered: list[dict[str, Any]] = []  # a batch whose answer never came: sent again exactly as it was
        while True:
            with self.condition:
                deadline = time.monotonic() + FLUSH_EVERY_S
                while not unanswered and not self.closed and len(self.pending) < FLUSH_LINES:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self.condition.wait(remaining)
                batch = unanswered or [dict(line) for line in self.pending[:MAX_BATCH]]
                closing = self.closed
                if closing and self.handoff and len(self.pending) <= MAX_BATCH:
                    return  # the rest (an unanswered batch included: still pending) goes with the finish
            if not batch:
                if closing:
                    return
                continue
            if self.run.lost.is_set() or self.run.options.give_up.is_set():
                return
            try:
                answer = self.run.options.client.logs(self.run.id, self.run.lease, batch)
            except api.Unreachable as error:
                delay = next(delays)
                logger.warning("run %s: sending its log failed (%s); again in %.1f s", self.run.id, error, delay)
                unanswered = batch
                self.run.options.give_up.wait(delay)
                continue
            except api.SeqGap as gap:
                unanswered = []
                self.resync(gap.next_seq)
                continue
            except api.LeaseLost:
                self.run.drop()
                return
            except api.TokenInvalid:
                self.run.options.on_token_invalid()
                return
            except api.ApiError as error:
                logger.error("run %s: Canopy refused a log batch: %s (dropped)", self.run.id, error)
                answer = {}
            delays, unanswered = api.backoff_delays(), []
            last = batch[-1]["seq"]
            with self.condition:
                self.pending = [line for line in self.pending if line["seq"] > last]
            if answer and answer.get("cancel"):
                self.run.cancel()


class RunExecution:
    def __init__(self, claim: dict[str, Any], options: RunOptions) -> None:
        self.claim = claim
        self.options = options
        self.id = str(claim["id"])
        self.lease = str(claim["lease"])
        self.sovereign = bool(claim.get("sovereign"))
        self.attempt = claim.get("attempt", 1)
        self.steps: list[dict[str, Any]] = list(claim.get("steps") or [])
        self.context: dict[str, Any] = dict(claim.get("context") or {})
        self.task_name = str((claim.get("task") or {}).get("name") or "")
        self.log_location = str(options.log_dir / f"{self.id}.log")
        self.credentials = Credentials(dict(self.context.get("credentials") or {}), secrets_dir=options.secrets_dir)
        self.redact = self.credentials.redact
        self.interrupt = Interrupt()
        self.lost = threading.Event()
        self.stop_kind = ""  # "stopped" (a user's Stop) or "shutdown"
        self.done = threading.Event()
        self.started = time.monotonic()
        self._identity: dict[str, tuple[str, float]] = {}  # audience → (token, monotonic expiry)
        # A claim may say what the runtime allows now; otherwise what it said at enrollment.
        runtime = claim.get("runtime")
        runtime = runtime if isinstance(runtime, dict) else {}
        if "allow_private_network" in runtime or "kind" in runtime:
            self.allow_private = runtime.get("kind") == "local" or bool(runtime.get("allow_private_network"))
        else:
            self.allow_private = options.allow_private

    # -- from other threads ------------------------------------------------------------------------------------

    def cancel(self) -> None:
        """A user's Stop: the current step ends now, the run finishes as stopped."""
        if not self.interrupt.is_set:
            self.stop_kind = "stopped"
            logger.info("run %s: stop requested", self.id)
        self.interrupt("stopped on request")

    def shut_down(self) -> None:
        if not self.interrupt.is_set:
            self.stop_kind = "shutdown"
        self.interrupt(SHUTDOWN_ERROR)

    def drop(self) -> None:
        """The lease is gone: stop working on it and report nothing more."""
        if not self.lost.is_set():
            self.lost.set()
            logger.warning("run %s: lease lost, dropped", self.id)
        self.interrupt("lease lost")

    def identity_token(self, audience: str) -> str:
        """A workload identity token of this run for ``audience``, from Canopy (retried on network errors), reused
        while it has more than IDENTITY_REUSE_MIN_S left: Canopy caps the tokens per run. Kept out of the logs."""
        cached = self._identity.get(audience)
        if cached is not None and cached[1] - time.monotonic() > IDENTITY_REUSE_MIN_S:
            return cached[0]
        client = self.options.client
        # Retried until Canopy answers, or a Stop, a lost lease or the agent's exit ends the step.
        stop = _Either(self.interrupt.event, _Either(self.lost, self.options.give_up))
        try:
            answer = api.retrying(
                lambda: client.identity_token(self.id, self.lease, audience),
                stop=stop,
                what=f"run {self.id}: identity token",
                log=logger.warning,
            )
        except api.LeaseLost:
            self.drop()
            raise StepStopped("lease lost") from None
        except api.TokenInvalid:
            self.options.on_token_invalid()
            self.drop()
            raise StepStopped("agent token invalid") from None
        except api.Unreachable as error:
            self.interrupt.check()  # stopped while retrying: the step stops, it did not fail
            raise StepError(f"no workload identity token (Canopy unreachable: {error})") from error
        except api.ApiError as error:
            raise StepError(f"Canopy refused a workload identity token for “{audience}”: {error.detail}") from error
        token = str(answer.get("token") or "")
        if not token:
            raise StepError("Canopy answered no workload identity token")
        self.credentials.remember(token)
        try:
            left = datetime.fromisoformat(str(answer["expires_at"]).replace("Z", "+00:00")) - datetime.now(UTC)
            expires = time.monotonic() + left.total_seconds()
        except (KeyError, ValueError, TypeError):
            expires = time.monotonic()  # unknown expiry: not reused
        self._identity[audience] = (token, expires)
        return token

    # -- the run's own thread -----------------------------------------------------------------------------------

    def execute(self) -> None:
        try:
            self._execute()
        except Exception:  # a bug here must not take the agent down; the lease will expire
            logger.error("run %s: internal error\n%s", self.id, traceback.format_exc())
        finally:
            self.done.set()

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        """A Canopy call for this run, retried on network errors. ``None`` when the run was dropped."""
        stop = _Either(self.lost, self.options.give_up)
        try:
            return api.retrying(call, stop=stop, what=f"run {self.id}: {what}", log=logger.warning)
        except api.LeaseLost:
            self.drop()
        except api.TokenInvalid:
            self.options.on_token_invalid()
            self.drop()
        except api.Unreachable:
            pass  # giving up (the agent is exiting or the lease is gone)
        return None

    def _execute(self) -> None:
        client, lease = self.options.client, self.lease
        logger.info(
            "claimed run %s (task %s, attempt %s, %d steps)", self.id, self.task_name, self.attempt, len(self.steps)
        )
        answer: Any = {"cancel": False}  # started by the claim; a Canopy that did not (no status) needs the call
        if self.claim.get("status") != "running":
            answer = self._call("start", lambda: client.start(self.id, lease))
            if answer is None:
                return
        try:
            log = RunLog(self)
        except OSError as failure:  # the sovereign log cannot be written: run nothing
            logger.error("run %s: cannot write its local log %s: %s", self.id, self.log_location, failure)
            skipped = [{"index": index, "status": "skipped", "ms": 0} for index in range(len(self.steps))]
            refused: dict[str, Any] = {"lease": lease, "status": "failed", "steps": skipped}
            refused["error"] = "The agent cannot write the run's local log."
            self._call("finish", lambda: client.finish(self.id, refused))
            return
        if self.sovereign:
            logger.info("run %s is sovereign: its log is kept at %s", self.id, self.log_location)
        log.add("info", f"Started on {self.options.agent_name} (attempt {self.attempt}).")
        if answer.get("cancel"):
            self.cancel()
        results, status, error = self._steps(log)
        elapsed = int((time.monotonic() - self.started) * 1000)
        log.add(
            "error" if status == "failed" else "info",
            f"Finished: {status} in {elapsed} ms." + (f" {error}" if error and not self.sovereign else ""),
        )
        lines = log.close_for_finish()
        if self.lost.is_set():
            return
        body: dict[str, Any] = {"lease": lease, "status": status, "error": error, "steps": results}
        if self.sovereign:
            body["log_location"] = self.log_location
        for _ in range(5):  # the last log batch goes with the finish; a seq_gap renumbers it and finishes again
            try:
                answer = self._call("finish", functools.partial(client.finish, self.id, {**body, "lines": lines}))
            except api.SeqGap as gap:
                lines = log.resync(gap.next_seq)
                continue
            if answer is not None:
                logger.info("finished run %s: %s in %d ms%s", self.id, status, elapsed, f" ({error})" if error else "")
            return
        logger.error("run %s: Canopy kept refusing its last log lines (seq_gap); not finished", self.id)

    def _steps(self, log: RunLog) -> tuple[list[dict[str, Any]], str, str]:
        variables: dict[str, Any] = {
            "env": dict(self.context.get("env") or {}),
            "run": dict(self.context.get("run") or {"id": self.id, "attempt": self.attempt}),
            "task": dict(self.context.get("task") or self.claim.get("task") or {}),
            "org": dict(self.context.get("org") or {}),
        }
        env = StepEnv(
            variables=variables,
            lookup_tables=dict(self.context.get("lookup_tables") or {}),
            credentials=self.credentials,
            allow_private=self.allow_private,
            log=log.add,
            interrupt=self.interrupt,
            identity_token=self.identity_token,
        )
        results: list[dict[str, Any]] = []
        status, error = "succeeded", ""
        for index, step in enumerate(self.steps):
            label = describe(index, step)
            if status != "succeeded":
                results.append({"index": index, "status": "skipped", "ms": 0})
                continue
            started = time.monotonic()
            try:
                summary = execute(step, env)
            except StepStopped:
                ms = int((time.monotonic() - started) * 1000)
                results.append({"index": index, "status": "stopped", "ms": ms})
                status = "stopped"
                error = SHUTDOWN_ERROR if self.stop_kind == "shutdown" else ""
                log.add("warning", f"{label} stopped after {ms} ms" + (f": {SHUTDOWN_ERROR}" if error else ""))
                logger.info("run %s: %s stopped (%s)", self.id, label, self.interrupt.reason)
                continue
            except StepError as failure:
                ms = int((time.monotonic() - started) * 1000)
                message = self.redact(f"{label}: {failure}")
                log.add("error", message)
                logger.info(
                    "run %s: %s failed in %d ms: %s",
                    self.id,
                    label,
                    ms,
                    "(sovereign: see the local log)" if self.sovereign else failure,
                )
                result: dict[str, Any] = {"index": index, "status": "failed", "ms": ms}
                if not self.sovereign:
                    result["error"] = message[:MAX_MESSAGE]
                results.append(result)
                status = "failed"
                error = (
                    message[:MAX_MESSAGE]
                    if not self.sovereign
                    else f"{label} failed (details in the runtime's local log)"
                )
                continue
            ms = int((time.monotonic() - started) * 1000)
            results.append({"index": index, "status": "succeeded", "ms": ms})
            log.add("info", f"{label} ok in {ms} ms: {summary}")
            logger.info("run %s: %s ok in %d ms", self.id, label, ms)
        return results, status, error


class _Either(threading.Event):
    """An event that reads as set when either of two events is (for retry loops): polled, never waited long."""

    def __init__(self, first: threading.Event, second: threading.Event) -> None:
        super().__init__()
        self.first, self.second = first, second

    def is_set(self) -> bool:
        return self.first.is_set() or self.second.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while not self.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.first.wait(min(remaining, 0.2))
        return True
