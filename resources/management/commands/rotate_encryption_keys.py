"""python manage.py rotate_encryption_keys: re-encrypt every stored secret with the newest key.

Run it after putting a new key first in FIELD_ENCRYPTION_KEYS; drop the old key only once it succeeded.
"""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from resources import crypto
from resources.models import Credential, EnvVar
from twofactor.models import TOTPSeed


class Command(BaseCommand):
    help = "Re-encrypt every credential secret, secret environment variable and TOTP seed with the newest key."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = {}
        with transaction.atomic():
            for model in (Credential, EnvVar):
                items = list(model.objects.exclude(secret_ciphertext="").only("pk", "secret_ciphertext"))
                for item in items:
                    item.secret_ciphertext = crypto.rotate(item.secret_ciphertext)
                model.objects.bulk_update(items, ["secret_ciphertext"], batch_size=500)
                counts[model._meta.verbose_name_plural] = len(items)
            seeds = list(TOTPSeed.objects.only("pk", "ciphertext"))
            for seed in seeds:
                seed.ciphertext = crypto.rotate(seed.ciphertext)
            TOTPSeed.objects.bulk_update(seeds, ["ciphertext"], batch_size=500)
            counts["TOTP seeds"] = len(seeds)
        summary = ", ".join(f"{n} {name}" for name, n in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted with the newest key: {summary}."))
