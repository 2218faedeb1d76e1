"""python manage.py runtimes_reaper [--once] [--interval S]: the reaper's loop (runtimes.reaper).

Run one beside the web processes in production (several are harmless: on PostgreSQL one sweep runs at a time). The
API also sweeps opportunistically, but only while agents call it: this loop declares runs lost when every agent is
gone, which is exactly when nobody else would."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from runtimes.reaper import reap


class Command(BaseCommand):
    help = "Declare runs lost whose lease expired (or queue them again), instances offline, and fail queued runs "
    "whose runtime stayed offline too long. Loops until stopped, or sweeps once with --once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Sweep once and exit.")
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds between sweeps (default: RUNTIME_REAPER_INTERVAL_S).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        interval = options["interval"] if options["interval"] is not None else settings.RUNTIME_REAPER_INTERVAL_S
        if options["once"]:
            self.stdout.write(f"Reaper: {reap()}.")
            return
        if interval <= 0:
            self.stderr.write("--interval must be more than 0 seconds.")
            raise SystemExit(2)
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.stdout.write(f"Reaper: sweeping every {interval:g} s (Ctrl-C or SIGTERM stops).")
        try:
            while not stop.is_set():
                close_old_connections()
                try:
                    result = reap()
                except Exception as error:  # a database restart: log it and sweep again at the next interval
                    self.stderr.write(f"Reaper: sweep failed: {type(error).__name__}: {error}")
                else:
                    if result.lost or result.requeued or result.offline or result.no_runtime:
                        self.stdout.write(f"Reaper: {result}.")
                stop.wait(interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("Reaper: stopped.")
