"""Secrets at rest: MultiFernet over ``settings.FIELD_ENCRYPTION_KEYS`` (newest first).

Encrypting uses the newest key; decrypting tries each key, so a new key can be added at the front, everything
re-encrypted with ``rotate_encryption_keys``, and only then the old key dropped: no downtime, nothing unreadable.
Nothing here logs or returns a clear value except ``decrypt``, which only a run (a later issue) should call.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: secrets cannot be stored (see README.md).")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError):
        # Never echo the key itself.
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64-encoded bytes)."
        ) from None


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(values: dict[str, Any] | str) -> str:
    """A token of ``values`` (a dict of secret fields, or one string) under the newest key."""
    return fernet().encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def decrypt(token: str) -> Any:
    if not token:
        return None
    try:
        return json.loads(fernet().decrypt(token.encode()))
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS: a key it needs was removed too early."
        ) from None


def rotate(token: str) -> str:
    """The same secret under the newest key (raises if no configured key can read it)."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS: keep its old key until rotated."
        ) from None


def generate_key() -> str:
    return Fernet.generate_key().decode()
