"""API of the access core: members (org and project), teams, roles, invitations, explain and the audit log.

Thin like every face: fetch and authorize through the policy (404 when not visible), write through
access.services (which check the capability again, refuse escalation and audit).

Optimistic concurrency (docs/DESIGN.md §4.9): the detail answers of grants (``/members/{id}``), tenant memberships,
teams and custom roles carry the row's ``ETag``; their PATCH and DELETE pass ``If-Match`` to the service as
``version`` (412 with the current ETag and who changed it, when the row moved on)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access import audit_log, policy, selectors
from access.api import UserRefSerializer
from access.models import AuditEvent, Invitation, Role, Team, TenantMembership
from access.roles import ALL_CAPABILITIES, CAPABILITIES
from access.services.custom_roles import create_role, delete_role, update_role
from access.services.grants import grant_role, remove_tenant_member, roles_available, set_tenant_admin
from access.services.invitations import accept_invitation, accept_url, invite, revoke_invitation
from access.services.teams import add_team_member, create_team, delete_team, remove_team_member, rename_team
from config.concurrency import if_match, with_etag
from config.deprecation import deprecated
from config.errors import NotFound
from config.schema import ErrorSerializer, OrgRefField
from governance.impact.access_changes import apply_change, apply_removal, preview_change, preview_removal
from governance.impact.api import DRY_RUN_PARAMETER, impact_response, is_dry_run
from governance.impact.serializers import ImpactSerializer
from orgs.api import IF_MATCH_PARAMETER, PRECONDITION_FAILED, _uuid_or_404, get_org, get_project
from orgs.models import Organization, Project, Tenant


def tenant_user(org: Organization, value: Any, field: str = "user") -> Any:
    """A user of ``org``'s tenant, given as id or username; anyone else is a field error (never a hint)."""
    users = get_user_model().objects.filter(tenant_memberships__tenant_id=org.tenant_id)
    try:
        user = users.filter(pk=UUID(str(value))).first()
    except ValueError:
        user = users.filter(username__iexact=str(value)).first()
    if user is None:
        raise serializers.ValidationError({field: ["No such user in this tenant: invite them first."]})
    return user


def tenant_team(org: Organization, value: Any, viewer: Any) -> Team:
    team = selectors.teams_in(org, viewer=viewer).filter(pk=_uuid_or_400(value, "team")).first()
    if team is None:
        raise serializers.ValidationError({"team": ["No such team at this organization or above it."]})
    return team


def _uuid_or_400(value: Any, field: str) -> UUID:
    try:
        return UUID(str(value))
    except ValueError:
        raise serializers.ValidationError({field: ["Must be a valid UUID."]}) from None


# -- members -------------------------------------------------------------------------------------------------------


class TeamRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class MemberSerializer(serializers.Serializer):
    """One grant in effect here: the user's (or team's), its role, where it was made and whether it is inherited."""

    id = serializers.UUIDField()
    user = serializers.SerializerMethodField()
    team = serializers.SerializerMethodField()
    role = serializers.CharField(source="role.key")
    role_name = serializers.CharField(source="role.name")
    org = OrgRefField(source="org.pk", help_text="Where the grant was made (an ancestor's when inherited).")
    org_name = serializers.CharField(source="org.name")
    inherited = serializers.BooleanField()
    expires_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(UserRefSerializer(allow_null=True))
    def get_user(self, member: selectors.Member) -> dict[str, Any] | None:
        return UserRefSerializer(member.user).data if member.user is not None else None

    @extend_schema_field(TeamRefSerializer(allow_null=True))
    def get_team(self, member: selectors.Member) -> dict[str, Any] | None:
        team = member.team
        return {"id": team.pk, "name": team.name} if team is not None else None


class MemberCreateSerializer(serializers.Serializer):
    user = serializers.CharField(required=False, help_text="A user of the tenant: id or username.")
    team = serializers.UUIDField(required=False, help_text="Or a team defined here or above.")
    role = serializers.CharField(help_text="Role key: admin, integrator, guest, or a custom role's key.")
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if ("user" in data) == ("team" in data):
            raise serializers.ValidationError({"user": ["Give either a user or a team."]})
        return data


