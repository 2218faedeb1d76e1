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


class RollupSnapshot(models.Model):
    """A roll-up kept for its readers (governance/rollup/snapshots.py): the roll-up of ``org`` over ``period`` as an
    *audience* sees it. The audience is a digest of what its viewers may see (the SQL of each ``policy.visible``
    the roll-up asks): two viewers with the same digest see the same objects, so one row serves them both (every
    tenant administrator of a tenant, say). ``computed_for`` and ``auth_context`` say whom, authenticated how, the
    refresher computes it again as. ``tree_id``/``lft``/``rght`` are the org's place when it was computed: a move or
    a create below changes them, and the snapshot no longer serves. ``read_at`` says when it last served: the
    refresher keeps the snapshots read lately fresh and drops the others."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("orgs.Tenant", on_delete=models.CASCADE, related_name="+")
    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=8)
    audience = models.CharField(max_length=64, help_text="Digest of what the viewers it serves may see.")
    computed_for = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    auth_context = models.JSONField(default=dict, blank=True)
    tree_id = models.PositiveIntegerField()
    lft = models.PositiveIntegerField()
    rght = models.PositiveIntegerField()
    computed_at = models.DateTimeField()
    compute_ms = models.PositiveIntegerField(default=0, help_text="How long computing it took.")
    read_at = models.DateTimeField()
    payload = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "period", "audience"], name="rollup_snapshot_once"),
        ]
        indexes = [models.Index(fields=["read_at"], name="rollup_snapshot_read")]

    def __str__(self) -> str:
        return f"roll-up of {self.org_id} over {self.period} as of {self.computed_at:%Y-%m-%d %H:%M:%S}"
