"""What every previewable API write shares: the ``dry_run`` query parameter and the preview's answer.

``POST /orgs/{id}/move?dry_run=true`` (and each other previewable write) answers 200 with the ``Impact`` of the change
instead of making it: the same checks and refusals as the real request (a refused change is refused by its preview
with the same status and code), nothing written.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from governance.impact.engine import Impact
from governance.impact.serializers import ImpactSerializer

DRY_RUN_PARAMETER = OpenApiParameter(
    "dry_run",
    bool,
    required=False,
    description=(
        "true: make nothing, answer 200 with what the change would do (an Impact: who gains and who loses which "
        "capability where, what the organizations below inherit, the runs it displaces), refused exactly as the "
        "change itself would be."
    ),
)


def flag(request: Request, name: str) -> bool:
    """A boolean query parameter (true/false/1/0/yes/no; absent = false); anything else is a 400 on its name."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return False
    try:
        return bool(serializers.BooleanField().to_internal_value(raw))
    except serializers.ValidationError as error:
        raise serializers.ValidationError({name: error.detail}) from error


def is_dry_run(request: Request) -> bool:
    """The ``dry_run`` query parameter: a 400 ``invalid`` unless it is a boolean."""
    return flag(request, "dry_run")


def impact_response(impact: Impact) -> Response:
    return Response(ImpactSerializer(impact.as_dict()).data)
