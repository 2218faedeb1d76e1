"""Invitations by e-mail: a role on an org for someone who may not have an account yet.

The raw token goes only into the e-mail (and the API's answer to the inviter); the database keeps its SHA-256.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from access import audit, policy
from access.models import AccessToken, Invitation, TenantMembership, hash_token
from access.services.grants import Grant, _check_no_escalation, grant_role, resolve_role
from config.errors import Conflict, NotFound
from orgs.models import Organization


def accept_url(raw_token: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("invitation-accept", args=[raw_token])


def allowed_domains(org: Organization) -> list[str]:
    """The org setting ``allowed_invite_domains`` in effect here (nearest wins, a lock above binds); empty: any."""
    from resources.settings_registry import setting_value

    return [d.lower() for d in setting_value(org, "allowed_invite_domains") or []]


def invite(
    *, actor: Any, org: Organization, email: str, role: Any, lifetime_days: int = Invitation.DEFAULT_LIFETIME_DAYS
) -> tuple[Invitation, str]:
    if actor is not None:
        policy.authorize(actor, "member.manage", org)
    email = (email or "").strip().lower() if isinstance(email, str) else ""
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": ["Enter a valid email address."]}) from None
    if not isinstance(lifetime_days, int) or not 1 <= lifetime_days <= Invitation.MAX_LIFETIME_DAYS:
        raise ValidationError({"expires_in_days": [f"An invitation lives 1 to {Invitation.MAX_LIFETIME_DAYS} days."]})
    role = resolve_role(org, role)
    _check_no_escalation(actor, org, role)
    domains = allowed_domains(org)
    if domains and email.rsplit("@", 1)[-1] not in domains:
        raise ValidationError({"email": [f"Invitations here go only to these domains: {', '.join(domains)}."]})
    raw = "inv_" + AccessToken.generate()[len(AccessToken.PREFIX) :]
    with transaction.atomic():
        pending = Invitation.objects.filter(
            org=org, email=email, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
        if pending.exists():
            raise Conflict(f"{email} already has a pending invitation here: revoke it first.", code="already_invited")
        invitation = Invitation.objects.create(
            org=org,
            email=email,
            role=role,
            token_hash=hash_token(raw),
            invited_by=actor,
            expires_at=timezone.now() + timedelta(days=lifetime_days),
        )
        audit.record(
            actor=actor,
            action="invitation.create",
            tenant=org.tenant_id,
            org=org,
            target=invitation,
            changes={"email": email, "role": role.key, "expires_at": invitation.expires_at},
        )
        inviter = actor.get_username() if actor is not None else "Canopy"
        url = accept_url(raw)
        transaction.on_commit(
            lambda: send_mail(
                subject=f"You are invited to {org.name} on Canopy",
                message=(
                    f"{inviter} invites you to join {org.name} as {role.name}.\n\n"
                    f"Accept the invitation: {url}\n\n"
                    f"It expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC."
                ),
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[email],
            )
        )
    return invitation, raw


def find_invitation(raw_token: str) -> Invitation:
    invitation = Invitation.objects.select_related("org", "role").filter(token_hash=hash_token(raw_token or "")).first()
    if invitation is None or invitation.org.is_deleted:
        raise NotFound("This invitation does not exist.")
    return invitation


def check_usable(invitation: Invitation) -> None:
    status = invitation.status
    if status == "accepted":
        raise Conflict("This invitation has already been used.", code="invitation_used")
    if status == "revoked":
        raise Conflict("This invitation has been revoked.", code="invitation_revoked")
    if status == "expired":
        raise Conflict("This invitation has expired: ask for a new one.", code="invitation_expired")


def accept_invitation(*, raw_token: str, user: Any = None, username: str = "", password: str = "") -> tuple[Any, Grant]:
    """The signed-in ``user`` joins, or a new account is made from ``username``/``password``."""
    invitation = find_invitation(raw_token)
    check_usable(invitation)
    User = get_user_model()
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        check_usable(invitation)  # again, under the row lock: two accepts of one token cannot both pass
        if user is None or not user.is_authenticated:
            errors: dict[str, list[str]] = {}
            username = username.strip() if isinstance(username, str) else ""
            try:
                User.username_validator(username)
                if not username:
                    raise ValidationError("This field may not be blank.")
            except ValidationError as exc:
                errors["username"] = exc.messages
            try:
                validate_password(password or "", user=User(username=username, email=invitation.email))
            except ValidationError as exc:
                errors["password"] = exc.messages
            if errors:
                raise ValidationError(errors)
            if User.objects.filter(username__iexact=username).exists():
                raise Conflict("That username is taken.", code="username_taken")
            user = User.objects.create_user(username=username, email=invitation.email, password=password)
        org = invitation.org
        TenantMembership.objects.get_or_create(tenant_id=org.tenant_id, user=user)
        grant = grant_role(actor=None, target=org, role=invitation.role, user=user)
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit.record(
            actor=user,
            action="invitation.accept",
            tenant=org.tenant_id,
            org=org,
            target=invitation,
            changes={"email": invitation.email, "role": invitation.role.key},
        )
    return user, grant


def revoke_invitation(*, actor: Any, invitation: Invitation) -> Invitation:
    if actor is not None:
        policy.authorize(actor, "member.manage", invitation.org)
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.status != "pending":
            raise Conflict(f"This invitation is {invitation.status} already.", code=f"invitation_{invitation.status}")
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit.record(
            actor=actor,
            action="invitation.revoke",
            tenant=invitation.org.tenant_id,
            org=invitation.org,
            target=invitation,
            changes={"email": invitation.email},
        )
    return invitation
