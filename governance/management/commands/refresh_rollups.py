"""python manage.py refresh_rollups [--once] [--interval S]: the roll-up read model's refresher
(governance/rollup/snapshots.py).

Run one beside the web processes in production. It computes again, every interval, the roll-up snapshots read in
the last ``ROLLUP_WATCH_S`` that are older than ``ROLLUP_REFRESH_S``, so those who see the whole tenant read figures
computed ahead instead of waiting for them; it drops the snapshots nobody reads. Without it nothing is wrong, only
slower: each roll-up is then computed by its first reader once its snapshot is older than
``ROLLUP_SNAPSHOT_MAX_AGE_S``. Several refreshers are harmless (each computes the same figures; the last write
wins)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from config import loops
from governance.rollup.service import refresh_snapshots


class Command(BaseCommand):
    help = "Compute again the roll-up snapshots read lately (and drop the unread ones). Loops until stopped, or " \
           "refreshes once with --once."  # fmt: skip

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Refresh once and exit.")
        parser.add_argument(
            "--interval", type=float, default=None, help="Seconds between passes (default: ROLLUP_REFRESH_S)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        interval = options["interval"] if options["interval"] is not None else settings.ROLLUP_REFRESH_S
        if options["once"]:
            self.stdout.write(f"Roll-ups: {_words(refresh_snapshots())}.")
            return
        loops.every(
            interval, refresh_snapshots, name="Roll-ups", doing="refreshing", stdout=self.stdout,
            stderr=self.stderr, worth_saying=lambda r: _words(r) if r["refreshed"] or r["dropped"] else None,
        )  # fmt: skip


def _words(result: dict[str, int]) -> str:
    return f"{result['refreshed']} refreshed (slowest {result['ms']} ms), {result['dropped']} dropped"
