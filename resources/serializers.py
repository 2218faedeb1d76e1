"""API serializers of the resources kinds: only each kind's own fields, registered with config.kinds.api_serializers
(read representation, create body, PATCH body), which the generic API views of resources/api.py serve.

A read serializer mixes in ``SourceFields`` (where an item of an effective list comes from). Optional class
attributes a read serializer may set for the generic views: ``list_queryset`` (a static method narrowing or
annotating the effective list's queryset), ``list_context`` (extra serializer context in lists), ``detail_related``
(relations the detail loads with the object). Secrets are write-only: no read serializer names one.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Count, QuerySet
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from access import policy
from config import kinds
from config.schema import ORG_REF
from resources import inheritance
from resources.models import Component, Credential, EnvVar, LookupTable, RunLogLine
from resources.services.tasks import STEP_TYPES

# An organization named with its name (where a declaration or a setting comes from): embedded, its id an OrgRef.
ORG_SUMMARY: dict[str, Any] = {
    "type": "object",
    "description": "The organization it is declared at: its id and name.",
    "properties": {"id": ORG_REF, "name": {"type": "string"}},
    "required": ["id", "name"],
}


def org_summary(org: Any) -> dict[str, Any]:
    return {"id": org.pk, "name": org.name}


class SourceFields(serializers.Serializer):
    """Where an item of an effective list comes from."""

    org = serializers.SerializerMethodField()
    inherited = serializers.SerializerMethodField(help_text="Declared at an org above the one listed.")
    locked = serializers.BooleanField(
        read_only=True, help_text="Orgs below may neither override nor hide it (declared locked at its org)."
    )
    overrides = serializers.SerializerMethodField(
        help_text="The id of the declaration of the same name above that this one overrides, or null."
    )

    @extend_schema_field(ORG_SUMMARY)
    def get_org(self, item: Any) -> dict[str, Any]:
        return org_summary(item.org)

    def _effective(self, item: Any) -> inheritance.Effective | None:
        return self.context.get("effective", {}).get(item.pk)

    @extend_schema_field(serializers.BooleanField())
    def get_inherited(self, item: Any) -> bool:
        effective = self._effective(item)
        return bool(effective and effective.inherited)

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_overrides(self, item: Any) -> Any:
        effective = self._effective(item)
        return effective.overrides if effective else None


# -- task steps and run results ------------------------------------------------------------------------------------

# The ``Step`` oneOf of the OpenAPI schema: one component per step type (HttpStep, LookupStep, …), discriminated by
# ``type``, built from the serializers resources.services.tasks.clean_steps validates with.
STEP = PolymorphicProxySerializer(
    component_name="Step",
    serializers={step_type: serializer for step_type, serializer in STEP_TYPES.items()},
    resource_type_field_name="type",
    many=True,
)


@extend_schema_field(STEP)
class StepsField(serializers.JSONField):
    """A task's (or a run's snapshot of its) steps: a list of ``Step``. As a body field it refuses null; the steps
    themselves are checked by resources.services.tasks.clean_steps (the step serializers)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", 'The steps in order, e.g. [{"type": "log", "message": "hello"}].')
        super().__init__(**kwargs)


class StepResultSerializer(serializers.Serializer):
    """One step's outcome as the runtime reported it."""

    index = serializers.IntegerField(help_text="The step's position, from 0.")
    status = serializers.ChoiceField(choices=["succeeded", "failed", "skipped", "stopped"])
    ms = serializers.IntegerField(allow_null=True, help_text="How long it took, in milliseconds.")
    error = serializers.CharField(required=False, help_text="Why it failed (never for a sovereign run).")


class LogLineSerializer(serializers.ModelSerializer):
    level = serializers.ChoiceField(choices=RunLogLine.Level.choices, read_only=True)

    class Meta:
        model = RunLogLine
        fields = ["seq", "at", "level", "message"]
        read_only_fields = fields


# -- credentials ---------------------------------------------------------------------------------------------------


FIELDS_HELP = "The kind's non-secret fields: field names to text values (shown to viewers)."


class CredentialWriteSerializer(serializers.Serializer):
    """The body field ``fields`` cannot be a class attribute (it would shadow ``Serializer.fields``, the bound
    fields): ``get_fields`` adds it, in its place."""

    ORDER = ("name", "description", "kind", "source", "fields", "secret", "locked")

    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=Credential.Kind.choices)
    secret = serializers.DictField(
        child=serializers.CharField(allow_blank=True, allow_null=True, trim_whitespace=False),
        required=False,
        write_only=True,
        help_text="Secret fields: write-only, stored encrypted, never returned. A null value removes a field.",
    )
    locked = serializers.BooleanField(required=False, default=False)

    SOURCE_HELP = (
        "Where the secret lives. `runtime`: on the runtime that runs the task (its environment or secrets file); "
        "Canopy then accepts no `secret` (400) and stores none. Changing to `runtime` erases a stored secret."
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        declared = dict(super().get_fields())
        declared["fields"] = serializers.DictField(
            child=serializers.CharField(allow_blank=True), required=False, help_text=FIELDS_HELP
        )
        # ``source`` is Field's own attribute too: added here, like ``fields``.
        declared["source"] = self.source_field()
        return {name: declared[name] for name in self.ORDER}

    def source_field(self) -> serializers.Field:
        return serializers.ChoiceField(
            choices=Credential.Source.choices, required=False, default=Credential.Source.CANOPY,
            help_text=self.SOURCE_HELP,
        )  # fmt: skip


class CredentialUpdateSerializer(CredentialWriteSerializer):
    name = serializers.CharField(max_length=100, required=False)
    kind = serializers.ChoiceField(choices=Credential.Kind.choices, required=False)
    locked = serializers.BooleanField(required=False)

    def source_field(self) -> serializers.Field:
        return serializers.ChoiceField(choices=Credential.Source.choices, required=False, help_text=self.SOURCE_HELP)


@kinds.api_serializers(Credential, write=CredentialWriteSerializer, update=CredentialUpdateSerializer)
class CredentialSerializer(SourceFields, serializers.ModelSerializer):
    secret_fields = serializers.ListField(source="secret_names", child=serializers.CharField(), read_only=True)

    class Meta:
        model = Credential
        fields = ["id", "name", "description", "kind", "source", "fields", "secret_fields", "org", "inherited",
                  "locked", "overrides", "created_at", "updated_at"]  # fmt: skip
        read_only_fields = fields

    def get_fields(self) -> dict[str, serializers.Field]:
        declared = dict(super().get_fields())
        # ``fields`` cannot be a class attribute (see CredentialWriteSerializer): the model's JSON, typed here.
        declared["fields"] = serializers.DictField(child=serializers.CharField(), read_only=True, help_text=FIELDS_HELP)
        return declared


# -- lookup tables -------------------------------------------------------------------------------------------------


class LookupRowSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=255, trim_whitespace=False)
    value = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=4096)


