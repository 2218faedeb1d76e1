from typing import Any

from django.core.management.base import BaseCommand

from idempotency.store import purge


class Command(BaseCommand):
    help = (
        "Delete the Idempotency-Key records older than 24 hours. Requests purge them as they go (a batch every ten "
        "minutes per process); run this after a quiet spell, or daily from cron, to keep the table small."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"Purged {purge()} expired idempotency key(s).")
