"""The loop of a command that runs beside the web processes (``runtimes_reaper``, ``refresh_rollups``): a pass every
interval until SIGTERM or Ctrl-C, the database connection checked before each pass, a failed pass (a database
restart) written to stderr and tried again at the next interval rather than ending the process."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

from django.core.management.base import OutputWrapper
from django.db import close_old_connections


def every(
    interval: float,
    one_pass: Callable[[], Any],
    *,
    name: str,
    doing: str,
    stdout: OutputWrapper,
    stderr: OutputWrapper,
    worth_saying: Callable[[Any], str | None],
) -> None:
    """Run ``one_pass`` every ``interval`` seconds until stopped. ``worth_saying(result)`` is the line a pass
    prints (None: nothing); lines start with ``name``. Exits 2 on an interval that is not positive."""
    if interval <= 0:
        stderr.write("--interval must be more than 0 seconds.")
        raise SystemExit(2)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    stdout.write(f"{name}: {doing} every {interval:g} s (Ctrl-C or SIGTERM stops).")
    try:
        while not stop.is_set():
            close_old_connections()
            try:
                result = one_pass()
            except Exception as error:  # a database restart: say it and try again at the next interval
                stderr.write(f"{name}: pass failed: {type(error).__name__}: {error}")
            else:
                line = worth_saying(result)
                if line:
                    stdout.write(f"{name}: {line}.")
            stop.wait(interval)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    stdout.write(f"{name}: stopped.")
