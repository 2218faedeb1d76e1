"""python manage.py rotate_encryption_keys: re-encrypt every stored secret with the newest key.

Run it after putting a new key first in FIELD_ENCRYPTION_KEYS; drop the old key only once it succeeded.
"""

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from resources import crypto
from resources.models import Credential, EnvVar

# (model, field) of every encrypted column. The workload identity signing keys, the tenants' IdP client secrets and the
# TOTP seeds are named by label: this app does not depend on workload, identity or twofactor (they depend on it), and a
# forgotten secret would be unreadable once its key is dropped.
ENCRYPTED = (
    (Credential, "secret_ciphertext"),
    (EnvVar, "secret_ciphertext"),
    (apps.get_model("workload", "SigningKey"), "private_key"),
    (apps.get_model("identity", "TenantSSO"), "client_secret_ciphertext"),
    (apps.get_model("twofactor", "TOTPSeed"), "ciphertext"),  # the sealed keys of authenticator apps
)


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret (credentials, variables, signing keys, IdP secrets, TOTP seeds) with the "
        "newest key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        counts = {}
        with transaction.atomic():
            for model, field in ENCRYPTED:
                items = list(model.objects.exclude(**{field: ""}).only("pk", field))
                for item in items:
                    setattr(item, field, crypto.rotate(getattr(item, field)))
                model.objects.bulk_update(items, [field], batch_size=500)
                counts[model._meta.verbose_name_plural] = len(items)
        summary = ", ".join(f"{n} {name}" for name, n in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted with the newest key: {summary}."))
