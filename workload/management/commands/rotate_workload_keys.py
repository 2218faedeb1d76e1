"""python manage.py rotate_workload_keys [--status] [--force] [--alg ES256]

Rotates the keys that sign workload identity tokens (workload.keys.rotate): the first run makes an active key and a
next one; each later run promotes next to active, publishes a new next, retires the old active and deletes the
retired keys whose tokens have all expired. Run it from a scheduler (daily or weekly is plenty), at least
6 minutes apart (the JWKS's max-age plus Canopy's own cache of it). ``--status`` only prints the keys."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from config.actors import SYSTEM
from config.errors import DomainError
from workload import keys
from workload.models import SigningKey


class Command(BaseCommand):
    help = "Rotate the workload identity signing keys (or print them with --status)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--status", action="store_true", help="Print the keys and change nothing.")
        parser.add_argument(
            "--force", action="store_true", help="Rotate even if the next key was published less than 6 min ago."
        )
        parser.add_argument(
            "--alg", choices=SigningKey.Alg.values, help="The new next key's algorithm (default WORKLOAD_IDENTITY_ALG)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["status"]:
            try:
                rotation = keys.rotate(actor=SYSTEM, force=options["force"], alg=options["alg"])
            except DomainError as error:
                raise CommandError(error.detail) from None
            self.stdout.write(
                f"Rotated: {rotation.active.kid} signs, {rotation.next.kid} is next"
                + (f", {rotation.retired.kid} retired" if rotation.retired else "")
                + (f", deleted {', '.join(rotation.deleted)}" if rotation.deleted else "")
                + "."
            )
        self.print_status()

    def print_status(self) -> None:
        rows = keys.status()
        if not rows:
            self.stdout.write("No keys yet: run rotate_workload_keys without --status.")
            return
        now = timezone.now()
        for key in rows:
            published = key.state != SigningKey.State.RETIRED or (
                (key.signed_until or key.retired_at or now) + keys.leeway() > now
            )
            self.stdout.write(
                f"{key.state:8} {key.alg} {key.kid}  created {key.created_at:%Y-%m-%d %H:%M:%S}"
                + (f"  activated {key.activated_at:%Y-%m-%d %H:%M:%S}" if key.activated_at else "")
                + (f"  retired {key.retired_at:%Y-%m-%d %H:%M:%S}" if key.retired_at else "")
                + (f"  signed until {key.signed_until:%Y-%m-%d %H:%M:%S}" if key.signed_until else "")
                + ("  published" if published else "  unpublished (deleted at the next rotation)")
            )
