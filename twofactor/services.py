"""Second factors of an account: TOTP devices (an authenticator app) and single-use backup codes, both django-otp's
(``TOTPDevice``, ``StaticDevice``), which throttle failures (exponential back-off per device) and, for TOTP, never
accept a code twice (``last_t``: a code must belong to a later time step than the last one accepted).

A second factor is the account's own business (docs/DESIGN.md §4.7): only the account changes it, or a superuser
resets it; no tenant administrator can, since removing someone's second factor is half of taking the account over.
Every change is audited in each tenant the account belongs to (the account belongs to no tenant itself, and each
tenant's administrators need to see that a member's second factor changed).

- The TOTP key is sealed at rest (twofactor/models.py: encrypted with FIELD_ENCRYPTION_KEYS, a decoy in
  django-otp's column); every path here reads devices through ``SealedTOTPDevice``.
- Enrolling creates an unconfirmed device and shows its secret once (``otpauth://`` URI, QR code, manual key); a
  first valid code confirms it. At most one enrollment is pending: starting over drops the earlier unconfirmed one.
- The first confirmation creates ten backup codes, shown once. They are stored hashed (SHA-256 of an 80-bit code,
  truncated to 96 bits to fit django-otp's column): a database reader learns nothing usable.
- Removing a confirmed device, and regenerating the backup codes, take a current code (TOTP or backup code): a
  stolen session must not silently switch the second factor off or mint itself codes. A user who lost both device
  and codes asks a superuser to reset their devices. Removing the last TOTP device removes the backup codes too.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import segno
from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from access import audit, policy
from access.models import TenantMembership
from config.errors import Conflict, Forbidden, NotFound
from twofactor.models import SealedTOTPDevice

ISSUER = "Canopy"
BACKUP_CODE_COUNT = 10
_BACKUP_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no l/1/o/0 to misread
_BACKUP_LENGTH = 16  # 16 × 5 bits = 80 bits


def devices_of(user: Any) -> Any:
    """``user``'s devices made by Canopy (with their public ids), oldest first: one query."""
    return (
        SealedTOTPDevice.objects.select_related("canopy_seed")
        .filter(user=user, canopy_seed__isnull=False)
        .order_by("created_at", "pk")
    )


