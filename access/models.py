"""Users, tenant membership, API tokens and the audit log.

Only access.policy reads these to decide anything; other modules ask the policy.
"""

import hashlib
import secrets
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase as GuardianGroupPermission
from guardian.models import UserObjectPermissionBase as GuardianUserPermission

from access.roles import role_capabilities
from config.concurrency import Versioned


class CanopyUserManager(UserManager):
    def get_by_natural_key(self, username: str | None) -> Any:
        # Usernames are unique whatever their case (a database constraint): "Alice" logs in as alice.
        return self.get(username__iexact=username)


class User(AbstractUser):
    """An account. It belongs to no tenant: its password, e-mail, active flag, staff bits, sessions and tokens are
    changed by the account itself or a superuser, never by a tenant administrator (docs/DESIGN.md §4.7)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField("email address")
    # Set when the owner proved they receive mail at ``email`` (a link, or an invitation sent there); cleared when
    # the address changes. Only a verified address counts: it binds invitations and receives password resets, and
    # it belongs to one account only.
    email_verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The landing page opens the organization used last; stored on the user so it follows them across devices.
    last_org = models.ForeignKey(
        "orgs.Organization", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The last signed-in request or API token use (access/last_seen.py writes it at most every few minutes): the
    # access review's "last seen" and its report of members without activity.
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = CanopyUserManager()

    class Meta:
        ordering = ["username"]
        constraints = [
            models.UniqueConstraint(Lower("username"), name="user_username_unique_any_case"),
            models.UniqueConstraint(
                Lower("email"), condition=models.Q(email_verified_at__isnull=False), name="user_verified_email_once"
            ),
        ]

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A new password or a deactivation ends every API token of the account, in the same transaction.
        (Sessions end by themselves: Django checks the password hash and the active flag on every request.)"""
        ends_tokens = not self._state.adding and (self._password is not None or not self.is_active)
        super().save(*args, **kwargs)
        if ends_tokens:
            AccessToken.objects.filter(user=self, revoked_at__isnull=True).update(revoked_at=timezone.now())


