"""The step types a run executes (contract "Steps"; validated by Canopy in resources.services.tasks.clean_steps).

- ``http``: method, url, headers, body (text or JSON), credential, into, ``timeout_s`` (1..300, default 30),
  ``expect_status`` (an int or a list; default any 2xx), ``max_bytes`` (default 1 MiB). Its variable is
  ``{"status", "headers", "body"}``, the body parsed when the answer is JSON. ``identity: {"audience"}`` sends
  ``Authorization: Bearer <workload identity token>``, a token Canopy issues for this run and audience (README
  "Workload identity"); it is the step's one source of authentication (no Authorization header, no credential).
- ``lookup``: table, key (templated), default, into: the table's value for the key.
- ``transform``: expression (JMESPath over the variables), into.
- ``log``: message (templated), level.

A failure raises :class:`StepError` with a message that says what went wrong; a stop, a lost lease or a shutdown
raises :class:`StepStopped`. A slow HTTP answer is interrupted from another thread (:class:`Interrupt`) by
shutting its socket down, so a Stop is seen within a second, not at the end of the request."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from runtimes.agent import netguard, templates
from runtimes.agent.credentials import CredentialError, Credentials

DEFAULT_TIMEOUT_S = 30
MAX_TIMEOUT_S = 300
DEFAULT_MAX_BYTES = 1024 * 1024
ERROR_BODY_CHARS = 300


class StepError(Exception):
    pass


class StepStopped(Exception):
    pass


class Interrupt:
    """Set once, from any thread: the run's current step stops (its HTTP request is cut at once)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""
        self._lock = threading.Lock()
        self._backend: netguard.GuardedBackend | None = None

    def __call__(self, reason: str) -> None:
        with self._lock:
            if not self.event.is_set():
                self.reason = reason
                self.event.set()
            backend = self._backend
        if backend is not None:
            backend.abort()

    @property
    def is_set(self) -> bool:
        return self.event.is_set()

    def attach(self, backend: netguard.GuardedBackend | None) -> None:
        with self._lock:
            self._backend = backend
            aborted = self.event.is_set()
        if backend is not None and aborted:
            backend.abort()

    def check(self) -> None:
        if self.event.is_set():
            raise StepStopped(self.reason)


@dataclass
class StepEnv:
    variables: dict[str, Any]
    lookup_tables: dict[str, Any]
    credentials: Credentials
    allow_private: bool
    log: Callable[[str, str], None]  # (level, message)
    interrupt: Interrupt = field(default_factory=Interrupt)
    # audience → a workload identity token of the run (the runner asks Canopy); None: the agent cannot get one.
    identity_token: Callable[[str], str] | None = None


def describe(index: int, step: dict[str, Any]) -> str:
    """``step 2 (fetch orders)``: numbered from 1, as people count."""
    name = step.get("name")
    return f"step {index + 1} ({name})" if name else f"step {index + 1} ({step.get('type', '?')})"


def execute(step: dict[str, Any], env: StepEnv) -> str:
    """Run one step; store its result in ``into``. Returns a short summary for the log."""
    env.interrupt.check()
    kind = step.get("type")
    try:
        if kind == "http":
            value, summary = _http(step, env)
        elif kind == "lookup":
            value, summary = _lookup(step, env)
        elif kind == "transform":
            value = templates.evaluate(str(step.get("expression", "")), env.variables)
            summary = "transformed"
        elif kind == "log":
            level = step.get("level") or "info"
            if level not in ("info", "warning", "error"):
                raise StepError(f"unknown log level “{level}”")
            env.log(level, templates.render(str(step.get("message", "")), env.variables))
            value, summary = None, "logged"
        else:
            raise StepError(f"unknown step type “{kind}”")
    except templates.TemplateError as error:
        raise StepError(str(error)) from error
    except CredentialError as error:
        raise StepError(str(error)) from error
    if step.get("into"):
        env.variables[str(step["into"])] = value
    return summary


def _lookup(step: dict[str, Any], env: StepEnv) -> tuple[Any, str]:
    table = str(step.get("table", ""))
    key = templates.render(str(step.get("key", "")), env.variables)
    rows = env.lookup_tables.get(table)
    if not isinstance(rows, dict):
        raise StepError(f"lookup table “{table}” was not sent with the run")
    if key in rows:
        return rows[key], f"found “{key}” in {table}"
    if "default" in step:
        return step["default"], f"“{key}” not in {table}: default used"
    raise StepError(f"no row “{key}” in lookup table “{table}” (and no default)")


