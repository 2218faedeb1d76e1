"""Helpers of the two-factor tests: a device set up the way a person would, and the codes an authenticator app
shows (django-otp's own TOTP, at a given time)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from access import fences
from access.services.tokens import issue_token
from config.actors import SYSTEM
from resources.models import OrgSetting
from resources.services import set_setting
from twofactor import services
from twofactor.models import SealedTOTPDevice


def code_of(device: SealedTOTPDevice, at: float | None = None) -> str:
    """What the app shows at ``at`` (default: now): the app knows nothing of the server's drift estimate."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, 0)
    totp.time = time.time() if at is None else at
    return str(totp.token()).zfill(device.digits)


def enrolled(user: Any, name: str = "phone") -> tuple[SealedTOTPDevice, list[str]]:
    """A confirmed device of ``user`` and the backup codes its confirmation made. The confirming code is at the
    previous time step, so a test's code "now" is still fresh."""
    enrollment = services.enroll(actor=user, name=name)
    device = enrollment.device
    codes = services.confirm(actor=user, device=device, code=code_of(device, time.time() - device.step))
    TOTPDevice.objects.filter(pk=device.pk).update(drift=0)  # the code was late, not the phone's clock
    device.refresh_from_db()
    return device, codes


def require_2fa(org: Any, *, grace_hours: int = 0, locked: bool = False, required: bool = True) -> OrgSetting:
    return set_setting(
        actor=SYSTEM, org=org, key="require_2fa", value={"required": required, "grace_hours": grace_hours},
        locked=locked,
    )  # fmt: skip


def age(setting: OrgSetting, by: timedelta) -> None:
    """Move the setting's ``updated_at`` back (as if it had been set ``by`` ago), and forget cached rules."""
    OrgSetting.objects.filter(pk=setting.pk).update(updated_at=timezone.now() - by)
    fences.invalidate(setting.org.tenant_id)


def token_client(api: Any, user: Any, *, otp_verified: bool = False) -> Any:
    _, raw = issue_token(user=user, otp_verified=otp_verified)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api