class TenantMembership(Versioned):
    """A user belongs to a tenant; ``is_admin`` makes them a tenant administrator."""

    tenant = models.ForeignKey("orgs.Tenant", on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tenant_memberships")
    is_admin = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="tenant_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant}{' (admin)' if self.is_admin else ''}"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class AccessTokenQuerySet(models.QuerySet):
    def usable(self) -> "AccessTokenQuerySet":
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class AccessToken(models.Model):
    """A personal access token. Only its SHA-256 is stored: the raw value is shown once, at creation."""

    PREFIX = "cnp_"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    # The first characters of the raw token, so that an owner can tell their tokens apart.
    hint = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # How the token was issued (access/fences.py): the tenants whose single sign-on authorized it (a token minted in
    # an SSO session, or authorized for SSO later) and whether a second factor was checked when it was issued.
    sso_tenants = models.JSONField(default=list, blank=True)
    otp_verified = models.BooleanField(default=False)

    objects = AccessTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.hint}… ({self.user})"

    @classmethod
    def generate(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Audit events are append-only.")

    def delete(self):
        raise TypeError("Audit events are append-only.")


class AuditEvent(models.Model):
    """One write, recorded by the service that made it, inside the same transaction. Append-only.

    Never holds a secret: services pass only the changed non-secret fields.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    tenant = models.ForeignKey("orgs.Tenant", on_delete=models.CASCADE, related_name="audit_events")
    org = models.ForeignKey(
        "orgs.Organization", on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)  # kept when the user is gone
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_name = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="audit_tenant_time"),
            # "changed by whom, when" of a stale edit (config.concurrency.last_change)
            models.Index(fields=["target_type", "target_id", "-created_at"], name="audit_target_time"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name or 'system'} {self.action} {self.target_name}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise TypeError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Audit events are append-only.")


# ----------------------------------------------------------------------------------------------------------------
# Roles, teams and grants (the access core). Only access.policy reads these to decide.


class Role(Versioned):
    """A named set of capabilities. Built-in roles (admin, integrator, guest) have no tenant and take their
    capabilities from access.roles, the one table in code; custom roles are defined at an organization, usable in
    its subtree, and store their capabilities here. Grants point at a role, so editing a role rewrites no grant."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    key = models.SlugField(max_length=50)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    tenant = models.ForeignKey("orgs.Tenant", on_delete=models.CASCADE, null=True, blank=True, related_name="roles")
    org = models.ForeignKey(
        "orgs.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="custom_roles"
    )
    custom_capabilities = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["key"], condition=models.Q(tenant__isnull=True), name="role_builtin_key"),
            models.UniqueConstraint(fields=["tenant", "key"], name="role_key_unique_in_tenant"),
            models.CheckConstraint(
                condition=models.Q(tenant__isnull=True, org__isnull=True)
                | models.Q(tenant__isnull=False, org__isnull=False),
                name="role_builtin_or_defined_at_an_org",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_builtin(self) -> bool:
        return self.tenant_id is None

    @property
    def capabilities(self) -> frozenset[str]:
        return role_capabilities(self.key, self.is_builtin, self.custom_capabilities)

    @property
    def sorted_capabilities(self) -> list[str]:
        return sorted(self.capabilities)


class Team(Versioned):
    """An org-level group of users that holds grants like a user does. Membership is a django.contrib.auth Group,
    so guardian's group object-permission tables store team grants."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    group = models.OneToOneField("auth.Group", on_delete=models.CASCADE, related_name="team")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(models.functions.Lower("name"), "org", name="team_name_unique_in_org"),
        ]

    def __str__(self) -> str:
        return self.name


class GrantFields(Versioned):
    """What every grant row carries beside guardian's (holder, permission, object)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="+")
    expires_at = models.DateTimeField(null=True, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        holder = getattr(self, "user", None) or getattr(self, "group", None)
        return f"{holder} is {self.role} on {self.content_object}"


class ShareFields(models.Model):
    """What every per-object share row carries beside guardian's (holder, permission, object)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class UserShare(GuardianUserPermission, ShareFields):
    """Base of an object shared with one user (a guardian direct-FK row): the owning app adds ``content_object``.
    Only access.policy reads these to decide."""

    class Meta(GuardianUserPermission.Meta):
        abstract = True


class TeamShare(GuardianGroupPermission, ShareFields):
    """Base of an object shared with a team (through the team's group)."""

    class Meta(GuardianGroupPermission.Meta):
        abstract = True


class OrgUserGrant(GuardianUserPermission, GrantFields):
    """A user holds ``role`` on an organization (and, by inheritance, below it). One row per (user, org):
    guardian's unique (user, permission, object) with the single ``orgs.hold_role`` permission."""

    content_object = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="user_grants")

    class Meta(GuardianUserPermission.Meta):
        pass


class OrgTeamGrant(GuardianGroupPermission, GrantFields):
    content_object = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="team_grants")

    class Meta(GuardianGroupPermission.Meta):
        pass


class ProjectUserGrant(GuardianUserPermission, GrantFields):
    """A role on one project only: gives that project (and the names on its breadcrumb path), nothing else."""

    content_object = models.ForeignKey("orgs.Project", on_delete=models.CASCADE, related_name="user_grants")

    class Meta(GuardianUserPermission.Meta):
        pass


class ProjectTeamGrant(GuardianGroupPermission, GrantFields):
    content_object = models.ForeignKey("orgs.Project", on_delete=models.CASCADE, related_name="team_grants")

    class Meta(GuardianGroupPermission.Meta):
        pass


class Invitation(models.Model):
    """An e-mailed invitation to join an organization with a role. Only the token's SHA-256 is stored."""

    DEFAULT_LIFETIME_DAYS = 7
    MAX_LIFETIME_DAYS = 30

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} → {self.org} ({self.role})"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"
