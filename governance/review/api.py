"""The access review in the API (issue #12 §3): ``GET /orgs/{id}/review`` (the rows, paginated, with the filters of
the console page) and the reviewer's bulk answers ``POST /orgs/{id}/review/attest`` and ``…/review/revoke``.

Thin like every face: the org is fetched and authorized through the policy (404 when invisible, 403 without
``member.view``), the rows and the writes are governance.review.service's (which checks each grant)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from access.api import UserRefSerializer
from config.schema import OrgRefField
from governance.impact.api import flag
from governance.models import GrantKind
from governance.review import service
from orgs.api import get_org
from orgs.models import Organization

FILTERS = [
    OpenApiParameter("subtree", bool, required=False, description="true: the organizations below too."),
    OpenApiParameter(
        "not_attested",
        bool,
        required=False,
        description="true: only grants nobody attested in the last `access_review_days` days (an org setting).",
    ),
    OpenApiParameter(
        "inactive",
        bool,
        required=False,
        description="true: only people not seen (no request, no token use) in the last `inactive_days` days.",
    ),
]


class NamedRefSerializer(serializers.Serializer):
    """A team's or a project's id and name."""

    id = serializers.UUIDField()
    name = serializers.CharField()


class ReviewRowSerializer(serializers.Serializer):
    """One person holding one role through one grant (a team grant: one row per member of the team)."""

    grant = serializers.CharField(source="grant_id", help_text="The id to attest or revoke (tenant admin: user id).")
    version = serializers.IntegerField(
        allow_null=True,
        help_text="The grant's version: send `<grant>@<version>` to attest or revoke it only as read (stale if not).",
    )
    kind = serializers.ChoiceField(choices=GrantKind.choices)
    user = serializers.SerializerMethodField()
    team = serializers.SerializerMethodField()
    role = serializers.CharField(source="role_key")
    role_name = serializers.CharField()
    org = OrgRefField(source="org.pk", allow_null=True, help_text="Where the grant was made (null: tenant-wide).")
    org_name = serializers.CharField(source="org.name", allow_null=True, default=None)
    project = serializers.SerializerMethodField()
    inherited = serializers.BooleanField()
    granted_by = serializers.SerializerMethodField()
    granted_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    last_seen = serializers.DateTimeField(allow_null=True)
    attested_at = serializers.DateTimeField(allow_null=True)
    attested_by = serializers.CharField(allow_blank=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        # ``source`` is also every DRF field's own attribute: declared here, not as a class attribute.
        fields = super().get_fields()
        fields["source"] = serializers.ChoiceField(
            choices=["direct", "inherited", "team", "project", "tenant"],
            help_text="direct: made here (or below, with subtree); inherited: made on an ancestor; team: through a "
            "team; project: on one project; tenant: tenant administrator.",
        )
        return fields

    @extend_schema_field(UserRefSerializer(allow_null=True))
    def get_user(self, row: service.Row) -> dict[str, Any] | None:
        return UserRefSerializer(row.user).data if row.user is not None else None

    @extend_schema_field(NamedRefSerializer(allow_null=True))
    def get_team(self, row: service.Row) -> dict[str, Any] | None:
        return {"id": str(row.team.pk), "name": row.team.name} if row.team is not None else None

    @extend_schema_field(NamedRefSerializer(allow_null=True))
    def get_project(self, row: service.Row) -> dict[str, Any] | None:
        return {"id": str(row.project.pk), "name": row.project.name} if row.project is not None else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_granted_by(self, row: service.Row) -> str | None:
        return row.granted_by.get_username() if row.granted_by is not None else None


GRANTS_HELP = (
    f"Grant ids from the review rows (at most {service.MAX_BULK}), each optionally `<id>@<version>` (the row's "
    "`version`): a grant changed since is then refused on its own with `stale`."
)


class AttestSerializer(serializers.Serializer):
    grants = serializers.ListField(child=serializers.CharField(), help_text=GRANTS_HELP)
    note = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class RevokeSerializer(serializers.Serializer):
    grants = serializers.ListField(child=serializers.CharField(), help_text=GRANTS_HELP)


class RefusalSerializer(serializers.Serializer):
    grant = serializers.CharField()
    code = serializers.CharField()
    detail = serializers.CharField()


class OutcomeSerializer(serializers.Serializer):
    done = serializers.ListField(child=serializers.CharField(), help_text="The grants attested or revoked.")
    refused = RefusalSerializer(many=True, help_text="The others, each with why: nothing was changed for them.")


class ReviewView(generics.GenericAPIView):
    """The access review of an organization (member.view)."""

    serializer_class = ReviewRowSerializer
    queryset = Organization.objects.none()  # for the schema's path parameter; the view decides

    @extend_schema(parameters=FILTERS, responses=ReviewRowSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        org = get_org(request, "member.view", id)
        unattested, inactive = flag(request, "not_attested"), flag(request, "inactive")
        rows = service.review(org, viewer=request.user, subtree=flag(request, "subtree")).filtered(
            unattested=unattested, inactive=inactive
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(ReviewRowSerializer(page, many=True).data)


class ReviewAttestView(generics.GenericAPIView):
    serializer_class = AttestSerializer
    queryset = Organization.objects.none()

    @extend_schema(request=AttestSerializer, responses=OutcomeSerializer)
    def post(self, request: Request, id: Any) -> Response:
        """Attest grants: each needs member.manage on its org or project and the role's capabilities. 404
        grants_not_found (nothing done) when an id is not in this organization's review; 403 grants_refused (with
        ``refused``) when every grant is refused; else 200 with what was done and what was refused."""
        org = get_org(request, "member.view", id)
        data = AttestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        grants, note = data.validated_data["grants"], data.validated_data.get("note", "")
        outcome = service.attest(actor=request.user, org=org, grant_ids=grants, note=note)
        return Response(OutcomeSerializer(outcome.as_dict()).data)


class ReviewRevokeView(generics.GenericAPIView):
    serializer_class = RevokeSerializer
    queryset = Organization.objects.none()

    @extend_schema(request=RevokeSerializer, responses=OutcomeSerializer)
    def post(self, request: Request, id: Any) -> Response:
        """Revoke grants through the grant services (their checks: member.manage, no escalation, the last tenant
        administrator kept). Answers as attestOrgGrants does."""
        org = get_org(request, "member.view", id)
        data = RevokeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = service.revoke(actor=request.user, org=org, grant_ids=data.validated_data["grants"])
        return Response(OutcomeSerializer(outcome.as_dict()).data)
