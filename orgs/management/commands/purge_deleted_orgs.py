from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from orgs.services import purge_deleted_orgs


class Command(BaseCommand):
    help = "Remove for good the organizations deleted longer ago than the restore window (run it daily)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than-days",
            type=int,
            default=settings.ORG_RESTORE_WINDOW.days,
            help="Purge what was deleted before this many days ago (default: the restore window).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        cutoff = timezone.now() - timedelta(days=options["older_than_days"])
        count = purge_deleted_orgs(older_than=cutoff)
        self.stdout.write(f"Purged {count} organization(s) deleted before {cutoff:%Y-%m-%d %H:%M} UTC.")
