"""Writes an account makes about itself: its password, its e-mail address and the proof that it receives mail there.

Identity is not tenant property (docs/DESIGN.md §4.7): nothing here takes a tenant or an administrator. A password is
changed by its owner (who gives the current one) or reset through a link sent to the account's verified address;
either way every session and API token issued before ends (access.models.User.save). An address counts once it
is verified, and a verified address belongs to one account only.

The links these e-mails carry put their token in the URL fragment (after ``#``), which browsers never send to a
server: it cannot land in an access log. The page reads it with a script and posts it; without a script, the
person pastes the code printed in the same e-mail.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from config.errors import Conflict

log = logging.getLogger("canopy.security")

EMAIL_VERIFY_SALT = "canopy.accounts.verify-email"
EMAIL_VERIFY_MAX_AGE = 3 * 24 * 3600  # seconds


def link_with_code(url_name: str, code: str) -> str:
    """An absolute console link that carries ``code`` in its fragment (never sent to the server, never logged)."""
    return f"{settings.SITE_URL.rstrip('/')}{reverse(url_name)}#{code}"


def clean_email(value: Any, field: str = "email") -> str:
    email = value.strip() if isinstance(value, str) else ""
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({field: ["Enter a valid email address."]}) from None
    return email


def verified_owner(email: str, *, exclude: Any = None) -> Any:
    """The account whose verified address ``email`` is (any case), if there is one."""
    owners = get_user_model().objects.filter(email__iexact=email, email_verified_at__isnull=False)
    if exclude is not None:
        owners = owners.exclude(pk=exclude.pk)
    return owners.first()


def new_account_problems(*, username: Any, email: str, password: Any) -> tuple[str, dict[str, list[str]]]:
    """The username (stripped) and the field errors of a new account's username and password, if any."""
    User = get_user_model()
    errors: dict[str, list[str]] = {}
    username = username.strip() if isinstance(username, str) else ""
    try:
        User.username_validator(username)
        if not username:
            raise ValidationError("This field may not be blank.")
    except ValidationError as exc:
        errors["username"] = exc.messages
    try:
        validate_password(password or "", user=User(username=username, email=email))
    except ValidationError as exc:
        errors["password"] = exc.messages
    return username, errors


def create_account(*, username: str, email: str, password: str, email_verified: bool = False) -> Any:
    """A new account (its fields checked by ``new_account_problems``). A username taken in any case, or an address
    another account verified, is a conflict; so is a concurrent request that took either first."""
    User = get_user_model()
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict("That username is taken.", code="username_taken")
    if email_verified and verified_owner(email) is not None:
        raise Conflict(f"An account with the e-mail address {email} exists: sign in with it.", code="email_taken")
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, email=email, password=password)
            if email_verified:
                user.email_verified_at = timezone.now()
                user.save(update_fields=["email_verified_at"])
    except IntegrityError:  # the same username (any case) or address, taken by a concurrent request
        raise Conflict("That username or e-mail address was just taken.", code="username_taken") from None
    return user


def _check_current_password(user: Any, password: Any) -> None:
    if not isinstance(password, str) or not user.check_password(password):
        raise ValidationError({"current_password": ["Your current password is not correct."]})


# -- password ------------------------------------------------------------------------------------------------------


def change_password(*, user: Any, current_password: str, new_password: str) -> int:
    """The owner sets a new password. Returns how many API tokens ended with the old one (all of them)."""
    _check_current_password(user, current_password)
    try:
        validate_password(new_password or "", user=user)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.messages}) from None
    return _set_password(user, new_password, how="changed")


def _set_password(user: Any, password: str, *, how: str) -> int:
    with transaction.atomic():
        live = user.access_tokens.filter(revoked_at__isnull=True).count()
        user.set_password(password)
        user.save(update_fields=["password"])  # ends every token (User.save), and every other session
    log.info("Password %s for user %s; %d API token(s) revoked.", how, user.pk, live)
    return live


