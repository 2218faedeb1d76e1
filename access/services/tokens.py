"""Writes about users themselves: personal access tokens and the remembered organization."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from access.models import AccessToken, hash_token
from config.actors import require_actor
from config.concurrency import lock_for_update, save_changes
from config.errors import Conflict, NotFound

MAX_TOKEN_LIFETIME = timedelta(days=365)


def issue_token(
    *,
    user: Any,
    name: str = "",
    lifetime: timedelta | None = None,
    sso_tenants: Any = (),
    otp_verified: bool = False,
) -> tuple[AccessToken, str]:
    """Create a personal access token; returns the row and the raw value, which is never stored or shown again.

    ``sso_tenants`` and ``otp_verified`` say what the issuing authentication proved (access/fences.py): a token
    minted in an SSO session reaches the SSO tenants, one minted with a second factor reaches 2FA subtrees."""
    lifetime = lifetime or settings.API_TOKEN_LIFETIME
    if lifetime <= timedelta(0) or lifetime > MAX_TOKEN_LIFETIME:
        raise ValidationError({"lifetime": ["A token lives between one second and 365 days."]})
    if len(name or "") > 100:
        raise ValidationError({"name": ["Ensure this field has no more than 100 characters."]})
    raw = AccessToken.generate()
    with transaction.atomic():
        # The account row, locked: a password change (or deactivation) that commits between the caller's
        # authentication and this insert would otherwise leave a token minted with the old password alive.
        current = get_user_model().objects.select_for_update().filter(pk=user.pk).values("password", "is_active")
        row = current.first()
        if row is None or not row["is_active"] or row["password"] != user.password:
            raise Conflict("The account's password changed meanwhile: authenticate again.", code="credentials_changed")
        token = AccessToken.objects.create(
            user=user,
            name=(name or "").strip(),
            key_hash=hash_token(raw),
            hint=raw[: len(AccessToken.PREFIX) + 4],
            expires_at=timezone.now() + lifetime,
            sso_tenants=sorted(str(t) for t in sso_tenants),
            otp_verified=otp_verified,
        )
    return token, raw


def revoke_token(*, actor: Any, token: AccessToken) -> AccessToken:
    """Owners revoke their own tokens; anyone else is told the token does not exist. Revoking is one way and
    idempotent, decided on the row read again under its lock (tokens carry no version: there is nothing else to
    change on them); only ``revoked_at`` is written, never ``last_used_at`` as the caller's copy had it."""
    if token.user_id != require_actor(actor).pk:
        raise NotFound()
    with transaction.atomic():
        token = lock_for_update(token)
        if token.revoked_at is None:
            save_changes(token, {"revoked_at": timezone.now()})
    return token


def remember_org(*, user: Any, org: Any) -> None:
    """Remember the organization the user opened last, for the landing page (one UPDATE, only on change). Pages
    are reads, in a read-only snapshot (config/snapshots.py): the UPDATE runs once it has ended."""
    if user.is_authenticated and user.last_org_id != org.pk:
        user_id, org_id = user.pk, org.pk
        transaction.on_commit(lambda: get_user_model().objects.filter(pk=user_id).update(last_org_id=org_id))
        user.last_org_id = org.pk
