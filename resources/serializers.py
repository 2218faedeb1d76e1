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
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from access import policy
from config import kinds
from orgs.api import OrgRefSerializer
from resources import inheritance
from resources.models import Component, Credential, EnvVar, LookupTable


class SourceFields(serializers.Serializer):
    """Where an item of an effective list comes from."""

    org = serializers.SerializerMethodField()
    inherited = serializers.SerializerMethodField()
    locked = serializers.BooleanField(read_only=True)
    overrides = serializers.SerializerMethodField()

    @extend_schema(responses=OrgRefSerializer)
    def get_org(self, item: Any) -> dict[str, Any]:
        return {"id": item.org_id, "name": item.org.name}

    def _effective(self, item: Any) -> inheritance.Effective | None:
        return self.context.get("effective", {}).get(item.pk)

    def get_inherited(self, item: Any) -> bool:
        effective = self._effective(item)
        return bool(effective and effective.inherited)

    @extend_schema(responses=OpenApiTypes.UUID)
    def get_overrides(self, item: Any) -> Any:
        effective = self._effective(item)
        return effective.overrides if effective else None


# -- credentials ---------------------------------------------------------------------------------------------------


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
        declared["fields"] = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
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


# -- lookup tables -------------------------------------------------------------------------------------------------


class LookupRowSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=255, trim_whitespace=False)
    value = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=4096)


class LookupTableWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    rows = serializers.ListField(child=serializers.DictField(), required=False)
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

    @extend_schema(responses=LookupRowSerializer(many=True))
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

    def get_can_publish(self, component: Component) -> bool:
        request = self.context.get("request")
        return bool(request and policy.can(request.user, policy.COMPONENT_PUSH, component))
