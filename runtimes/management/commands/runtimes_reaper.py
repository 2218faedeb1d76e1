"""python manage.py runtimes_reaper [--once] [--interval S]: the reaper's loop (runtimes.reaper).

Run one beside the web processes in production (several are harmless: on PostgreSQL one sweep runs at a time). The
API also sweeps opportunistically, but only while agents call it: this loop declares runs lost when every agent is
gone, which is exactly when nobody else would."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from config import loops
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
        loops.every(
            interval, reap, name="Reaper", doing="sweeping", stdout=self.stdout, stderr=self.stderr,
            worth_saying=lambda r: str(r) if r.lost or r.requeued or r.offline or r.no_runtime else None,
        )  # fmt: skip