@extend_schema_field(LookupRowSerializer(many=True))
class LookupRowsField(serializers.ListField):
    """The rows of a body: each checked by the service (resources.services.resources: "Row 3: …" errors)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=serializers.DictField(), **kwargs)


class LookupTableWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    rows = LookupRowsField(required=False, help_text="Replace the rows (keys unique).")
    locked = serializers.BooleanField(required=False, default=False)


class LookupTableUpdateSerializer(LookupTableWriteSerializer):
    name = serializers.CharField(max_length=100, required=False)
    locked = serializers.BooleanField(required=False)


@kinds.api_serializers(LookupTable, write=LookupTableWriteSerializer, update=LookupTableUpdateSerializer)
class LookupTableSerializer(SourceFields, serializers.ModelSerializer):
    rows = serializers.SerializerMethodField()
    row_count = serializers.SerializerMethodField()

    class Meta:
        model = LookupTable
        fields = ["id", "name", "description", "rows", "row_count", "org", "inherited", "locked", "overrides",
                  "created_at", "updated_at"]  # fmt: skip
        read_only_fields = fields

    # The generic list (resources.api.DeclaredListView): the row count in the list's one query, rows on the detail.
    list_context: ClassVar[dict[str, Any]] = {"with_rows": False}

    @staticmethod
    def list_queryset(queryset: QuerySet) -> QuerySet:
        return queryset.annotate(row_total=Count("rows"))

    @extend_schema_field(LookupRowSerializer(many=True, allow_null=True, help_text="null in lists (see row_count)."))
    def get_rows(self, table: LookupTable) -> list[dict[str, str]] | None:
        if not self.context.get("with_rows", True):
            return None  # lists give the count; the detail gives the rows
        return [{"key": k, "value": v} for k, v in table.rows.values_list("key", "value")]

    def get_row_count(self, table: LookupTable) -> int:
        counted = getattr(table, "row_total", None)
        return counted if counted is not None else table.rows.count()


# -- environment variables -----------------------------------------------------------------------------------------


class EnvVarWriteSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=100)
    value = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=10_000, required=False)
    secret = serializers.BooleanField(required=False, default=False)
    locked = serializers.BooleanField(required=False, default=False)


class EnvVarUpdateSerializer(EnvVarWriteSerializer):
    key = serializers.CharField(max_length=100, required=False)
    secret = serializers.BooleanField(required=False)
    locked = serializers.BooleanField(required=False)


@kinds.api_serializers(EnvVar, write=EnvVarWriteSerializer, update=EnvVarUpdateSerializer)
class EnvVarSerializer(SourceFields, serializers.ModelSerializer):
    # Not get_value: that is the method a serializer reads its input with when nested in another.
    value = serializers.SerializerMethodField(
        method_name="shown_value", help_text="null for a secret variable: its value is write-only."
    )
    component = serializers.UUIDField(source="component_id", read_only=True, allow_null=True)

    class Meta:
        model = EnvVar
        fields = ["id", "key", "value", "secret", "component", "org", "inherited", "locked", "overrides",
                  "created_at", "updated_at"]  # fmt: skip
        read_only_fields = fields

    detail_related: ClassVar[tuple[str, ...]] = ("component__org",)  # a component's variable is decided on its org

    def shown_value(self, variable: EnvVar) -> str | None:
        return None if variable.secret else variable.value


# -- private components --------------------------------------------------------------------------------------------


class ComponentWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    repository_url = serializers.CharField(max_length=500, required=False, allow_blank=True)
    locked = serializers.BooleanField(required=False, default=False)


class ComponentUpdateSerializer(ComponentWriteSerializer):
    name = serializers.CharField(max_length=100, required=False)
    locked = serializers.BooleanField(required=False)


@kinds.api_serializers(Component, write=ComponentWriteSerializer, update=ComponentUpdateSerializer)
class ComponentSerializer(SourceFields, serializers.ModelSerializer):
    repository_url = serializers.CharField(read_only=True, help_text="Empty when none was given.")
    can_publish = serializers.SerializerMethodField()

    class Meta:
        model = Component
        fields = ["id", "name", "description", "repository_url", "org", "inherited", "locked", "overrides",
                  "can_publish", "created_at", "updated_at"]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.BooleanField(help_text="Whether you may push versions (development team)."))
    def get_can_publish(self, component: Component) -> bool:
        request = self.context.get("request")
        return bool(request and policy.can(request.user, policy.COMPONENT_PUSH, component))