class MemberUpdateSerializer(serializers.Serializer):
    role = serializers.CharField(required=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


def _create_member(request: Request, target: Organization | Project) -> Response:
    org = target if isinstance(target, Organization) else target.org
    data = MemberCreateSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    holder: dict[str, Any] = {}
    if "user" in data.validated_data:
        holder["user"] = tenant_user(org, data.validated_data["user"])
    else:
        holder["team"] = tenant_team(org, data.validated_data["team"], request.user)
    grant = grant_role(
        actor=request.user,
        target=target,
        role=data.validated_data["role"],
        expires_at=data.validated_data.get("expires_at"),
        **holder,
    )
    member = selectors.Member(grant=grant, org=org, inherited=False)
    return Response(MemberSerializer(member).data, status=status.HTTP_201_CREATED)


class OrgMembersView(generics.GenericAPIView):
    """Members of an organization: direct grants and those inherited from ancestors (cut ones left out)."""

    serializer_class = MemberSerializer
    queryset = Organization.objects.none()  # for the schema's path parameter; the view decides

    @extend_schema(responses=MemberSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        org = get_org(request, "member.view", id)
        page = self.paginate_queryset(selectors.org_members(org))
        return self.get_paginated_response(MemberSerializer(page, many=True).data)

    @extend_schema(request=MemberCreateSerializer, responses={201: MemberSerializer})
    def post(self, request: Request, id: Any) -> Response:
        return _create_member(request, get_org(request, "member.manage", id))


class ProjectMembersView(generics.GenericAPIView):
    """Project-scoped grants: a role on this project only."""

    serializer_class = MemberSerializer
    queryset = Project.objects.none()  # for the schema's path parameter; the view decides

    @extend_schema(responses=MemberSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        project = get_project(request, "member.view", id)
        page = self.paginate_queryset(selectors.project_members(project))
        return self.get_paginated_response(MemberSerializer(page, many=True).data)

    @extend_schema(request=MemberCreateSerializer, responses={201: MemberSerializer})
    def post(self, request: Request, id: Any) -> Response:
        return _create_member(request, get_project(request, "member.manage", id))


def _get_grant(request: Request, grant_id: Any) -> Any:
    grant = selectors.grant_by_id(_uuid_or_404(grant_id))
    if grant is None:
        raise NotFound()
    policy.authorize(request.user, "member.view", grant.content_object)
    return grant


def _member_response(grant: Any) -> Response:
    target = grant.content_object
    org = target if isinstance(target, Organization) else target.org
    return with_etag(Response(MemberSerializer(selectors.Member(grant=grant, org=org, inherited=False)).data), grant)


class MemberDetailView(APIView):
    versioned = True

    @extend_schema(responses=MemberSerializer)
    def get(self, request: Request, id: Any) -> Response:
        """One grant (member.view on its org or project), with its ETag for a change or removal."""
        return _member_response(_get_grant(request, id))

    @extend_schema(
        request=MemberUpdateSerializer,
        parameters=[DRY_RUN_PARAMETER],
        responses={200: PolymorphicProxySerializer("MemberOrImpact", [MemberSerializer, ImpactSerializer], None)},
    )
    def patch(self, request: Request, id: Any) -> Response:
        """Change a member's role or expiry (member.manage on the grant's org or project). ``dry_run=true``: the
        Impact instead, nothing changed: a role change's, now; a new expiry's, as if the grant had ended (a past
        expiry is refused, 400)."""
        dry_run = is_dry_run(request)
        grant = _get_grant(request, id)
        data = MemberUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        kwargs: dict[str, Any] = {}
        if "role" in data.validated_data:
            kwargs["role"] = data.validated_data["role"]
        if "expires_at" in data.validated_data:
            kwargs["expires_at"] = data.validated_data["expires_at"]
        if dry_run:
            return impact_response(preview_change(actor=request.user, grant=grant, version=if_match(request), **kwargs))
        grant, _ = apply_change(actor=request.user, grant=grant, version=if_match(request), **kwargs)
        return _member_response(grant)

    @extend_schema(parameters=[DRY_RUN_PARAMETER], responses={204: None, 200: ImpactSerializer})
    def delete(self, request: Request, id: Any) -> Response:
        """Remove a member (member.manage, and the role it holds: removing rights one lacks is escalation).
        ``dry_run=true``: 200 with the Impact (who loses what, where), nothing removed."""
        dry_run = is_dry_run(request)
        grant = _get_grant(request, id)
        if dry_run:
            return impact_response(preview_removal(actor=request.user, grant=grant, version=if_match(request)))
        apply_removal(actor=request.user, grant=grant, version=if_match(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- teams ---------------------------------------------------------------------------------------------------------


class TeamSerializer(serializers.ModelSerializer):
    org = OrgRefField(source="org_id", read_only=True, help_text="Where the team is defined.")
    members = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["id", "org", "name", "description", "members"]
        read_only_fields = ["id", "org", "members"]

    @extend_schema_field(UserRefSerializer(many=True))
    def get_members(self, team: Team) -> list[dict[str, Any]]:
        return UserRefSerializer(team.group.user_set.order_by("username"), many=True).data


class TeamWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class TeamMemberSerializer(serializers.Serializer):
    user = serializers.CharField(help_text="A user of the tenant: id or username.")


class OrgTeamsView(generics.GenericAPIView):
    """Teams usable here: defined at this organization or above it."""

    serializer_class = TeamSerializer
    queryset = Organization.objects.none()  # for the schema's path parameter; the view decides

    @extend_schema(responses=TeamSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        org = get_org(request, "member.view", id)
        teams = selectors.teams_in(org, viewer=request.user).select_related("group").prefetch_related("group__user_set")
        page = self.paginate_queryset(teams)
        return self.get_paginated_response(TeamSerializer(page, many=True).data)

    @extend_schema(request=TeamWriteSerializer, responses={201: TeamSerializer})
    def post(self, request: Request, id: Any) -> Response:
        org = get_org(request, "member.manage", id)
        data = TeamWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        team = create_team(actor=request.user, org=org, **data.validated_data)
        return Response(TeamSerializer(team).data, status=status.HTTP_201_CREATED)


def _get_team(request: Request, team_id: Any, capability: str = "member.view") -> Team:
    team = Team.objects.select_related("org", "group").filter(pk=_uuid_or_404(team_id)).first()
    if team is None or team.org.is_deleted:
        raise NotFound()
    policy.authorize(request.user, "member.view", team.org)
    policy.authorize(request.user, capability, team.org)
    return team


class TeamDetailView(APIView):
    versioned = True

    @extend_schema(responses=TeamSerializer)
    def get(self, request: Request, id: Any) -> Response:
        team = _get_team(request, id)
        return with_etag(Response(TeamSerializer(team).data), team)

    @extend_schema(request=TeamWriteSerializer(partial=True), responses=TeamSerializer)
    def patch(self, request: Request, id: Any) -> Response:
        """Rename or describe the team: only the fields sent change."""
        team = _get_team(request, id, "member.manage")
        data = TeamWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        team = rename_team(
            actor=request.user,
            team=team,
            name=data.validated_data.get("name"),
            description=data.validated_data.get("description"),
            version=if_match(request),
        )
        return with_etag(Response(TeamSerializer(team).data), team)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: Any) -> Response:
        team = _get_team(request, id, "member.manage")
        delete_team(actor=request.user, team=team, version=if_match(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TeamMembersView(APIView):
    @extend_schema(
        request=TeamMemberSerializer,
        parameters=[IF_MATCH_PARAMETER],
        responses={201: TeamSerializer, 412: PRECONDITION_FAILED},
    )
    def post(self, request: Request, id: Any) -> Response:
        """Add a member. The members are part of the team: its ETag changes, and ``If-Match`` (the team's ETag)
        refuses the change with 412 if the team changed since it was read."""
        team = _get_team(request, id, "member.manage")
        data = TeamMemberSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = tenant_user(team.org, data.validated_data["user"])
        team = add_team_member(actor=request.user, team=team, user=user, version=if_match(request))
        return with_etag(Response(TeamSerializer(team).data, status=status.HTTP_201_CREATED), team)


class TeamMemberDetailView(APIView):
    versioned = True  # the If-Match of a removal is the team's ETag

    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: Any, user_id: Any) -> Response:
        team = _get_team(request, id, "member.manage")
        user = tenant_user(team.org, user_id)
        remove_team_member(actor=request.user, team=team, user=user, version=if_match(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(exclude=True)
class TeamMemberByUsernameView(TeamMemberDetailView):
    """``DELETE /teams/{id}/members/{username}``: the first form, which named the user by username too. Kept for
    the callers that use it; the schema documents the user's id only (a path cannot be both)."""


# -- roles ---------------------------------------------------------------------------------------------------------


class RoleSerializer(serializers.ModelSerializer):
    builtin = serializers.BooleanField(source="is_builtin", read_only=True)
    org = OrgRefField(
        source="org_id", read_only=True, allow_null=True, help_text="Where a custom role is defined; null: built in."
    )
    capabilities = serializers.SerializerMethodField()

    class Meta:
        model = Role
        fields = ["id", "key", "name", "description", "builtin", "org", "capabilities"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=CAPABILITIES)))
    def get_capabilities(self, role: Role) -> list[str]:
        return sorted(role.capabilities)


class RoleWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    key = serializers.SlugField(required=False, max_length=50)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    capabilities = serializers.ListField(child=serializers.ChoiceField(choices=CAPABILITIES), allow_empty=False)


class OrgRolesView(generics.GenericAPIView):
    """Roles usable here: the built-in ones and the custom roles defined at this organization or above."""

    serializer_class = RoleSerializer
    queryset = Organization.objects.none()  # for the schema's path parameter; the view decides

    @extend_schema(responses=RoleSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        org = get_org(request, "member.view", id)
        page = self.paginate_queryset(roles_available(org))
        return self.get_paginated_response(RoleSerializer(page, many=True).data)

    @extend_schema(request=RoleWriteSerializer, responses={201: RoleSerializer})
    def post(self, request: Request, id: Any) -> Response:
        org = get_org(request, "member.manage", id)
        data = RoleWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        role = create_role(actor=request.user, org=org, **data.validated_data)
        return Response(RoleSerializer(role).data, status=status.HTTP_201_CREATED)


def _get_custom_role(request: Request, role_id: Any, capability: str) -> Role:
    role = Role.objects.select_related("org").filter(pk=_uuid_or_404(role_id), tenant__isnull=False).first()
    if role is None or role.org.is_deleted:
        raise NotFound()
    policy.authorize(request.user, "member.view", role.org)
    policy.authorize(request.user, capability, role.org)
    return role


class RoleDetailView(APIView):
    versioned = True

    @extend_schema(responses=RoleSerializer)
    def get(self, request: Request, id: Any) -> Response:
        role = _get_custom_role(request, id, "member.view")
        return with_etag(Response(RoleSerializer(role).data), role)

    @extend_schema(request=RoleWriteSerializer(partial=True), responses=RoleSerializer)
    def patch(self, request: Request, id: Any) -> Response:
        role = _get_custom_role(request, id, "member.manage")
        data = RoleWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = {k: v for k, v in data.validated_data.items() if k in ("name", "description", "capabilities")}
        role = update_role(actor=request.user, role=role, version=if_match(request), **fields)
        return with_etag(Response(RoleSerializer(role).data), role)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: Any) -> Response:
        role = _get_custom_role(request, id, "member.manage")
        delete_role(actor=request.user, role=role, version=if_match(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- invitations ---------------------------------------------------------------------------------------------------

# The values of Invitation.status, in the schema as the enum InvitationStatus.
INVITATION_STATUSES = ["pending", "accepted", "revoked", "expired"]


class InvitationSerializer(serializers.ModelSerializer):
    role = serializers.CharField(source="role.key")
    org = OrgRefField(source="org_id")
    status = serializers.ChoiceField(choices=INVITATION_STATUSES)

    class Meta:
        model = Invitation
        fields = ["id", "org", "email", "role", "status", "created_at", "expires_at"]
        read_only_fields = fields


class InvitationCreatedSerializer(InvitationSerializer):
    accept_url = serializers.SerializerMethodField()

    class Meta(InvitationSerializer.Meta):
        fields = [*InvitationSerializer.Meta.fields, "accept_url"]
        read_only_fields = fields

    def get_accept_url(self, invitation: Invitation) -> str:
        return accept_url(self.context["raw_token"])


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.CharField()
    expires_in_days = serializers.IntegerField(required=False, min_value=1, max_value=Invitation.MAX_LIFETIME_DAYS)


class OrgInvitationsView(generics.GenericAPIView):
    serializer_class = InvitationSerializer
    queryset = Organization.objects.none()  # for the schema's path parameter; the view decides

    @extend_schema(responses=InvitationSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        """Invitations to this organization (member.manage: they hold e-mail addresses)."""
        org = get_org(request, "member.manage", id)
        page = self.paginate_queryset(selectors.invitations_of(org))
        return self.get_paginated_response(InvitationSerializer(page, many=True).data)

    @extend_schema(request=InvitationCreateSerializer, responses={201: InvitationCreatedSerializer})
    def post(self, request: Request, id: Any) -> Response:
        """Invite by e-mail; the answer carries the accept URL (the token is stored hashed, shown this once)."""
        org = get_org(request, "member.manage", id)
        data = InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation, raw = invite(
            actor=request.user,
            org=org,
            email=data.validated_data["email"],
            role=data.validated_data["role"],
            lifetime_days=data.validated_data.get("expires_in_days", Invitation.DEFAULT_LIFETIME_DAYS),
        )
        body = InvitationCreatedSerializer(invitation, context={"raw_token": raw}).data
        return Response(body, status=status.HTTP_201_CREATED)


class InvitationDetailView(APIView):
    @extend_schema(responses={200: InvitationSerializer})
    def delete(self, request: Request, id: Any) -> Response:
        """Revoke a pending invitation."""
        invitation = Invitation.objects.select_related("org", "role").filter(pk=_uuid_or_404(id)).first()
        if invitation is None or invitation.org.is_deleted:
            raise NotFound()
        policy.authorize(request.user, "org.view", invitation.org)
        invitation = revoke_invitation(actor=request.user, invitation=invitation)
        return Response(InvitationSerializer(invitation).data)


class InvitationAcceptByPathSerializer(serializers.Serializer):
    """The body of an acceptance with the code in the path: a signed-in caller sends ``{}``."""

    username = serializers.CharField(
        required=False, max_length=150, help_text="Without a signed-in caller: the new account's username."
    )
    password = serializers.CharField(
        required=False, style={"input_type": "password"}, trim_whitespace=False, help_text="And its password."
    )


class InvitationAcceptSerializer(InvitationAcceptByPathSerializer):
    token = serializers.CharField(help_text="The invitation's code (the part of the e-mailed link after #).")


def _accept(request: Request, token: str, data: dict[str, Any]) -> Response:
    user = request.user if request.user.is_authenticated else None
    fields = {k: v for k, v in data.items() if k in ("username", "password")} if user is None else {}
    _, grant = accept_invitation(raw_token=token, user=user, **fields)
    member = selectors.Member(grant=grant, org=grant.content_object, inherited=False)
    return Response(MemberSerializer(member).data)


class InvitationAcceptView(APIView):
    """Accept an invitation: a signed-in caller whose verified e-mail address it was sent to joins with their
    account; without authentication, a new account is made with the invitation's address (verified by the code)."""

    permission_classes = [AllowAny]

    @extend_schema(
        request=InvitationAcceptSerializer,
        responses={
            200: MemberSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No invitation has this code."),
        },
    )
    def post(self, request: Request) -> Response:
        data = InvitationAcceptSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _accept(request, data.validated_data["token"], data.validated_data)


class InvitationAcceptByPathView(APIView):
    """The first form of accepting, with the code in the path. Paths are logged by servers and proxies: use
    ``POST /invitations/accept`` with the code in the body."""

    permission_classes = [AllowAny]

    @deprecated(sunset=date(2027, 6, 1), link="/api/v1/docs/#/invitations/acceptInvitation")
    @extend_schema(
        request=InvitationAcceptByPathSerializer,
        responses={
            200: MemberSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No invitation has this code."),
        },
        deprecated=True,
    )
    def post(self, request: Request, token: str) -> Response:
        data = InvitationAcceptSerializer(
            data={**request.data, "token": token} if isinstance(request.data, dict) else {}
        )
        data.is_valid(raise_exception=True)
        return _accept(request, token, data.validated_data)


# -- tenant memberships ----------------------------------------------------------------------------------------------


class TenantMemberSerializer(serializers.Serializer):
    """A user's membership of a tenant: the account (read-only here) and whether they administer the tenant."""

    user = UserRefSerializer(read_only=True)
    is_admin = serializers.BooleanField()
    created_at = serializers.DateTimeField(read_only=True)


def _tenant(request: Request, tenant_id: Any) -> Tenant:
    return policy.get_for(request.user, policy.TENANT_ADMIN, Tenant.objects.all(), pk=_uuid_or_404(tenant_id))


def _membership(tenant: Tenant, user_id: Any) -> TenantMembership:
    membership = (
        TenantMembership.objects.select_related("user").filter(tenant=tenant, user_id=_uuid_or_404(user_id)).first()
    )
    if membership is None:
        raise NotFound()
    return membership


class TenantMembersView(generics.GenericAPIView):
    """The tenant's members (tenant administrators). Accounts belong to their owners: here a tenant administrator
    makes or unmakes tenant administrators and removes people from the tenant, never edits an account."""

    serializer_class = TenantMemberSerializer
    queryset = Tenant.objects.none()  # for the schema's path parameter; the view decides

    @extend_schema(
        parameters=[OpenApiParameter("search", str, description="Part of a username or e-mail.")],
        responses=TenantMemberSerializer(many=True),
    )
    def get(self, request: Request, id: Any) -> Response:
        tenant = _tenant(request, id)
        members = selectors.tenant_memberships(tenant, request.query_params.get("search", ""))
        page = self.paginate_queryset(members)
        return self.get_paginated_response(TenantMemberSerializer(page, many=True).data)


class TenantMemberDetailView(APIView):
    versioned = True

    @extend_schema(responses=TenantMemberSerializer)
    def get(self, request: Request, id: Any, user_id: Any) -> Response:
        """One membership (tenant administrators), with its ETag for a change or removal."""
        membership = _membership(_tenant(request, id), user_id)
        return with_etag(Response(TenantMemberSerializer(membership).data), membership)

    @extend_schema(request=TenantMemberSerializer, responses=TenantMemberSerializer)
    def patch(self, request: Request, id: Any, user_id: Any) -> Response:
        """Make or unmake a tenant administrator (a tenant keeps at least one: 409 ``last_tenant_admin``)."""
        tenant = _tenant(request, id)
        membership = _membership(tenant, user_id)
        data = TenantMemberSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = set_tenant_admin(
            actor=request.user,
            tenant=tenant,
            user=membership.user,
            is_admin=data.validated_data["is_admin"],
            version=if_match(request),
        )
        return with_etag(Response(TenantMemberSerializer(membership).data), membership)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: Any, user_id: Any) -> Response:
        """Remove the user from the tenant: every grant, team seat, share and development-team seat they hold in it
        ends at once, and the invitations they sent here are revoked. Their account stays theirs."""
        tenant = _tenant(request, id)
        user = _membership(tenant, user_id).user
        remove_tenant_member(actor=request.user, tenant=tenant, user=user, version=if_match(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- explain and audit ---------------------------------------------------------------------------------------------


# Where a grant of an explanation comes from (access.policy._Reason.source), in the schema as the enum GrantSource.
GRANT_SOURCES = [
    ("user", "A grant to the user at an organization"),
    ("team", "A grant to a team of the user at an organization"),
    ("project_user", "A grant to the user on the project"),
    ("project_team", "A grant to a team of the user on the project"),
]


class ExplainGrantSerializer(serializers.Serializer):
    """One grant that bears on the decision: whose it is, where it was made, and whether it applies here."""

    source = serializers.ChoiceField(choices=GRANT_SOURCES)
    grant = serializers.UUIDField(allow_null=True, help_text="The grant's id (GET /members/{id}).")
    role = serializers.CharField(help_text="The role's key.")
    org = OrgRefField(allow_null=True, help_text="Where the grant was made (for a project grant: the project's org).")
    org_name = serializers.CharField()
    team = serializers.CharField(allow_null=True, help_text="The team's name, for a team's grant.")
    applies = serializers.BooleanField(help_text="False when an organization between cuts the inheritance.")
    cut_by = serializers.CharField(allow_null=True, help_text="The name of the organization that cuts it.")
    capabilities = serializers.ListField(child=serializers.ChoiceField(choices=CAPABILITIES))


class ExplainSerializer(serializers.Serializer):
    user = UserRefSerializer()
    capability = serializers.ChoiceField(choices=CAPABILITIES)
    allowed = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField(), help_text="The decision, in sentences.")
    grants = ExplainGrantSerializer(many=True)


class ExplainView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("user", str, required=True, description="Id or username of a user of the tenant."),
            OpenApiParameter("capability", str, required=True, enum=list(CAPABILITIES)),
            OpenApiParameter("project", OpenApiTypes.UUID, description="Explain on this project of the org."),
        ],
        responses=ExplainSerializer,
    )
    def get(self, request: Request, id: Any) -> Response:
        """Why a user has or lacks a capability here: the grants with their orgs, the inheritance cuts."""
        org = get_org(request, "member.view", id)
        capability = request.query_params.get("capability", "")
        errors = {}
        if capability not in ALL_CAPABILITIES:
            errors["capability"] = [f"Choose one of: {', '.join(CAPABILITIES)}."]
        if not request.query_params.get("user"):
            errors["user"] = ["This parameter is required."]
        if errors:
            raise serializers.ValidationError(errors)
        subject = tenant_user(org, request.query_params["user"])
        target: Any = org
        if request.query_params.get("project"):
            target = Project.objects.filter(org=org, pk=_uuid_or_400(request.query_params["project"], "project"))
            target = target.select_related("org").first()
            if target is None:
                raise serializers.ValidationError({"project": ["No such project in this organization."]})
        fresh = get_user_model().objects.get(pk=subject.pk)
        explanation = policy.explain(fresh, capability, target)
        return Response(
            {
                "user": UserRefSerializer(subject).data,
                "capability": capability,
                "allowed": explanation.allowed,
                "reasons": explanation.reasons,
                "grants": explanation.grants,
            }
        )


# An audit event's changes: the fields the write changed, by name. What a value holds depends on the action: the new
# value, [old, new] for an update, a count, a list of names; any JSON but an object of objects.
JSON_SCALARS: list[dict[str, Any]] = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]
AUDIT_CHANGES = {
    "type": "object",
    "description": "The fields the write changed, by name: the new value, or [old, new] for an update (the shape "
    "depends on the action). Never a secret.",
    "additionalProperties": {
        "oneOf": [
            *JSON_SCALARS,
            {"type": "array", "items": {"oneOf": [*JSON_SCALARS, {"type": "object"}]}},
            {"type": "object"},
        ]
    },
}


@extend_schema_field(AUDIT_CHANGES)
class AuditChangesField(serializers.JSONField):
    pass


class AuditEventSerializer(serializers.ModelSerializer):
    org = OrgRefField(source="org_id", allow_null=True, help_text="Where it happened; null once purged.")
    org_name = serializers.SerializerMethodField()
    actor = serializers.CharField(source="actor_name", help_text="The actor's username, or system.")
    changes = AuditChangesField()

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor", "action", "org", "org_name", "target_type", "target_id",
                  "target_name", "changes", "ip"]  # fmt: skip
        read_only_fields = fields

    def get_org_name(self, event: AuditEvent) -> str | None:
        return event.org.name if event.org is not None else None


SINCE_ERROR = "Use an ISO 8601 date-time, e.g. 2026-11-01T00:00:00Z."


def _moment(value: str, *, end_of_day: bool = False) -> datetime:
    """An ISO 8601 date or date-time, in UTC (access.audit_log.parse_moment: the console's reading): PostgreSQL
    refuses offsets beyond ±15:59, and a date-time at the edge of the calendar may not exist in UTC; both are field
    errors here."""
    try:
        return audit_log.parse_moment(value, end_of_day=end_of_day)
    except DjangoValidationError:
        raise serializers.ValidationError(SINCE_ERROR) from None


class SinceField(serializers.DateTimeField):
    """``since``: read in UTC like the console's filter, whatever the offset (a naive date-time is UTC)."""

    end_of_day = False

    def to_internal_value(self, value: Any) -> datetime:
        return _moment(str(value), end_of_day=self.end_of_day)


class UntilField(SinceField):
    """``until``: a date alone includes that whole day."""

    end_of_day = True


class AuditEventFilterSerializer(serializers.Serializer):
    """The audit log's filters (query parameters): each one given narrows the list."""

    actor = serializers.CharField(required=False, max_length=150, help_text="The actor's username.")
    action = serializers.CharField(
        required=False, max_length=64, help_text="An action (org.create) or a prefix ending in '.' (org.)."
    )
    since = SinceField(
        required=False, help_text="Events at or after this date-time (ISO 8601, e.g. 2026-11-01T00:00:00Z)."
    )
    until = UntilField(
        required=False, help_text="Events before this date-time (ISO 8601); a date alone includes that whole day."
    )
    org = serializers.UUIDField(
        required=False, help_text="An organization of this one's subtree: its events (and its subtree's, see "
        "descendants) instead of the whole subtree's."
    )  # fmt: skip
    descendants = serializers.BooleanField(
        required=False, default=True, help_text="With org: include the events of its sub-organizations (default)."
    )
    target_type = serializers.CharField(
        required=False, max_length=100, help_text="What the event is about, as a model label: orgs.organization."
    )
    target = serializers.CharField(
        required=False, max_length=200, help_text="The target's id (exactly), or part of its name."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since is not None and until is not None and since >= until:
            raise serializers.ValidationError({"until": ["Must come after since."]})
        return attrs


def _subtree_org(org: Organization, pk: Any) -> Organization:
    found = audit_log.org_in_subtree(org, pk)
    if found is None:
        raise serializers.ValidationError({"org": ["Choose an organization of this one's subtree."]})
    return found


class AuditEventsView(generics.GenericAPIView):
    serializer_class = AuditEventSerializer
    queryset = Organization.objects.none()  # for the schema's path parameter; the view decides

    @extend_schema(parameters=[AuditEventFilterSerializer], responses=AuditEventSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        """The audit log of this organization and its subtree, newest first (audit.view)."""
        org = get_org(request, "audit.view", id)
        filters = AuditEventFilterSerializer(data={k: v for k, v in request.query_params.items() if v != ""})
        filters.is_valid(raise_exception=True)
        data = dict(filters.validated_data)
        if "org" in data:
            data["org"] = _subtree_org(org, data["org"])
        page = self.paginate_queryset(audit_log.filtered_events(org, data))
        return self.get_paginated_response(AuditEventSerializer(page, many=True).data)
