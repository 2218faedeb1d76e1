"""Single sign-on per tenant: the tenant's identity provider, its claimed e-mail domains, the identities it asserted
and the break-glass codes that open an enforced tenant when the IdP is down.

One IdP per tenant, many tenants at once: the configuration is data, read at each sign-in (no settings, no restart).
An identity is keyed by (tenant, issuer, subject): the same subject at two IdPs is two identities, and an e-mail
address never links an account across tenants.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from config.concurrency import Versioned


class TenantSSO(Versioned):
    """The tenant's OpenID Connect provider and what its sign-ins give."""

    class Protocol(models.TextChoices):
        OIDC = "oidc", "OpenID Connect"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.OneToOneField("orgs.Tenant", on_delete=models.CASCADE, related_name="sso")
    protocol = models.CharField(max_length=10, choices=Protocol.choices, default=Protocol.OIDC)
    issuer = models.URLField(max_length=500, help_text="The IdP's issuer URL (its discovery document lives below it).")
    client_id = models.CharField(max_length=255)
    # MultiFernet token (resources.crypto) of the client secret: write-only, never shown again.
    client_secret_ciphertext = models.TextField(blank=True, editable=False)
    scopes = models.CharField(max_length=500, default="openid email profile")
    groups_claim = models.CharField(
        max_length=100, blank=True, default="groups", help_text="The ID token or userinfo claim listing the groups."
    )
    default_role = models.ForeignKey(
        "access.Role", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="The role a new member gets when no group maps (empty: membership of the tenant only).",
    )  # fmt: skip
    default_org = models.ForeignKey(
        "orgs.Organization", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="Where the default role is granted (empty: the root organization).",
    )  # fmt: skip
    remove_unmapped_roles = models.BooleanField(
        default=False,
        help_text="Take away roles that an earlier sign-in's groups gave and this one's do not. Off: group sync only "
        "adds; and a sign-in without the groups claim never removes anything.",
    )
    enforced = models.BooleanField(
        default=False, help_text="Members whose address is in a verified domain reach this tenant only through SSO."
    )
    changed_at = models.DateTimeField(help_text="Last change of anything a sign-in depends on.")
    tested_at = models.DateTimeField(null=True, blank=True, editable=False)
    tested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "single sign-on configuration"

    def __str__(self) -> str:
        return f"{self.tenant} → {self.issuer}"

    @property
    def tested_since_change(self) -> bool:
        return self.tested_at is not None and self.tested_at >= self.changed_at


class GroupRole(models.Model):
    """An IdP group that gives a role at an org of the tenant (the highest matching role wins per org)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sso = models.ForeignKey(TenantSSO, on_delete=models.CASCADE, related_name="group_roles")
    group = models.CharField(max_length=200)
    role = models.ForeignKey("access.Role", on_delete=models.PROTECT, related_name="+")
    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["group"]
        constraints = [models.UniqueConstraint(fields=["sso", "group", "org"], name="group_role_once_per_org")]

    def __str__(self) -> str:
        return f"{self.group} → {self.role} at {self.org}"


class Domain(models.Model):
    """An e-mail domain a tenant claims. Verified by the DNS TXT record ``canopy-verification=<txt_token>`` at the
    domain, or by a superuser; a domain is verified for one tenant at most."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("orgs.Tenant", on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253)
    txt_token = models.CharField(max_length=64, editable=False)
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(Lower("domain"), "tenant", name="domain_once_per_tenant"),
            models.UniqueConstraint(
                Lower("domain"), condition=Q(verified_at__isnull=False), name="domain_verified_for_one_tenant"
            ),
        ]

    def __str__(self) -> str:
        return self.domain

    @property
    def verified(self) -> bool:
        return self.verified_at is not None

    @property
    def txt_record(self) -> str:
        return f"canopy-verification={self.txt_token}"


class ExternalIdentity(models.Model):
    """A person as the tenant's IdP asserted them: (tenant, issuer, subject) → one Canopy account."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities")
    tenant = models.ForeignKey("orgs.Tenant", on_delete=models.CASCADE, related_name="external_identities")
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    email = models.EmailField(blank=True)
    groups = models.JSONField(default=list, blank=True)  # as of the last sign-in
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "external identities"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "issuer", "subject"], name="identity_once_per_idp_subject")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class RecoveryCode(models.Model):
    """A single-use break-glass code: a tenant administrator signs in with it (and their password) when the IdP is
    down. Only its SHA-256 is stored; each use is audited."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("orgs.Tenant", on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"recovery code of {self.tenant}"


class SyncedGrant(models.Model):
    """A role at an org that group sync gave (oidc-flow: identity.signin), remembered so that a later sync takes back
    what it gave and nothing else: a grant an administrator made or changed by hand is theirs, never removed.

    ``role`` is the role sync set; when the grant's role differs now, an administrator changed it and sync leaves it
    alone. ``previous_role`` is the lower role the member held by hand before sync raised it: restored, not deleted,
    when the group goes away."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    identity = models.ForeignKey(ExternalIdentity, on_delete=models.CASCADE, related_name="synced_grants")
    grant = models.OneToOneField("access.OrgUserGrant", on_delete=models.CASCADE, related_name="+")
    role = models.ForeignKey("access.Role", on_delete=models.CASCADE, related_name="+")
    previous_role = models.ForeignKey("access.Role", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.role} from {self.identity}"
