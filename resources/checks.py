"""System check: the encryption keys must be usable before anything stores a secret (runs with every command)."""

from typing import Any

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from resources import crypto


@register()
def encryption_keys_usable(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    try:
        crypto.fernet()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint="Set FIELD_ENCRYPTION_KEYS (see README.md).", id="canopy.E001")]
    return []
