"""API: ``GET /api/v1/orgs/{id}/rollup?period=24h|7d|30d`` (getOrgRollup), the dashboard's figures as JSON.

404 when the org is missing, deleted, in another tenant or invisible to the caller; 400 ``invalid`` for a period
that is none of 24h, 7d, 30d. Like the page, it counts only what the caller may see, cached for 60 s
(``computed_at`` says when the figures were taken)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.schema import OrgRefField
from governance.rollup.service import (
    EXPIRING_DAYS,
    PERIODS,
    RUN_STATUSES,
    BadPeriod,
    Counts,
    Rollup,
    parse_period,
    rollup,
)
from orgs.api import get_org


class RunsByStatusSerializer(serializers.Serializer):
    """Runs created in the period, by status."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {status: serializers.IntegerField() for status in RUN_STATUSES}


class RollupCountsSerializer(serializers.Serializer):
    organizations = serializers.IntegerField(source="orgs", help_text="Organizations you may open.")
    projects = serializers.IntegerField(help_text="Projects you may see.")
    tasks = serializers.IntegerField(help_text="Integration tasks you may see (shared ones included).")
    failing_tasks = serializers.IntegerField(
        help_text="Of those, the tasks whose last finished run failed or was lost."
    )
    runs = RunsByStatusSerializer(help_text="Runs of those tasks created in the period, by status.")
    runs_total = serializers.IntegerField()
    failure_rate = serializers.FloatField(
        allow_null=True, help_text="Failed or lost runs over settled ones (succeeded, failed, lost); null without any."
    )
    runtimes_online = serializers.IntegerField(help_text="Local runtimes declared here whose agents called lately.")
    runtimes_offline = serializers.IntegerField()
    runtimes_other = serializers.IntegerField(help_text="Paused or never connected.")
    people = serializers.IntegerField(help_text="People holding a role on an org of the part (member.view there).")
    teams = serializers.IntegerField(help_text="Teams holding a role on an org of the part.")
    pending_invitations = serializers.IntegerField(source="invitations", help_text="Where you hold member.manage.")
    expiring_grants = serializers.IntegerField(
        help_text=f"Role grants (on orgs and projects) expiring within {EXPIRING_DAYS} days."
    )


class RollupRowSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["here", "child", "elsewhere"],
        help_text="here: the org's own objects; child: a child and everything below it; elsewhere: the other "
        "children together (beyond the 25 largest, or ones you may not open).",
    )
    name = serializers.CharField(source="label")
    org_id = OrgRefField(allow_null=True, help_text="The child's id (its own rollup drills down); null otherwise.")
    counts = RollupCountsSerializer()


class RunsPerStepSerializer(serializers.Serializer):
    at = serializers.DateTimeField(help_text="Start of the day (of the hour over 24h), UTC.")
    runs = RunsByStatusSerializer()


class RuntimeRunsSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["global", "local", "unknown", "other"])
    runs = serializers.IntegerField()
    failed = serializers.IntegerField()


class RollupSerializer(serializers.Serializer):
    """The roll-up of an org's subtree, as the caller may see it."""

    org_id = OrgRefField()
    name = serializers.CharField(source="org_name")
    period = serializers.ChoiceField(choices=list(PERIODS))
    since = serializers.DateTimeField()
    computed_at = serializers.DateTimeField(
        help_text="When the figures were computed: a roll-up is kept and served again while younger than "
        "ROLLUP_SNAPSHOT_MAX_AGE_S (default 300 s) and its org has not moved; a refresher keeps the ones read fresh."
    )
    rows = RollupRowSerializer(many=True)
    total = RollupCountsSerializer(help_text="The whole subtree (people and teams counted once).")
    more_children = serializers.BooleanField(help_text="Children beyond the 25 largest are in the elsewhere row.")
    step = serializers.ChoiceField(choices=["day", "hour"])
    per_step = RunsPerStepSerializer(many=True, help_text="Runs per day (per hour over 24h) by status.")
    runtimes = RuntimeRunsSerializer(many=True, help_text="Runs of the period by runtime, most first.")


def _counts(counts: Counts) -> dict[str, Any]:
    return {
        "orgs": counts.orgs,
        "projects": counts.projects,
        "tasks": counts.tasks,
        "failing_tasks": counts.failing_tasks,
        "runs": counts.runs,
        "runs_total": counts.runs_total,
        "failure_rate": counts.failure_rate,
        "runtimes_online": counts.runtimes_online,
        "runtimes_offline": counts.runtimes_offline,
        "runtimes_other": counts.runtimes_other,
        "people": counts.people,
        "teams": counts.teams,
        "invitations": counts.invitations,
        "expiring_grants": counts.expiring_grants,
    }


def as_data(result: Rollup) -> dict[str, Any]:
    return {
        "org_id": result.org_id,
        "org_name": result.org_name,
        "period": result.period,
        "since": result.since,
        "computed_at": result.computed_at,
        "rows": [
            {
                "kind": row.kind,
                "label": row.label,
                "org_id": row.org_id if row.kind == "child" else None,
                "counts": _counts(row.counts),
            }
            for row in result.rows
        ],
        "total": _counts(result.total),
        "more_children": result.more_children,
        "step": result.step,
        "per_step": [{"at": at, "runs": runs} for at, runs in result.per_day],
        "runtimes": result.runtimes,
    }


PERIOD_PARAMETER = OpenApiParameter(
    "period", str, enum=list(PERIODS), required=False, description="The runs' period (default 7d)."
)


class OrgRollupView(APIView):
    @extend_schema(parameters=[PERIOD_PARAMETER], responses=RollupSerializer)
    def get(self, request: Request, id: Any) -> Response:
        """The org's roll-up: its own objects, each child subtree and the totals, counting only what you see."""
        org = get_org(request, "org.view", id)
        try:
            period = parse_period(request.query_params.get("period"))
        except BadPeriod as error:
            raise serializers.ValidationError({"period": [str(error)]}) from error
        return Response(RollupSerializer(as_data(rollup(request.user, org, period))).data)
