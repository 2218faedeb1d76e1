"""python manage.py rotate_encryption_keys: re-encrypt every stored secret with the newest key.

Run it after putting a new key first in FIELD_ENCRYPTION_KEYS; drop the old key only once it succeeded.
"""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from resources import crypto
from resources.models import Credential, EnvVar


class Command(BaseCommand):
    help = "Re-encrypt every stored secret (credentials, secret variables, other apps' columns) with the newest key."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = {}
        with transaction.atomic():
            for model, column in [(Credential, "secret_ciphertext"), (EnvVar, "secret_ciphertext"), *crypto.COLUMNS]:
                items = list(model.objects.exclude(**{column: ""}).only("pk", column))
                for item in items:
                    setattr(item, column, crypto.rotate(getattr(item, column)))
                model.objects.bulk_update(items, [column], batch_size=500)
                counts[model._meta.verbose_name_plural] = len(items)
        summary = ", ".join(f"{n} {name}" for name, n in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted with the newest key: {summary}."))
