"""Runtimes: where integration tasks run (docs/DESIGN.md §6, docs/API.md "Runtimes" and "Runtime agents").

A ``Runtime`` is a declaration: a *local* runtime is declared at an org (by an Admin, ``runtime.manage``) and
inherited, hidden and locked like the other declarations; a *global* runtime belongs to no org (``org`` is NULL),
is created by a superuser and offered to every tenant (``all_tenants``) or to chosen ones (``tenants``).

Agents (``python -m runtimes.agent``) are processes serving one runtime. Each enrolls once with an
``EnrollmentToken`` (one hour, single use, hashed) and receives its own ``AgentToken`` (hashed, expiring, rotated
by the agent; revoking the runtime kills them all). Every agent process is a ``RuntimeInstance``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from resources.models import NamedDeclaration


class Runtime(NamedDeclaration):
    KIND = "runtime"

    class Kind(models.TextChoices):
        GLOBAL = "global", "global (run by the platform)"
        LOCAL = "local", "local (run on your own machines)"

    class Status(models.TextChoices):
        NEVER_CONNECTED = "never_connected", "never connected"
        ONLINE = "online", "online"
        OFFLINE = "offline", "offline"
        PAUSED = "paused", "paused"

    # A global runtime belongs to no org: the platform runs it, a superuser offers it to tenants. (Typed Any: the
    # declarations' base class types it as never empty; here it may be, and the code checks ``is_global``.)
    org: Any = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.LOCAL)
    labels = models.JSONField(default=list, blank=True)  # short texts, e.g. ["eu", "gpu"]
    region = models.CharField(max_length=50, blank=True)
    sovereign = models.BooleanField(
        default=False,
        help_text="Runs on it send Canopy only metadata (statuses, timings, counts), never payloads or log bodies.",
    )
    paused = models.BooleanField(default=False, help_text="A paused runtime claims no new runs.")
    allow_private_network = models.BooleanField(
        default=False,
        help_text="A global runtime refuses private, loopback and link-local addresses unless this is set.",
    )
    # Global runtimes: offered to every tenant, or to the chosen ones.
    all_tenants = models.BooleanField(default=False)
    tenants = models.ManyToManyField("orgs.Tenant", blank=True, related_name="offered_runtimes")
    is_platform_default = models.BooleanField(
        default=False, help_text="The global runtime that runs tasks when nothing else names one (at most one)."
    )
    # When an agent of it called last (any instance): the status without reading the instances.
    last_seen = models.DateTimeField(null=True, blank=True)
    agent_version = models.CharField(max_length=50, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "org", name="runtime_name_unique_in_org"),
            models.UniqueConstraint(
                Lower("name"), condition=models.Q(org__isnull=True), name="global_runtime_name_unique"
            ),
            models.UniqueConstraint(
                fields=["is_platform_default"],
                condition=models.Q(is_platform_default=True),
                name="one_platform_default_runtime",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="global", org__isnull=True) | models.Q(kind="local", org__isnull=False),
                name="runtime_global_has_no_org",
            ),
        ]

    @property
    def is_global(self) -> bool:
        return self.kind == self.Kind.GLOBAL


class RuntimeInstance(models.Model):
    """One agent process of a runtime (the agent picks its id and keeps it in its state directory)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    runtime = models.ForeignKey(Runtime, on_delete=models.CASCADE, related_name="instances")
    hostname = models.CharField(max_length=255, blank=True)
    version = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_heartbeat = models.DateTimeField(null=True, blank=True, db_index=True)
    offline_at = models.DateTimeField(null=True, blank=True)  # set by the reaper; cleared by the next heartbeat

    class Meta:
        ordering = ["-last_heartbeat"]

    def __str__(self) -> str:
        return f"{self.hostname or self.pk} ({self.runtime})"


class EnrollmentToken(models.Model):
    """A one-time token that lets one agent enroll (one hour, single use). Only its SHA-256 is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    runtime = models.ForeignKey(Runtime, on_delete=models.CASCADE, related_name="enrollment_tokens")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(RuntimeInstance, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"enrollment token of {self.runtime} ({self.created_at:%Y-%m-%d %H:%M})"


class AgentToken(models.Model):
    """An agent's own bearer token. Only its SHA-256 is stored; ``prefix`` (its first characters) names it in the
    admin. A rotated token keeps working until ``expires_at`` was moved to 60 s after the rotation."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    runtime = models.ForeignKey(Runtime, on_delete=models.CASCADE, related_name="agent_tokens")
    instance = models.ForeignKey(RuntimeInstance, on_delete=models.CASCADE, related_name="tokens")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=12, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.runtime})"
