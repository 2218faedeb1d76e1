"""Invitations by e-mail: a role on an org for someone who may not have an account yet.

An invitation binds to the address it was sent to: it is accepted by the signed-in account whose *verified* e-mail
is that address, or by a new account created with it (the link proves the address). It stays backed by its
inviter's rights: at accept time the inviter must still be allowed to invite here and to give the role, and the
org's ``allowed_invite_domains`` must still admit the address (access.services.backing).

The raw token goes only into the e-mail (and the API's answer to the inviter), in the URL fragment of the link so
that no server or proxy logs it; the database keeps its SHA-256.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from access import audit, policy
from access.models import AccessToken, Invitation, TenantMembership, hash_token
from access.services.accounts import clean_email, create_account, link_with_code, new_account_problems
from access.services.backing import backing_problem, mark_revoked, standing
from access.services.grants import Grant, authorize_role, grant_role, resolve_role
from config.actors import SYSTEM, require_actor
from config.concurrency import lock_for_update
from config.errors import Conflict, Forbidden, NotFound
from orgs.models import Organization
from resources.settings_registry import setting_value


def accept_url(raw_token: str) -> str:
    """The console link of an invitation: the token rides in the fragment, which is never sent to a server."""
    return link_with_code("invitation-accept", raw_token)


def allowed_domains(org: Organization) -> list[str]:
    """The org setting ``allowed_invite_domains`` in effect here (nearest wins, a lock above binds); empty: any."""
    return [d.lower() for d in setting_value(org, "allowed_invite_domains") or []]


def _domain_problem(org: Organization, email: str) -> str | None:
    domains = allowed_domains(org)
    if domains and email.rsplit("@", 1)[-1].lower() not in domains:
        return f"Invitations to {org.name} go only to these domains: {', '.join(domains)}."
    return None


def invite(
    *, actor: Any, org: Organization, email: str, role: Any, lifetime_days: int = Invitation.DEFAULT_LIFETIME_DAYS
) -> tuple[Invitation, str]:
    if require_actor(actor) is SYSTEM:
        raise TypeError("An invitation is backed by the rights of the person who sends it: give that person.")
    policy.authorize(actor, "member.manage", org)
    email = clean_email(email).lower()
    if not isinstance(lifetime_days, int) or not 1 <= lifetime_days <= Invitation.MAX_LIFETIME_DAYS:
        raise ValidationError({"expires_in_days": [f"An invitation lives 1 to {Invitation.MAX_LIFETIME_DAYS} days."]})
    role = resolve_role(org, role)
    authorize_role(actor, org, role, "invite someone with")
    if problem := _domain_problem(org, email):
        raise ValidationError({"email": [problem]})
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
        inviter = actor.get_username()
        url = accept_url(raw)
        transaction.on_commit(
            lambda: send_mail(
                subject=f"You are invited to {org.name} on Canopy",
                message=(
                    f"{inviter} invites you to join {org.name} as {role.name}.\n\n"
                    f"Accept the invitation: {url}\n\n"
                    f"Or open {accept_url('')[:-1]} and paste this code:\n{raw}\n\n"
                    f"Accept it signed in with this e-mail address ({email}), or create an account with it. "
                    f"It expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC."
                ),
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[email],
            )
        )
    return invitation, raw


def find_invitation(raw_token: Any) -> Invitation:
    if not isinstance(raw_token, str) or not raw_token.strip():
        raise NotFound("This invitation does not exist.")
    invitation = (
        Invitation.objects.select_related("org", "role", "invited_by")
        .filter(token_hash=hash_token(raw_token.strip()))
        .first()
    )
    if invitation is None or invitation.org.is_deleted:
        raise NotFound("This invitation does not exist.")
    return invitation


def invitation_by_id(invitation_id: Any) -> Invitation:
    """An invitation whose token this session proved it holds (the console keeps only the id)."""
    invitation = Invitation.objects.select_related("org", "role", "invited_by").filter(pk=invitation_id).first()
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


def account_problem(invitation: Invitation, user: Any) -> Forbidden | None:
    """Why the signed-in ``user`` cannot accept ``invitation`` (the address is not theirs, or not verified)."""
    if (user.email or "").lower() != invitation.email.lower():
        return Forbidden(
            f"This invitation was sent to {invitation.email}, which is not the e-mail address of your account: "
            "accept it signed in with that address, or sign out and create an account with it.",
            code="invitation_email_mismatch",
        )
    if user.email_verified_at is None:
        return Forbidden(
            f"Verify your e-mail address {user.email} first (a link is on your account page), then accept.",
            code="email_unverified",
        )
    return None


def accept_invitation(
    *,
    raw_token: str | None = None,
    invitation: Invitation | None = None,
    user: Any = None,
    username: str = "",
    password: str = "",
) -> tuple[Any, Grant]:
    """The signed-in ``user`` joins, if the invitation (given by its token, or as a row whose token the caller
    proved it holds) was sent to their verified address; without a user, a new account is made from
    ``username``/``password`` with the invitation's address, verified by the link."""
    if invitation is None:
        invitation = find_invitation(raw_token)
    check_usable(invitation)
    if user is not None and user.is_authenticated and (problem := account_problem(invitation, user)):
        raise problem
    # Is the invitation still backed? If not it is revoked for good (in its own transaction), then refused.
    reason = backing_problem(invitation) or _domain_problem(invitation.org, invitation.email)
    if reason is not None:
        with transaction.atomic():
            locked = Invitation.objects.select_for_update(of=("self",)).select_related("org").get(pk=invitation.pk)
            if locked.status == "pending":
                mark_revoked(locked, actor=SYSTEM, reason=reason)
        raise Conflict(reason, code="invitation_revoked")
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update(of=("self",))
            .select_related("org", "role", "invited_by")
            .get(pk=invitation.pk)
        )
        check_usable(invitation)  # again, under the row lock: two accepts of one token cannot both pass
        if user is None or not user.is_authenticated:
            user = _new_account(invitation, username, password)
        org = invitation.org
        TenantMembership.objects.get_or_create(tenant_id=org.tenant_id, user=user)
        # Granted by the inviter, whose rights the grant service checks once more.
        grant = grant_role(actor=standing(invitation.invited_by, org.tenant_id), target=org, role=invitation.role,
                           user=user)  # fmt: skip
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


def _new_account(invitation: Invitation, username: Any, password: Any) -> Any:
    """An account with the invitation's address, which the link proved: verified from the start."""
    username, errors = new_account_problems(username=username, email=invitation.email, password=password)
    if errors:
        raise ValidationError(errors)
    return create_account(username=username, email=invitation.email, password=password, email_verified=True)


def revoke_invitation(*, actor: Any, invitation: Invitation) -> Invitation:
    """Revoke a pending invitation; returns the fresh row. Invitations carry no version: revoking is one way, from
    pending only, decided under the row's lock (a second revoke, or a revoke after an accept, is a 409)."""
    policy.authorize(actor, "member.manage", invitation.org)
    with transaction.atomic():
        invitation = lock_for_update(invitation)
        if invitation.status != "pending":
            raise Conflict(f"This invitation is {invitation.status} already.", code=f"invitation_{invitation.status}")
        mark_revoked(invitation, actor=actor)
    return invitation
