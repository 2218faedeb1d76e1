"""Signing keys: making them, rotating them, publishing them (the JWKS), and the active one for signing.

Rotation (``rotate``) is the only writer of key states. The first rotation makes an active key and a next one;
every later one promotes next → active, makes a new next, retires the old active and deletes the retired keys whose
last token (``signed_until``, else the retirement) expired more than WORKLOAD_IDENTITY_KEY_LEEWAY_S ago. Because the
next key was published one rotation earlier, a verifier's cached JWKS already knows the key that signs after the
rotation; a rotation sooner than MIN_NEXT_AGE_S (the verifiers' cache plus ours) after the next key appeared would
break that, so it is refused unless forced.

The JWKS and the algorithms are cached (``CACHE_KEY``) for JWKS_CACHE_S: the public endpoints cost at most one
query per cache period; a rotation drops the cache at once. The private key of the active key is decrypted once per
process and kid (``_private``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from joserfc.jwk import ECKey, RSAKey

from access import policy
from config.actors import require_actor
from config.errors import Conflict, Forbidden
from resources import crypto
from workload.models import SigningKey

logger = logging.getLogger("canopy.workload")

JWKS_MAX_AGE_S = 300  # Cache-Control of the JWKS: verifiers may hold it this long
JWKS_CACHE_S = 60  # our own cache of the published keys (a retired key's end is seen within this)
# A next key signs only once every verifier can know it: our cache shows it within JWKS_CACHE_S, theirs within max-age.
MIN_NEXT_AGE_S = JWKS_MAX_AGE_S + JWKS_CACHE_S
CACHE_KEY = "workload:jwks:v1"

JoseKey = RSAKey | ECKey


def generate(alg: str) -> tuple[JoseKey, SigningKey]:
    """A new key pair for ``alg`` and its (unsaved) row in state next: kid = RFC 7638 thumbprint."""
    if alg == SigningKey.Alg.ES256:
        key: JoseKey = ECKey.generate_key("P-256")
    elif alg == SigningKey.Alg.RS256:
        key = RSAKey.generate_key(2048)
    else:
        raise ValueError(f"unsupported workload identity algorithm {alg!r}")
    public = {**key.as_dict(private=False), "kid": key.thumbprint(), "alg": alg, "use": "sig"}
    pem = key.as_pem(private=True).decode()
    row = SigningKey(kid=key.thumbprint(), alg=alg, private_key=crypto.encrypt(pem), public_jwk=public)
    return key, row


@lru_cache(maxsize=8)
def _private(kid: str, encrypted: str, alg: str) -> JoseKey:
    """The private key of ``kid``, decrypted once per process (the kid and the token pin which one)."""
    pem = crypto.decrypt(encrypted)
    return ECKey.import_key(pem) if alg == SigningKey.Alg.ES256 else RSAKey.import_key(pem)


def private_key(row: SigningKey) -> JoseKey:
    return _private(row.kid, row.private_key, row.alg)


# -- publishing ----------------------------------------------------------------------------------------------------


def leeway() -> timedelta:
    return timedelta(seconds=settings.WORKLOAD_IDENTITY_KEY_LEEWAY_S)


def published_q(now: datetime) -> Q:
    """The keys a verifier must find: next, active, and retired ones whose last token may still be in use."""
    return Q(state__in=[SigningKey.State.NEXT, SigningKey.State.ACTIVE]) | Q(
        state=SigningKey.State.RETIRED, last_use__gt=now - leeway()
    )


def _published() -> dict[str, Any]:
    cached = cache.get(CACHE_KEY)
    if cached is None:
        rows = (
            SigningKey.objects.annotate(last_use=Coalesce("signed_until", "retired_at"))
            .filter(published_q(timezone.now()))
            .order_by("pk")  # oldest first
            .values_list("public_jwk", "alg")
        )
        keys = [jwk for jwk, _ in rows]
        cached = {"keys": keys, "algs": sorted({alg for _, alg in rows}) or [settings.WORKLOAD_IDENTITY_ALG]}
        cache.set(CACHE_KEY, cached, JWKS_CACHE_S)
    return cached


def jwks() -> dict[str, Any]:
    """The JWKS document: public keys only (each row's ``public_jwk`` never held a private part)."""
    return {"keys": _published()["keys"]}


def signing_algs() -> list[str]:
    return list(_published()["algs"])


def forget_published() -> None:
    cache.delete(CACHE_KEY)


# -- rotation ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rotation:
    active: SigningKey
    next: SigningKey
    retired: SigningKey | None
    deleted: list[str]  # kids


def _authorize(actor: Any) -> None:
    require_actor(actor)
    if not policy.access_for(actor).is_superuser:
        raise Forbidden("Only a superuser rotates the workload identity keys.")


def rotate(*, actor: Any, force: bool = False, alg: str | None = None) -> Rotation:
    """One rotation (see the module's docstring). ``alg`` (default WORKLOAD_IDENTITY_ALG) is the new next key's:
    switching algorithms takes effect one rotation later, like any new key. Logged as ``workload.key_rotated`` on
    the application log (no tenant owns the platform's keys)."""
    _authorize(actor)
    alg = alg or settings.WORKLOAD_IDENTITY_ALG
    now = timezone.now()
    with transaction.atomic():
        keys = list(
            SigningKey.objects.select_for_update()
            .filter(state__in=[SigningKey.State.NEXT, SigningKey.State.ACTIVE])
            .order_by("created_at")
        )
        active = next((k for k in keys if k.state == SigningKey.State.ACTIVE), None)
        upcoming = next((k for k in keys if k.state == SigningKey.State.NEXT), None)
        if upcoming is not None and not force and now - upcoming.created_at < timedelta(seconds=MIN_NEXT_AGE_S):
            raise Conflict(
                f"The next key was published less than {MIN_NEXT_AGE_S} s ago: verifiers that cached the JWKS "
                "before may not know it yet. Rotate later, or force it.",
                code="rotation_too_soon",
            )
        if upcoming is None and active is not None and not force:
            raise Conflict(
                "There is no next key: a new one would sign before any verifier could have fetched it. Force it.",
                code="rotation_too_soon",
            )
        retired = None
        if active is not None:
            active.state, active.retired_at = SigningKey.State.RETIRED, now
            active.save(update_fields=["state", "retired_at"])
            retired = active
        if upcoming is None:  # the first rotation (or a lost next key): this one signs at once
            _, upcoming = generate(alg)
            upcoming.save()
        upcoming.state, upcoming.activated_at = SigningKey.State.ACTIVE, now
        upcoming.save(update_fields=["state", "activated_at"])
        _, fresh = generate(alg)
        fresh.save()
        expired = SigningKey.objects.annotate(last_use=Coalesce("signed_until", "retired_at")).filter(
            state=SigningKey.State.RETIRED, last_use__lte=now - leeway()
        )
        deleted = list(expired.values_list("kid", flat=True))
        SigningKey.objects.filter(kid__in=deleted).delete()
        # Now (this transaction's own readers) and after the commit (a reader that cached the old keys meanwhile).
        forget_published()
        transaction.on_commit(forget_published)
    logger.info(
        "workload.key_rotated by %s: active %s, next %s, retired %s, deleted %s",
        actor.get_username(), upcoming.kid, fresh.kid, retired.kid if retired else "-", ", ".join(deleted) or "-",
    )  # fmt: skip
    return Rotation(active=upcoming, next=fresh, retired=retired, deleted=deleted)


def status() -> list[SigningKey]:
    """Every key, newest first, without its private part."""
    return list(SigningKey.objects.defer("private_key").order_by("-created_at"))


def active_key() -> SigningKey | None:
    return SigningKey.objects.filter(state=SigningKey.State.ACTIVE).first()
