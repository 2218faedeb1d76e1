"""Pending invitations stay backed by the rights of the person who sent them.

An invitation confers a role when it is accepted, possibly days after it was sent: by then its inviter may have
lost the right to invite here, or to confer that role (a grant revoked or changed, a team left, a custom role
edited, an inheritance cut, a removal from the tenant, a deactivated account). ``backing_problem`` says why an
invitation is no longer backed; accepting checks it again (access.services.invitations), and every write that can
take rights away calls ``revoke_unbacked_invitations`` so that the invitation shows as revoked at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q
from django.utils import timezone

from access import audit, fences, policy
from access.models import Invitation


def backing_problem(invitation: Invitation) -> str | None:
    """Why ``invitation``'s inviter no longer backs it (a sentence for the invitee), or None when it is backed.
    ``invitation`` is read with its inviter, org and role; the inviter's rights are read afresh."""
    inviter = invitation.invited_by
    if inviter is None or not inviter.is_active:
        return "The person who sent this invitation can no longer invite anyone: ask for a new invitation."
    org = invitation.org
    standing(inviter, org.tenant_id)
    if not policy.can(inviter, "member.manage", org):
        return f"The person who sent this invitation can no longer invite people to {org.name}: ask for a new one."
    if policy.delegation_gaps(inviter, invitation.role.capabilities, org):
        return (
            f"The person who sent this invitation can no longer give the role {invitation.role.name} in {org.name}: "
            "ask for a new invitation."
        )
    return None


def standing(user: Any, tenant_id: Any) -> Any:
    """Judge ``user`` (loaded from the database, not the request's user) by their standing rights in ``tenant_id``:
    the roles alone, without the authentication fences of access/fences.py. Those close regions to a *request*
    whose sign-in does not satisfy them; an inviter who is not making this request passed them when they sent the
    invitation, and an invitation into a subtree requiring 2FA (or a tenant enforcing SSO) must not lose its backing
    for that. The invitee is still fenced as their own requests deserve. The user's rights are read afresh."""
    fences.attach(user, fences.AuthContext("standing", frozenset({tenant_id}), True))
    policy.forget(user)
    return user


def pending_invitations(tenant_id: Any) -> Any:
    return Invitation.objects.filter(
        org__tenant_id=tenant_id, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).select_related("org", "role", "invited_by")


def mark_revoked(invitation: Invitation, *, actor: Any, reason: str | None = None) -> None:
    """Revoke ``invitation`` (read with its org), audited, with the reason when it was not an administrator's
    choice. Inside the caller's transaction."""
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit.record(
        actor=actor,
        action="invitation.revoke",
        tenant=invitation.org.tenant_id,
        org=invitation.org,
        target=invitation,
        changes={"email": invitation.email} | ({"reason": reason} if reason else {}),
    )


def revoke_unbacked_invitations(*, actor: Any, tenant_id: Any, inviters: Iterable[Any] | None = None) -> int:
    """Revoke the tenant's pending invitations (those of ``inviters`` only, when given) that their inviter no
    longer backs. Called inside the transaction of the write that took rights away; returns how many."""
    pending = pending_invitations(tenant_id)
    if inviters is not None:
        ids = [getattr(user, "pk", user) for user in inviters]
        if not ids:
            return 0
        pending = pending.filter(Q(invited_by_id__in=ids))
    revoked = 0
    for invitation in pending:
        reason = backing_problem(invitation)
        if reason is not None:
            mark_revoked(invitation, actor=actor, reason=reason)
            revoked += 1
    return revoked
