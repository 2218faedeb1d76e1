"""Wake-ups of idle agents waiting in a claim (docs/PEERS.md: a NOTIFY takes a global lock at commit, so it is sent
from the enqueue path only, never per log line).

``wake(runtime_id)`` is called by whoever queues a run (placement, the reaper's requeue). When the enqueuing
transaction commits:

- PostgreSQL: ``NOTIFY canopy_runs, '<runtime id>'``. Every web process keeps ONE dedicated connection (psycopg,
  autocommit, outside Django's connection handling) that LISTENs on the channel in a daemon thread and sets the
  events of the claims waiting on that runtime, in whichever process they wait;
- every database: the claims waiting in this process are woken directly (SQLite has no NOTIFY: a run queued by a
  request of the same server reaches a waiting agent at once; from another process, the claim's short polling
  finds it).

A waiting claim registers first (``waiting``), then looks for runs, then waits on its event: a run queued between
the look and the wait has set the event already, so no wake-up is lost.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connection, transaction

logger = logging.getLogger(__name__)

CHANNEL = "canopy_runs"


def wake(runtime_id: Any) -> None:
    """After the current transaction commits (at once outside one), tell agents waiting on ``runtime_id``."""
    if runtime_id is None:
        return
    key = str(runtime_id)

    def send() -> None:
        _waiters.notify(key)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, key])

    transaction.on_commit(send)


class _Waiters:
    """The claims waiting in this process, by runtime id: each an Event set by a wake-up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, set[threading.Event]] = {}

    def add(self, key: str) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._events.setdefault(key, set()).add(event)
        return event

    def remove(self, key: str, event: threading.Event) -> None:
        with self._lock:
            events = self._events.get(key)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._events[key]

    def notify(self, key: str) -> None:
        with self._lock:
            events = list(self._events.get(key, ()))
        for event in events:
            event.set()

    def notify_all(self) -> None:
        with self._lock:
            events = [event for events in self._events.values() for event in events]
        for event in events:
            event.set()


_waiters = _Waiters()


class _Listener:
    """The process's LISTEN connection (PostgreSQL): started by the first waiting claim, in a daemon thread that
    reconnects after an error. A fork (gunicorn workers) starts its own: threads do not survive a fork."""

    RECONNECT_S = 1.0
    STOP_CHECK_S = 1.0  # how often the listening thread looks whether it should stop

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._ready = threading.Event()
        self._conninfo: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ensure(self, settings_dict: dict[str, Any], timeout: float = 5.0) -> bool:
        """Start the listener if it is not running in this process; True once it LISTENs (else the caller polls)."""
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._ready = threading.Event()
                self._stop = threading.Event()
                self._conninfo = _conninfo(settings_dict)
                self._thread = threading.Thread(
                    target=self._run, args=(self._ready, self._stop), name="canopy-runs-listener", daemon=True
                )
                self._thread.start()
            ready = self._ready
        return ready.wait(timeout)

    def stop(self) -> None:
        """Close the listening connection (tests: before their database is dropped). The next claim starts anew."""
        with self._lock:
            thread, self._pid = self._thread, None
            self._stop.set()
        if thread is not None:
            thread.join(timeout=5)

    def _run(self, ready: threading.Event, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                with psycopg.connect(**self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    ready.set()
                    # Whatever was notified while the connection was down: the waiting claims look again.
                    _waiters.notify_all()
                    while not stop.is_set():
                        for notify in conn.notifies(timeout=self.STOP_CHECK_S):
                            _waiters.notify(notify.payload)
            except Exception:  # the server restarted, the network dropped: the waiting claims poll meanwhile
                logger.warning("The %s listener lost its connection; reconnecting.", CHANNEL, exc_info=True)
            ready.clear()
            stop.wait(self.RECONNECT_S)


def _conninfo(settings_dict: dict[str, Any]) -> dict[str, Any]:
    """psycopg connection parameters from Django's settings of the connection (the test database under tests)."""
    params: dict[str, Any] = {"dbname": settings_dict["NAME"]}
    for key, name in (("USER", "user"), ("PASSWORD", "password"), ("HOST", "host"), ("PORT", "port")):
        if settings_dict.get(key):
            params[name] = settings_dict[key]
    options = dict(settings_dict.get("OPTIONS") or {})
    options.pop("options", None)  # the planner settings of the main connections: nothing to plan here
    options.pop("pool", None)
    options.pop("server_side_binding", None)
    options.pop("isolation_level", None)
    options.pop("assume_role", None)
    params.update({key: value for key, value in options.items() if isinstance(value, str | int | float)})
    params.setdefault("connect_timeout", 5)
    params["application_name"] = "canopy-runs-listener"
    return params


_listener = _Listener()


def stop_listening() -> None:
    _listener.stop()


@contextmanager
def waiting(runtime_id: Any) -> Iterator[threading.Event]:
    """Register a claim waiting on ``runtime_id``: the event is set when a run is queued on it. Register BEFORE
    looking for runs (see the module's docstring). On PostgreSQL the process's listener is started first."""
    if connection.vendor == "postgresql":
        _listener.ensure(connection.settings_dict)
    key = str(runtime_id)
    event = _waiters.add(key)
    try:
        yield event
    finally:
        _waiters.remove(key, event)