def _expected(step: dict[str, Any]) -> Callable[[int], bool]:
    expect = step.get("expect_status")
    if expect is None:
        return lambda status: 200 <= status < 300
    wanted = {expect} if isinstance(expect, int) else set(expect) if isinstance(expect, list) else None
    if not wanted or not all(isinstance(code, int) for code in wanted):
        raise StepError("“expect_status” must be a status code or a list of them")
    return lambda status: status in wanted


def _int_option(step: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = step.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise StepError(f"“{key}” must be a whole number from {low} to {high}")
    return value


def _http(step: dict[str, Any], env: StepEnv) -> tuple[Any, str]:
    variables = env.variables
    method = str(step.get("method", "GET")).upper()
    url = templates.render(str(step.get("url", "")), variables)
    if not url.startswith(("http://", "https://")):
        raise StepError(f"“{url[:200]}” is not an http:// or https:// address")
    timeout_s = _int_option(step, "timeout_s", DEFAULT_TIMEOUT_S, 1, MAX_TIMEOUT_S)
    max_bytes = _int_option(step, "max_bytes", DEFAULT_MAX_BYTES, 1, 1024 * DEFAULT_MAX_BYTES)
    expected = _expected(step)
    headers = {str(k): templates.render(str(v), variables) for k, v in dict(step.get("headers") or {}).items()}
    if step.get("identity") is not None:
        headers["Authorization"] = f"Bearer {_identity_token(step, headers, env)}"
    content: bytes | None = None
    body = step.get("body")
    if isinstance(body, str):
        content = templates.render(body, variables).encode()
    elif body is not None:
        content = json.dumps(templates.render_json(body, variables)).encode()
        headers.setdefault("Content-Type", "application/json")

    backend = netguard.GuardedBackend(allow_private=env.allow_private)
    timed_out = threading.Event()

    def on_timeout() -> None:
        timed_out.set()
        backend.abort()

    timer = threading.Timer(timeout_s, on_timeout)
    timer.daemon = True
    env.interrupt.attach(backend)
    started = time.monotonic()
    try:
        with netguard.guarded_client(backend, timeout=timeout_s) as client:
            timer.start()  # the whole step, an OAuth 2 token request included
            auth = env.credentials.apply(str(step["credential"]), headers, client) if step.get("credential") else None
            with client.stream(method, url, headers=headers, content=content, auth=auth) as response:
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise StepError(f"the answer is larger than max_bytes ({max_bytes:,} bytes)")
                    chunks.append(chunk)
                raw = b"".join(chunks)
    except netguard.BlockedAddress as error:
        raise StepError(str(error)) from error
    except (httpx.HTTPError, netguard.Aborted) as error:
        env.interrupt.check()
        if timed_out.is_set():
            raise StepError(f"no complete answer within {timeout_s} s (timeout_s)") from error
        raise StepError(f"{method} {url[:200]} failed: {type(error).__name__} {error}".rstrip()) from error
    finally:
        timer.cancel()
        env.interrupt.attach(None)
    env.interrupt.check()
    elapsed_ms = int((time.monotonic() - started) * 1000)
    value = {
        "status": response.status_code,
        "headers": {k.lower(): v for k, v in response.headers.items()},
        "body": _parse(raw, response),
    }
    if not expected(response.status_code):
        text = raw[:ERROR_BODY_CHARS].decode(response.encoding or "utf-8", errors="replace")
        raise StepError(f"HTTP {response.status_code} {response.reason_phrase}: {text}".rstrip(": "))
    return value, f"{method} {url[:500]} → {response.status_code} in {elapsed_ms} ms"


def _identity_token(step: dict[str, Any], headers: dict[str, str], env: StepEnv) -> str:
    """The step's workload identity token, refused when the step has another source of authentication (Canopy
    refuses such a step when the task is saved; a run queued from an older task is checked again here)."""
    identity = step["identity"]
    audience = identity.get("audience") if isinstance(identity, dict) else None
    if not isinstance(audience, str) or not audience or any(c.isspace() for c in audience):
        raise StepError("“identity” needs an “audience” (a text without whitespace)")
    if any(name.lower() == "authorization" for name in headers) or step.get("credential"):
        raise StepError("“identity” is the step's authentication: no Authorization header or credential beside it")
    if env.identity_token is None:
        raise StepError("this agent cannot get workload identity tokens")
    return env.identity_token(audience)


def _parse(raw: bytes, response: httpx.Response) -> Any:
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    text = raw.decode(response.encoding or "utf-8", errors="replace")
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
