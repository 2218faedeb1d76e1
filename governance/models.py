"""What governance keeps: the attestations of the access review (issue #12 §3).

An attestation is a reviewer's statement that a grant is right as it is, at a moment. It names the grant by kind and
id rather than by a foreign key: a grant revoked later keeps its history (who attested it, when), and one table
serves the four grant tables and the tenant administrators' memberships. Each attestation is also an audit event
(``grant.attest``), recorded in the same transaction by governance.review.service.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class GrantKind(models.TextChoices):
    """The kinds of rows an access review lists and acts on."""

    ORG_USER = "org_user", "Role of a user on an organization"
    ORG_TEAM = "org_team", "Role of a team on an organization"
    PROJECT_USER = "project_user", "Role of a user on a project"
    PROJECT_TEAM = "project_team", "Role of a team on a project"
    TENANT_ADMIN = "tenant_admin", "Tenant administrator"


class Attestation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("orgs.Tenant", on_delete=models.CASCADE, related_name="attestations")
    # Where the grant applies (a project grant's org); null once that org is gone.
    org = models.ForeignKey(
        "orgs.Organization", on_delete=models.SET_NULL, null=True, blank=True, related_name="attestations"
    )
    grant_kind = models.CharField(max_length=20, choices=GrantKind.choices)
    grant_id = models.CharField(max_length=64, help_text="The grant's id (a tenant administrator's: the user's id).")
    # What the grant was when it was attested, kept when the grant or the holder is gone.
    holder_name = models.CharField(max_length=200)
    role_key = models.CharField(max_length=50)
    attested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    attested_by_name = models.CharField(max_length=150)
    attested_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True, max_length=1000)

    class Meta:
        ordering = ["-attested_at"]
        indexes = [models.Index(fields=["tenant", "grant_kind", "grant_id", "-attested_at"], name="attestation_grant")]

    def __str__(self) -> str:
        return f"{self.holder_name} as {self.role_key}, attested by {self.attested_by_name} {self.attested_at:%Y-%m-%d}"
