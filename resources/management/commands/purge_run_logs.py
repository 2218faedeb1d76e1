"""python manage.py purge_run_logs: drop run log lines older than each org's run_log_retention_days."""

from typing import Any

from django.core.management.base import BaseCommand

from resources.services import purge_run_logs


class Command(BaseCommand):
    help = "Delete run log lines older than the retention set for their organization (run_log_retention_days)."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = purge_run_logs()
        self.stdout.write(self.style.SUCCESS(f"Deleted {deleted} run log line(s)."))