def request_password_reset(*, email: str) -> None:
    """E-mail a reset link to the active account whose *verified* address is ``email``. Answers the same whether
    there is one or not, so that nobody learns which addresses have accounts."""
    email = clean_email(email)
    user = verified_owner(email)
    if user is None or not user.is_active:
        log.info("Password reset asked for an address with no verified account.")
        return
    code = f"{urlsafe_base64_encode(force_bytes(user.pk))}.{default_token_generator.make_token(user)}"
    url = link_with_code("password-reset-confirm", code)
    send_mail(
        subject="Reset your Canopy password",
        message=(
            f"Someone (hopefully you) asked to reset the password of the Canopy account {user.get_username()}.\n\n"
            f"Choose a new password: {url}\n\n"
            f"Or open {link_with_code('password-reset-confirm', '')[:-1]} and paste this code:\n{code}\n\n"
            "The link works once, for a few days. If you did not ask for it, ignore this e-mail: your password "
            "stays as it is."
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )
    log.info("Password reset link sent for user %s.", user.pk)


def reset_password(*, code: str, new_password: str) -> Any:
    """Set a new password with the code of a reset link; the code works once (it is tied to the old password)."""
    user = _user_of_reset_code(code)
    if user is None:
        raise ValidationError({"token": ["This reset link is invalid or has been used already: ask for a new one."]})
    try:
        validate_password(new_password or "", user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None
    _set_password(user, new_password, how="reset")
    return user


def _user_of_reset_code(code: Any) -> Any:
    if not isinstance(code, str) or code.count(".") != 1:
        return None
    uidb64, token = code.strip().split(".")
    try:
        pk = force_str(urlsafe_base64_decode(uidb64))
        user = get_user_model().objects.filter(pk=pk, is_active=True).first()
    except (ValueError, ValidationError, OverflowError):
        return None
    if user is None or user.email_verified_at is None or not default_token_generator.check_token(user, token):
        return None
    return user


# -- e-mail --------------------------------------------------------------------------------------------------------


def change_email(*, user: Any, current_password: str, email: str) -> Any:
    """The owner sets a new address (giving their password): it counts once verified through the link sent
    there. An address another account verified is refused."""
    _check_current_password(user, current_password)
    email = clean_email(email)
    if email.lower() == (user.email or "").lower():
        return user
    if verified_owner(email, exclude=user) is not None:
        raise ValidationError({"email": ["Another account uses this e-mail address."]})
    get_user_model().objects.filter(pk=user.pk).update(email=email, email_verified_at=None)
    user.email, user.email_verified_at = email, None
    log.info("E-mail address changed for user %s; verification sent.", user.pk)
    transaction.on_commit(lambda: send_email_verification(user=user))
    return user


def email_verification_code(user: Any) -> str:
    return signing.dumps({"u": str(user.pk), "e": (user.email or "").lower()}, salt=EMAIL_VERIFY_SALT, compress=True)


def send_email_verification(*, user: Any) -> None:
    code = email_verification_code(user)
    url = link_with_code("email-verify", code)
    send_mail(
        subject="Confirm your e-mail address for Canopy",
        message=(
            f"Confirm that {user.email} is the address of the Canopy account {user.get_username()}: {url}\n\n"
            f"Or open {link_with_code('email-verify', '')[:-1]} and paste this code:\n{code}\n\n"
            "The link works for three days."
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )


def verify_email(*, code: str) -> Any:
    """Mark the address the code was sent to as verified, if it is still the account's address."""
    try:
        data = signing.loads(code or "", salt=EMAIL_VERIFY_SALT, max_age=EMAIL_VERIFY_MAX_AGE)
    except (signing.BadSignature, TypeError, ValueError):
        raise ValidationError({"token": ["This link is invalid or expired: ask for a new one."]}) from None
    user = get_user_model().objects.filter(pk=data.get("u"), is_active=True).first()
    if user is None or (user.email or "").lower() != data.get("e"):
        raise ValidationError({"token": ["This link is for an address the account no longer has."]})
    if user.email_verified_at is not None:
        return user
    if verified_owner(user.email, exclude=user) is not None:
        raise Conflict("Another account has verified this e-mail address already.", code="email_taken")
    try:
        with transaction.atomic():
            user.email_verified_at = timezone.now()
            user.save(update_fields=["email_verified_at"])
    except IntegrityError:  # another account verified the same address at the same moment
        raise Conflict("Another account has verified this e-mail address already.", code="email_taken") from None
    log.info("E-mail address verified for user %s.", user.pk)
    return user
