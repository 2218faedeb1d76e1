"""Keys and answers: claim a key before the work, keep the answer after it, find it again on a retry.

The unique constraint on (user, key hash) decides a race on SQLite and PostgreSQL alike: the first request's insert
commits at once (the claim is its own statement, before the view), a concurrent one with the same key fails its
insert and reads the claim: in flight (409), or finished (the answer again), or made with another request (422).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.fernet import InvalidToken
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone

from idempotency.models import IdempotencyKey
from resources import crypto

logger = logging.getLogger("canopy.idempotency")

TTL = timedelta(hours=24)  # a key and its answer are kept this long
# A claim whose request never finished (its worker was killed) is taken over after this long: gunicorn's timeout
# (30 s) ends any request well before.
IN_FLIGHT_TIMEOUT = timedelta(minutes=5)
PURGE_EVERY_S = 600  # opportunistic purge of expired keys: at most this often per process
PURGE_BATCH = 1000
MAX_KEY_LENGTH = 255
# The answer's headers kept and replayed; the rest (X-Request-Id, RateLimit-*, cookies, security headers) belong to
# each request and are set again by the middleware around.
REPLAYED_HEADERS = ("Content-Type", "Location", "ETag", "Last-Modified", "Link", "Deprecation", "Sunset", "Allow")
# 4xx answers are kept (the same request would fail the same way), except those a retry is meant to get past.
NOT_KEPT = frozenset({401, 408, 429})

_next_purge = 0.0


@dataclass(frozen=True)
class Outcome:
    """``claimed`` (do the work, then ``finish``), ``replay`` (answer ``record``'s response), ``reused`` (the key
    came with another request: 422), ``in_flight`` (the first request is still being served: 409)."""

    kind: str
    record: IdempotencyKey | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests the same: method, path (with its query) and body, JSON compared as values (key
    order and white space do not matter)."""
    canonical = body
    if body.strip():
        with contextlib.suppress(ValueError, RecursionError):  # not JSON (a file): byte for byte
            canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(f"{method}\n{path}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


def claim(user: Any, key: str, request_fingerprint: str) -> Outcome:
    key_hash = hash_key(key)
    for _ in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                record = IdempotencyKey.objects.create(
                    user=user, key_hash=key_hash, fingerprint=request_fingerprint, created_at=now, expires_at=now + TTL
                )
        except IntegrityError:
            pass
        else:
            purge_now_and_then()
            return Outcome("claimed", record)
        existing = IdempotencyKey.objects.filter(user=user, key_hash=key_hash).first()
        if existing is None:
            continue  # released (a 5xx) or purged meanwhile: claim again
        abandoned = existing.status is None and existing.created_at <= now - IN_FLIGHT_TIMEOUT
        if existing.expires_at <= now or abandoned:
            IdempotencyKey.objects.filter(pk=existing.pk).delete()
            continue
        if existing.fingerprint != request_fingerprint:
            return Outcome("reused")
        if existing.status is None:
            return Outcome("in_flight")
        return Outcome("replay", existing)
    return Outcome("in_flight")  # another request keeps winning the key: it is being served


def finish(record: IdempotencyKey, response: HttpResponse) -> None:
    """Keep the answer; or release the key when a retry should do the work (a server error, a refusal to retry)."""
    if response.status_code >= 500 or response.status_code in NOT_KEPT or getattr(response, "streaming", False):
        release(record)
        return
    answer = {
        "headers": {name: response[name] for name in REPLAYED_HEADERS if response.has_header(name)},
        "body": base64.b64encode(response.content).decode(),
    }
    IdempotencyKey.objects.filter(pk=record.pk).update(status=response.status_code, response=crypto.encrypt(answer))


def release(record: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=record.pk).delete()


def replay(record: IdempotencyKey) -> HttpResponse | None:
    """The first answer again (None if no configured key can read it any more: it is then forgotten)."""
    try:
        answer = json.loads(crypto.fernet().decrypt(record.response.encode()))
    except (InvalidToken, ValueError):
        logger.warning("An idempotency key's answer cannot be decrypted (a key removed too early): forgotten.")
        release(record)
        return None
    response = HttpResponse(base64.b64decode(answer["body"]), status=record.status)
    for name, value in answer["headers"].items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response


def purge(now: Any = None, *, batch: int | None = None) -> int:
    """Delete expired keys (all, or at most ``batch``); the number deleted."""
    expired = IdempotencyKey.objects.filter(expires_at__lte=now or timezone.now())
    if batch is not None:
        expired = IdempotencyKey.objects.filter(pk__in=list(expired.values_list("pk", flat=True)[:batch]))
    deleted, _ = expired.delete()
    return deleted


def purge_now_and_then() -> None:
    """Expired keys go on their own: a batch at most every PURGE_EVERY_S per process, on a new claim (the
    ``purge_idempotency_keys`` command does the rest, if ever needed)."""
    global _next_purge
    if time.monotonic() < _next_purge:
        return
    _next_purge = time.monotonic() + PURGE_EVERY_S
    purge(batch=PURGE_BATCH)
