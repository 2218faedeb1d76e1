"""The ``Impact`` of the API: what a previewed change would do (governance/impact/engine.py ``Impact.as_dict``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

_SCALARS: list[dict[str, Any]] = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]
#: A line's details: named values, each a scalar, an object (a user, an org) or a list of them (orgs, capabilities).
IMPACT_DETAILS = {
    "type": "object",
    "additionalProperties": {
        "oneOf": [*_SCALARS, {"type": "object"}, {"type": "array", "items": {"oneOf": [*_SCALARS, {"type": "object"}]}}]
    },
}


@extend_schema_field(IMPACT_DETAILS)
class ImpactDetailsField(serializers.DictField):
    pass


class ImpactEntrySerializer(serializers.Serializer):
    kind = serializers.CharField(
        help_text="What the line is: gains, loses, changes (capabilities), inherits, stops_inheriting, shadowed, "
        "displaced, unplaceable … (each section says which it uses)."
    )
    text = serializers.CharField(help_text="The line in words, as the console shows it.")
    details = ImpactDetailsField(
        help_text="The line's machine-readable form: for a capability line user, gained, lost, orgs, org_count, "
        "project; for other sections the objects they name (each with id and name)."
    )


class ImpactSectionSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="capabilities, declarations, settings, runs …")
    title = serializers.CharField()
    note = serializers.CharField(
        allow_blank=True, help_text="Where the part looked, when it could not look everywhere."
    )
    entries = ImpactEntrySerializer(many=True)
    left_out = serializers.IntegerField(
        help_text="Organizations the change makes a difference to that the caller cannot see: their lines are not "
        "listed (0 when every line is shown)."
    )


class ImpactSerializer(serializers.Serializer):
    change = serializers.CharField(help_text='The change in words: "Move Sales under Europe".')
    empty = serializers.BooleanField(help_text="True when the change makes no difference to anyone.")
    sections = ImpactSectionSerializer(many=True)