def has_device(user: Any) -> bool:
    """Whether ``user`` has a confirmed TOTP device (so every sign-in takes a code)."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


# -- codes ---------------------------------------------------------------------------------------------------------


def _normalized(code: Any) -> str:
    return "".join(ch for ch in str(code or "").lower() if ch.isalnum())


def hash_backup_code(code: str) -> str:
    """What django-otp stores for a backup code (16 characters: its column's width)."""
    digest = hashlib.sha256(_normalized(code).encode()).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode()


def _new_backup_code() -> str:
    raw = "".join(secrets.choice(_BACKUP_ALPHABET) for _ in range(_BACKUP_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, _BACKUP_LENGTH, 4))


def _is_totp_shaped(code: str) -> bool:
    return code.isdigit() and len(code) in (6, 8)


@dataclass(frozen=True)
class Check:
    """The outcome of checking a code: ``how`` is "totp" or "backup" when it was accepted; ``throttled`` when every
    device that could have accepted it is waiting out its back-off (the code was not even tried)."""

    how: str | None = None
    throttled: bool = False

    @property
    def ok(self) -> bool:
        return self.how is not None


def check_code(user: Any, code: Any) -> Check:
    """Check ``code`` against ``user``'s confirmed devices: six digits go to the TOTP devices, anything else to the
    backup codes (so a mistyped code does not throttle the other kind). A backup code is used up; a TOTP code's
    time step is recorded, so it is never accepted again. Each device's failure counter is saved whatever
    happens: call this outside any transaction that a refusal would roll back."""
    text = _normalized(code)
    if not text or len(text) > 32:
        return Check()
    with transaction.atomic():
        # Locked, so that two requests racing with the same code cannot both pass last_t (or the same backup code).
        if _is_totp_shaped(text):
            devices: list[Any] = list(
                SealedTOTPDevice.objects.select_for_update(of=("self",))
                .select_related("canopy_seed")
                .filter(user=user, confirmed=True)
                .order_by("pk")
            )
            token, how = text, "totp"
        else:
            devices = list(StaticDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk"))
            token, how = hash_backup_code(text), "backup"
        allowed = [d for d in devices if d.verify_is_allowed()[0]]
        if devices and not allowed:
            return Check(throttled=True)
        for device in allowed:
            if device.verify_token(token):
                for other in allowed:
                    if other is not device and other.throttling_failure_count:
                        other.throttle_reset()  # the owner proved themselves: the other devices' misses are theirs
                if how == "backup":
                    _record(user, user, "2fa.backup_used", device, {"left": device.token_set.count()})
                return Check(how)
    return Check()


def require_code(user: Any, code: Any, field: str = "code") -> str:
    """``check_code`` for a service: a refusal as a field error (the failure counters are already saved)."""
    result = check_code(user, code)
    if result.throttled:
        raise ValidationError({field: ["Too many wrong codes: wait a minute, then try again."]})
    if not result.ok:
        raise ValidationError({field: ["This code is not valid (a code is accepted only once)."]})
    return result.how or ""


# -- self-service --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrollment:
    """A new unconfirmed device and what the authenticator app needs, shown once."""

    device: SealedTOTPDevice
    uri: str
    secret: str

    @property
    def qr_svg(self) -> str:
        return str(segno.make(self.uri, error="m").svg_inline(scale=5, border=2, light="#fff", title="QR code"))


def otpauth_uri(device: SealedTOTPDevice) -> str:
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    label = quote(f"{ISSUER}:{device.user.get_username()}")
    query = urlencode({"secret": secret, "issuer": ISSUER, "algorithm": "SHA1", "digits": device.digits,
                       "period": device.step})  # fmt: skip
    return f"otpauth://totp/{label}?{query}"


def _own_user(actor: Any) -> Any:
    if actor is None or not getattr(actor, "is_authenticated", False):
        raise Forbidden("Sign in to manage your second factor.")
    return actor


def enroll(*, actor: Any, name: str = "") -> Enrollment:
    """Start enrolling an authenticator app for ``actor``: an unconfirmed device (an earlier pending one goes)."""
    user = _own_user(actor)
    name = (name or "").strip()[:64] or "Authenticator app"
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device = SealedTOTPDevice.create_sealed(user=user, name=name, confirmed=False)
        _record(actor, user, "2fa.device_added", device, {"name": name})
    uri = otpauth_uri(device)
    return Enrollment(device, uri, base64.b32encode(device.bin_key).decode().rstrip("="))


def own_device(actor: Any, device_id: Any) -> SealedTOTPDevice:
    """``actor``'s own TOTP device ``device_id``; anyone else's, or none, is NotFound."""
    user = _own_user(actor)
    try:
        public_id = uuid.UUID(str(device_id))
    except ValueError:
        raise NotFound() from None
    device = (
        SealedTOTPDevice.objects.select_related("canopy_seed")
        .filter(canopy_seed__public_id=public_id, user=user)
        .first()
    )
    if device is None:
        raise NotFound()
    return device


def confirm(*, actor: Any, device: SealedTOTPDevice, code: Any) -> list[str]:
    """Confirm ``device`` with a first valid code. Returns the backup codes created on the account's first
    confirmation (shown once), else an empty list."""
    user = _own_user(actor)
    if device.user_id != user.pk:
        raise NotFound()
    if device.confirmed:
        raise Conflict("This device is confirmed already.", code="confirmed")
    accepted = device.verify_token(_normalized(code)) if _is_totp_shaped(_normalized(code)) else False
    if not accepted:
        # verify_token saved the failure (the back-off); nothing else changed.
        raise ValidationError({"code": ["This code is not valid: enter the 6 digits your app shows now."]})
    with transaction.atomic():
        first = not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
        device.confirmed = True
        _record(actor, user, "2fa.device_confirmed", device, {"name": device.name})
        codes = _replace_backup_codes(actor, user) if first else []
    return codes


def remove(*, actor: Any, device: SealedTOTPDevice, code: Any = None) -> None:
    """Remove ``device``. A confirmed one takes a current code (TOTP or backup); a pending enrollment does not."""
    user = _own_user(actor)
    if device.user_id != user.pk:
        raise NotFound()
    if device.confirmed:
        require_code(user, code)
    with transaction.atomic():
        TOTPDevice.objects.filter(pk=device.pk).delete()
        _record(actor, user, "2fa.device_removed", device, {"name": device.name})
        if device.confirmed and not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            StaticDevice.objects.filter(user=user).delete()  # no second factor left: its backup codes go too


def regenerate_backup_codes(*, actor: Any, code: Any) -> list[str]:
    """Ten new backup codes (the old ones stop working), for an account with a confirmed device, given a current
    code."""
    user = _own_user(actor)
    if not has_device(user):
        raise Conflict("Set up an authenticator app first: backup codes go with it.", code="no_device")
    require_code(user, code)
    with transaction.atomic():
        return _replace_backup_codes(actor, user)


def backup_codes_left(user: Any) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def _replace_backup_codes(actor: Any, user: Any) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    codes = [_new_backup_code() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=hash_backup_code(c)) for c in codes)
    _record(actor, user, "2fa.backup_codes", device, {"count": len(codes)})
    return codes


# -- superusers ----------------------------------------------------------------------------------------------------


def reset_devices(*, actor: Any, user: Any) -> int:
    """Remove every second factor of ``user`` (a superuser's account recovery): returns how many devices went."""
    if not policy.access_for(actor).is_superuser:
        raise Forbidden("Only a superuser resets someone's second factor.")
    with transaction.atomic():
        totp = list(TOTPDevice.objects.filter(user=user))
        TOTPDevice.objects.filter(user=user).delete()
        static = StaticDevice.objects.filter(user=user).delete()[1].get(StaticDevice._meta.label, 0)
        _record(actor, user, "2fa.device_removed", None, {"reset": True, "devices": len(totp) + static},
                target_name=f"every second factor of {user.get_username()}")  # fmt: skip
    return len(totp) + static


# -- audit ---------------------------------------------------------------------------------------------------------


def _record(
    actor: Any, user: Any, action: str, target: Any, changes: dict[str, Any], target_name: str | None = None
) -> None:
    """One event in each tenant ``user`` belongs to (memberships, not grants: fenced tenants included)."""
    label = target_name or (f"{target.name} of {user.get_username()}" if target is not None else None)
    for tenant_id in TenantMembership.objects.filter(user=user).values_list("tenant_id", flat=True):
        audit.record(actor=actor, action=action, tenant=tenant_id, target=target, target_name=label, changes=changes)
