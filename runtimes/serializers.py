"""API representations of runtimes (docs/API.md "Runtimes").

A runtime is shown as a row of an org's effective list (runtimes.selectors.RuntimeRow): where it comes from and its
live status beside its own fields. Enrollment tokens appear once, in the answer that created them; agent tokens
never appear (the admin shows their prefix only).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.schema import ORG_REF
from runtimes.models import Runtime, RuntimeInstance
from runtimes.selectors import RuntimeRow

# Where a runtime is declared, embedded as {"id", "name"} (null for a global runtime). Inline, with its id an
# ``OrgRef``: the field says "an organization" to generated clients.
DECLARING_ORG = {
    "type": ["object", "null"],
    "properties": {"id": ORG_REF, "name": {"type": "string"}},
    "required": ["id", "name"],
    "description": "Where it is declared; null for a global runtime.",
}

# The tenants a global runtime is offered to, as written: every tenant (now and later) or the listed ones.
TENANTS = {
    "oneOf": [
        {"type": "string", "enum": ["all"], "description": "Every tenant, present and future."},
        {
            "type": "array",
            "items": {"type": "string", "format": "uuid"},
            "description": "The ids of the tenants it is offered to (an empty list: none yet).",
        },
    ],
    "description": 'Global runtimes, superusers only: "all" or a list of tenant ids.',
}


@extend_schema_field(TENANTS)
class TenantsField(serializers.JSONField):
    """``"all"`` or a list of tenant ids: checked by runtimes.services (400 on ``tenants`` otherwise)."""


class RuntimeSerializer(serializers.Serializer):
    """A runtime seen from an org (``RuntimeRow``)."""

    id = serializers.UUIDField(source="runtime.pk")
    name = serializers.CharField(source="runtime.name")
    description = serializers.CharField(source="runtime.description")
    kind = serializers.ChoiceField(source="runtime.kind", choices=Runtime.Kind.choices)
    org = serializers.SerializerMethodField()
    inherited = serializers.BooleanField()
    locked = serializers.BooleanField()
    overrides = serializers.UUIDField(allow_null=True)
    labels = serializers.ListField(source="runtime.labels", child=serializers.CharField())
    region = serializers.CharField(source="runtime.region")
    sovereign = serializers.BooleanField(source="runtime.sovereign")
    paused = serializers.BooleanField(source="runtime.paused")
    allow_private_network = serializers.BooleanField(source="runtime.allow_private_network")
    is_platform_default = serializers.BooleanField(source="runtime.is_platform_default")
    status = serializers.ChoiceField(choices=Runtime.Status.choices)
    last_seen = serializers.DateTimeField(allow_null=True)
    version = serializers.CharField(help_text="The agent version last reported.")
    instances = serializers.IntegerField(help_text="Agent processes heard from within RUNTIME_OFFLINE_AFTER_S.")
    running = serializers.IntegerField(help_text="Runs leased to it now (claimed, running, stopping).")
    created_at = serializers.DateTimeField(source="runtime.created_at")
    updated_at = serializers.DateTimeField(source="runtime.updated_at")

    def get_fields(self) -> dict[str, serializers.Field]:
        # ``source`` cannot be a class attribute (it would shadow Field.source): added here, after ``org``.
        fields = dict(super().get_fields())
        ordered: dict[str, serializers.Field] = {}
        for name, field in fields.items():
            ordered[name] = field
            if name == "org":
                ordered["source"] = serializers.ChoiceField(
                    choices=["here", "inherited", "platform"], help_text="here, inherited (from org) or platform"
                )
        return ordered

    @extend_schema_field(DECLARING_ORG)
    def get_org(self, row: RuntimeRow) -> dict[str, Any] | None:
        org = row.runtime.org if row.runtime.org_id is not None else None
        return {"id": org.pk, "name": org.name} if org is not None else None


class LocalRuntimeWriteSerializer(serializers.Serializer):
    """POST /orgs/{id}/runtimes: a local runtime (the service checks names and labels)."""

    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    labels = serializers.ListField(child=serializers.CharField(max_length=50), required=False, max_length=20)
    region = serializers.CharField(max_length=50, required=False, allow_blank=True)
    sovereign = serializers.BooleanField(required=False)
    paused = serializers.BooleanField(required=False)
    locked = serializers.BooleanField(required=False)
    allow_private_network = serializers.BooleanField(required=False, help_text="Superusers only.")


class RuntimeUpdateSerializer(serializers.Serializer):
    """PATCH /runtimes/{id}: every field optional; the superuser-only ones refused (403) for anyone else."""

    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    labels = serializers.ListField(child=serializers.CharField(max_length=50), required=False, max_length=20)
    region = serializers.CharField(max_length=50, required=False, allow_blank=True)
    sovereign = serializers.BooleanField(required=False)
    paused = serializers.BooleanField(required=False)
    locked = serializers.BooleanField(required=False, help_text="Local runtimes only.")
    allow_private_network = serializers.BooleanField(required=False, help_text="Superusers only.")
    tenants = TenantsField(required=False)
    is_platform_default = serializers.BooleanField(required=False, help_text="Global runtimes, superusers only.")


class GlobalRuntimeWriteSerializer(serializers.Serializer):
    """POST /runtimes (superusers): a global runtime offered to every tenant ("all") or to the listed ones."""

    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(
        choices=Runtime.Kind.choices, required=False, default=Runtime.Kind.GLOBAL, help_text="global (only)."
    )

    def validate_kind(self, value: str) -> str:
        if value != Runtime.Kind.GLOBAL:
            raise serializers.ValidationError("POST /orgs/{id}/runtimes registers a local runtime.")
        return value

    tenants = TenantsField(required=False, help_text='"all" or a list of tenant ids (default: none yet).')
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    labels = serializers.ListField(child=serializers.CharField(max_length=50), required=False, max_length=20)
    region = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    sovereign = serializers.BooleanField(required=False, default=False)
    allow_private_network = serializers.BooleanField(required=False, default=False)
    is_platform_default = serializers.BooleanField(required=False, default=False)
    paused = serializers.BooleanField(required=False, default=False)


class EnrollmentSerializer(serializers.Serializer):
    """A one-time enrollment token (shown once: only its hash is kept) and the command starting an agent with it."""

    enrollment_token = serializers.CharField(source="raw")
    expires_at = serializers.DateTimeField(source="token.expires_at")
    command = serializers.CharField()


class CreatedRuntimeSerializer(RuntimeSerializer):
    """A runtime just created, with its first enrollment token and the agent command (shown once)."""

    enrollment_token = serializers.CharField()
    enrollment_token_expires_at = serializers.DateTimeField()
    command = serializers.CharField()


class RevokeSerializer(serializers.Serializer):
    revoked = serializers.IntegerField(help_text="Agent tokens revoked (their next call is 401).")


class InstanceSerializer(serializers.ModelSerializer):
    running = serializers.IntegerField(help_text="Runs leased to this process now.")
    online = serializers.BooleanField()

    class Meta:
        model = RuntimeInstance
        fields = ["id", "hostname", "version", "created_at", "last_heartbeat", "offline_at", "online", "running"]
        read_only_fields = fields


class TaskRuntimeField(serializers.UUIDField):
    """A task's ``runtime`` in a request body: a runtime id (or null: the default when it runs) → the Runtime. An id
    that names no runtime is the same field error as one the editor may not see; whether the task may use it is the
    service's decision (runtimes.placement.check_task_runtime, a 400 on ``runtime``)."""

    default_error_messages = {"missing": "No such runtime."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("help_text", "A runtime id (GET /orgs/{id}/runtimes), or null for the default.")
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        runtime_id = super().to_internal_value(data)
        runtime = Runtime.objects.filter(pk=runtime_id).select_related("org").first()
        if runtime is None:
            self.fail("missing")
        return runtime
