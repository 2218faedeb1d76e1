"""The agent's side of the agent HTTP API (``/api/v1/runtime-agent/``): one method per call, errors as exceptions.

Every answer the agent must act on has its own exception: 401 (:class:`TokenInvalid`: stop, the token was revoked
or expired), 409 ``lease_lost`` (:class:`LeaseLost`: drop the run), 409 ``seq_gap`` (:class:`SeqGap`: renumber the
log lines), a network failure or a 5xx (:class:`Unreachable`: retry with backoff), anything else (:class:`ApiError`).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

API_PREFIX = "/api/v1/runtime-agent/"
# Every call but the long-poll claim answers at once; a short read timeout keeps a hung Canopy from stalling a run.
CALL_TIMEOUT_S = 15.0

T = TypeVar("T")


class AgentError(Exception):
    pass


class TokenInvalid(AgentError):
    """401: the agent token is unknown, expired or revoked."""


class LeaseLost(AgentError):
    """409 lease_lost: the run is no longer this agent's (reaped, or claimed again by another agent)."""


class SeqGap(AgentError):
    """409 seq_gap: Canopy expects log lines from ``next_seq``."""

    def __init__(self, detail: str, next_seq: int) -> None:
        super().__init__(detail)
        self.next_seq = next_seq


class Unreachable(AgentError):
    """A connection error, a timeout or a 5xx: worth retrying later."""


class ApiError(AgentError):
    """Any other refusal (400, 403, 404, …): retrying the same call would get the same answer."""

    def __init__(self, status: int, detail: str, code: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def backoff_delays(base: float = 0.5, cap: float = 30.0) -> Any:
    """Exponential backoff with full jitter: 0..0.5 s, 0..1 s, 0..2 s, … capped at ``cap``."""
    attempt = 0
    while True:
        yield random.uniform(base / 2, min(cap, base * 2**attempt))  # noqa: S311 (jitter, not a secret)
        attempt += 1


def retrying(call: Callable[[], T], *, stop: threading.Event, what: str, log: Callable[[str], None]) -> T:
    """``call()`` until it stops raising :class:`Unreachable` (backoff with jitter between tries) or ``stop`` is
    set (then the last error is raised)."""
    delays = backoff_delays()
    while True:
        try:
            return call()
        except Unreachable as error:
            delay = next(delays)
            log(f"{what}: {error}; retrying in {delay:.1f} s")
            if stop.wait(delay):
                raise


class CanopyClient:
    """One httpx client to Canopy (thread-safe: its connection pool is). ``token`` may be swapped at any time
    (rotation) with :meth:`set_token`."""

    def __init__(self, url: str, token: str = "", *, user_agent: str = "canopy-agent") -> None:
        self.base = url.rstrip("/") + API_PREFIX
        self._token = token
        self._lock = threading.Lock()
        self._http = httpx.Client(
            timeout=httpx.Timeout(CALL_TIMEOUT_S, connect=10.0),
            headers={"User-Agent": user_agent, "Accept": "application/json"},
            follow_redirects=False,  # a redirect would carry the bearer token elsewhere
        )

    def set_token(self, token: str) -> None:
        with self._lock:
            self._token = token

    def close(self) -> None:
        self._http.close()

    def post(self, path: str, body: dict[str, Any], *, timeout: float | None = None, auth: bool = True) -> Any:
        """POST ``body`` to ``path``; the parsed answer (``None`` for 204)."""
        headers = {}
        if auth:
            with self._lock:
                headers["Authorization"] = f"Bearer {self._token}"
        try:
            response = self._http.post(
                self.base + path,
                json=body,
                headers=headers,
                timeout=httpx.Timeout(timeout, connect=10.0) if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as error:
            raise Unreachable(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__) from error
        if response.status_code == 204:
            return None
        try:
            data = response.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {"value": data}
        if response.status_code < 400:
            return data
        detail = str(data.get("detail") or response.reason_phrase or "error")
        code = str(data.get("code") or "")
        if response.status_code == 401:
            raise TokenInvalid(detail)
        if response.status_code == 409 and code == "lease_lost":
            raise LeaseLost(detail)
        if response.status_code == 409 and code == "seq_gap":
            raise SeqGap(detail, int(data.get("next_seq") or 1))
        if code in ("identity_token_limit", "identity_not_configured"):
            raise ApiError(response.status_code, detail, code)  # the run's quota, or no key: retrying cannot help
        if response.status_code >= 500 or response.status_code == 429:
            raise Unreachable(f"HTTP {response.status_code}: {detail}")
        raise ApiError(response.status_code, detail, code)

    # -- the calls ---------------------------------------------------------------------------------------------

    def enroll(self, enrollment_token: str, instance: dict[str, Any]) -> Any:
        return self.post("enroll", {"enrollment_token": enrollment_token, "instance": instance}, auth=False)

    def rotate(self) -> Any:
        return self.post("token/rotate", {})

    def heartbeat(self, instance: str, running: list[dict[str, str]]) -> Any:
        return self.post("heartbeat", {"instance": instance, "running": running})

    def claim(self, instance: str, limit: int, wait_s: int) -> list[dict[str, Any]]:
        """Claimed runs, started by the claim itself (``status`` running: no start call; a Canopy that answers
        no status did not start them)."""
        body = {"instance": instance, "max": limit, "wait_s": wait_s, "start": True}
        answer = self.post("claim", body, timeout=wait_s + 15.0)
        return list(answer.get("runs") or []) if answer else []

    def start(self, run: str, lease: str) -> Any:
        return self.post(f"runs/{run}/start", {"lease": lease})

    def logs(self, run: str, lease: str, lines: list[dict[str, Any]]) -> Any:
        return self.post(f"runs/{run}/logs", {"lease": lease, "lines": lines})

    def finish(self, run: str, body: dict[str, Any]) -> Any:
        return self.post(f"runs/{run}/finish", body)

    def identity_token(self, run: str, lease: str, audience: str) -> Any:
        """A workload identity token (JWT) of ``run`` for ``audience``: ``{"token", "expires_at"}``."""
        return self.post(f"runs/{run}/identity-token", {"lease": lease, "audience": audience})
