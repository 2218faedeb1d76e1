"""API: tenants, organizations and projects (docs/API.md). Thin: fetch and authorize through the policy, write through
orgs.services, which check again and audit.

Optimistic concurrency (docs/DESIGN.md §4.9): detail answers carry the row's ``ETag``; PATCH and DELETE (and the
org's move and restore, which change it too) pass ``If-Match`` to the service as ``version``, which answers 412
with the current ETag and who changed it when the row moved on. Views with ``versioned = True`` declare this in
the schema (config/schema.py)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access import policy
from config.concurrency import if_match, with_etag
from config.errors import NotFound
from config.schema import IF_MATCH, OrgRefField, StaleSerializer
from governance.impact import org_changes
from governance.impact.api import DRY_RUN_PARAMETER, impact_response, is_dry_run
from governance.impact.serializers import ImpactSerializer
from orgs import services
from orgs.models import Organization, Project, Tenant, ancestors_of
from twofactor.requirement import requirement_at

# POST actions that change a versioned object (move, restore) honour If-Match too; the schema's automatic rule
# covers PATCH/PUT/DELETE only, so these declare it themselves.
IF_MATCH_PARAMETER = OpenApiParameter(
    IF_MATCH["name"], str, location=OpenApiParameter.HEADER, required=False, description=IF_MATCH["description"]
)
PRECONDITION_FAILED = OpenApiResponse(
    StaleSerializer, description="If-Match names a version that is no longer current: someone changed it since."
)


def _or_impact(name: str, serializer: type[serializers.Serializer]) -> PolymorphicProxySerializer:
    """A 200 that is the changed object, or with ``?dry_run=true`` the Impact of the change (nothing changed)."""
    return PolymorphicProxySerializer(
        component_name=name, serializers=[serializer, ImpactSerializer], resource_type_field_name=None
    )


def _uuid_or_404(value: Any) -> Any:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound() from None


# The component is OrgSummary: the name OrgRef is the bare id's (config.schema), which replaced this object's schema.
@extend_schema_serializer(component_name="OrgSummary")
class OrgRefSerializer(serializers.Serializer):
    """An organization's id and name."""

    id = OrgRefField()
    name = serializers.CharField()


class TenantSerializer(serializers.ModelSerializer):
    root_org = serializers.SerializerMethodField()

    class Meta:
        model = Tenant
        fields = ["id", "name", "plan", "root_org", "created_at"]
        read_only_fields = ["id", "root_org", "created_at"]

    @extend_schema_field(OrgRefField(read_only=True, help_text="The tenant's root organization."))
    def get_root_org(self, tenant: Tenant) -> Any:
        root = getattr(tenant, "root_org_id", None)
        if root is None:
            root = tenant.organizations.filter(parent__isnull=True).values_list("pk", flat=True).first()
        return root


class OrgSerializer(serializers.Serializer):
    """An organization, with its path (root first, self last) and the caller's capabilities in it.

    Fields are declared rather than derived from the model (a ModelSerializer introspects the model on every
    instantiation: a tenth of an API retrieve's CPU)."""

    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    tenant = serializers.UUIDField(source="tenant_id", read_only=True)
    parent = OrgRefField(source="parent_id", read_only=True, allow_null=True, help_text="Null for the root.")
    depth = serializers.IntegerField(source="level", read_only=True)
    path = serializers.SerializerMethodField()
    access_inheritance = serializers.ChoiceField(choices=Organization.AccessInheritance.choices, read_only=True)
    capabilities = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)

    @extend_schema_field(OrgRefSerializer(many=True))
    def get_path(self, org: Organization) -> list[dict[str, Any]]:
        paths = self.context.get("paths")
        if paths is None:
            return org.path_refs()
        return [{"id": node.pk, "name": node.name} for node in paths[org.pk]]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_capabilities(self, org: Organization) -> list[str]:
        many = self.context.get("capabilities")
        if many is not None:
            return sorted(many[org.pk])
        request = self.context.get("request")
        user = request.user if request is not None else None
        return sorted(policy.capabilities(user, org))


class RequireTwoFactorSerializer(serializers.Serializer):
    required = serializers.BooleanField()
    grace_hours = serializers.IntegerField()
    source = OrgRefField(allow_null=True, help_text="The org whose setting decides; null: the default.")
    enforced_after = serializers.DateTimeField(
        allow_null=True, help_text="From then on, users without a verified second factor are stopped here."
    )


class OrgDetailSerializer(OrgSerializer):
    """One org: also the effective two-factor requirement and where it comes from (a query the lists skip)."""

    require_2fa = serializers.SerializerMethodField()

    @extend_schema_field(RequireTwoFactorSerializer)
    def get_require_2fa(self, org: Organization) -> dict[str, Any]:
        return requirement_at(org).as_dict()


def paths_for(orgs: list[Organization]) -> dict[Any, list[Organization]]:
    """The path of every org in a page (root first), from ONE recursive query over parent links: index lookups by
    primary key, whatever the size of the tree."""
    nodes = {org.pk: org for org in orgs}
    nodes.update((node.pk, node) for node in ancestors_of(orgs))
    paths = {}
    for org in orgs:
        path, node = [], org
        while node is not None:
            path.append(node)
            node = nodes.get(node.parent_id)
        paths[org.pk] = path[::-1]
    return paths


class OrgCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    parent = OrgRefField(help_text="The new organization's parent.")
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class OrgUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    access_inheritance = serializers.ChoiceField(choices=Organization.AccessInheritance.choices, required=False)


class OrgMoveSerializer(serializers.Serializer):
    parent = OrgRefField(help_text="The new parent (in the same tenant, outside the moved subtree).")


class ProjectSerializer(serializers.ModelSerializer):
    org = OrgRefField(source="org_id", read_only=True)

    class Meta:
        model = Project
        fields = ["id", "org", "name", "description", "created_at"]
        read_only_fields = ["id", "org", "created_at"]


class ProjectWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ProjectUpdateSerializer(ProjectWriteSerializer):
    name = serializers.CharField(required=False, max_length=100)


# --------------------------------------------------------------------------------------------------------------


def get_org(request: Request, capability: str, org_id: Any) -> Organization:
    """The live org of a URL, authorized: 404 if missing or invisible, 403 without ``capability``."""
    org = Organization.objects.alive_by_pk(_uuid_or_404(org_id))
    if org is None:
        raise NotFound()
    policy.authorize(request.user, capability, org)
    return org


def _body_parent(request: Request, parent_id: Any) -> Organization:
    """A parent named in a request body: invisible or missing is a field error (the URL's object is visible)."""
    parent = policy.visible(request.user, "org.view", Organization.objects.alive()).filter(pk=parent_id).first()
    if parent is None:
        raise serializers.ValidationError({"parent": ["Organization not found."]})
    return parent


class OrgPageMixin:
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        context = self.get_serializer_context() | {
            "paths": paths_for(page),
            "capabilities": policy.capabilities_of_many(self.request.user, page),
        }
        return self.get_paginated_response(OrgSerializer(page, many=True, context=context).data)


class OrgListView(OrgPageMixin, generics.ListAPIView):
    """Organizations the caller can see, in tree order. Filters: ``parent`` (direct children of), ``search``."""

    serializer_class = OrgSerializer

    def get_queryset(self) -> QuerySet[Organization]:
        queryset = policy.visible(self.request.user, "org.view", Organization.objects.alive())
        parent = self.request.query_params.get("parent")
        if parent:
            queryset = queryset.filter(parent_id=_uuid_or_404(parent))
        search = self.request.query_params.get("search", "").strip()
        if search:
            queryset = queryset.filter(name__icontains=search)
        return queryset.order_by("tree_id", "lft")

    @extend_schema(
        parameters=[
            OpenApiParameter("parent", OpenApiTypes.UUID, description="Only the direct children of this org."),
            OpenApiParameter("search", str, description="Part of the name, case-insensitive."),
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.list(request, *args, **kwargs)

    @extend_schema(request=OrgCreateSerializer, responses={201: OrgSerializer})
    def post(self, request: Request) -> Response:
        data = OrgCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        parent = _body_parent(request, data.validated_data["parent"])
        org = services.create_org(
            actor=request.user,
            parent=parent,
            name=data.validated_data["name"],
            description=data.validated_data.get("description", ""),
        )
        return Response(OrgSerializer(org, context={"request": request}).data, status=status.HTTP_201_CREATED)


class OrgDetailView(APIView):
    serializer_class = OrgDetailSerializer
    versioned = True

    @extend_schema(responses=OrgDetailSerializer)
    def get(self, request: Request, id: Any) -> Response:
        org = get_org(request, "org.view", id)
        return with_etag(Response(OrgDetailSerializer(org, context={"request": request}).data), org)

    @extend_schema(
        request=OrgUpdateSerializer,
        parameters=[DRY_RUN_PARAMETER],
        responses={200: _or_impact("OrgDetailOrImpact", OrgDetailSerializer)},
    )
    def patch(self, request: Request, id: Any) -> Response:
        """Change the name, description or access inheritance. ``?dry_run=true``: the Impact of the change (who
        gains and who loses access where), nothing changed; a change of access inheritance records that Impact's
        summary in its ``org.update`` audit event."""
        dry_run = is_dry_run(request)
        org = get_org(request, "org.manage", id)
        data = OrgUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        if dry_run:
            return impact_response(
                org_changes.preview_update(actor=request.user, org=org, version=if_match(request), **fields)
            )
        if org_changes.is_structural(org, fields):
            org, _ = org_changes.apply_update(actor=request.user, org=org, version=if_match(request), **fields)
        else:
            org = services.update_org(actor=request.user, org=org, version=if_match(request), **fields)
        policy.forget(request.user)
        return with_etag(Response(OrgDetailSerializer(org, context={"request": request}).data), org)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: Any) -> Response:
        org = get_org(request, policy.TENANT_ADMIN, id)
        services.delete_org(actor=request.user, org=org, version=if_match(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class OrgRestoreView(APIView):
    @extend_schema(
        request=None, parameters=[IF_MATCH_PARAMETER], responses={200: OrgSerializer, 412: PRECONDITION_FAILED}
    )
    def post(self, request: Request, id: Any) -> Response:
        """Undo a delete within the restore window (tenant administrators). ``If-Match``: the deleted org's
        version (its ETag when it was deleted, plus one)."""
        org = Organization.objects.deleted().filter(pk=_uuid_or_404(id)).first()
        if org is None or not policy.is_tenant_admin(request.user, org.tenant_id):
            raise NotFound()
        org = services.restore_org(actor=request.user, org=org, version=if_match(request))
        policy.forget(request.user)
        return with_etag(Response(OrgSerializer(org, context={"request": request}).data), org)


class OrgMoveView(APIView):
    @extend_schema(
        request=OrgMoveSerializer,
        parameters=[IF_MATCH_PARAMETER, DRY_RUN_PARAMETER],
        responses={200: _or_impact("OrgOrImpact", OrgSerializer), 412: PRECONDITION_FAILED},
    )
    def post(self, request: Request, id: Any) -> Response:
        """Move the org and its subtree under ``parent`` (409 into its own subtree or another tenant).
        ``If-Match``: the moved org's ETag, refused with 412 if it changed since. ``?dry_run=true``: the Impact
        of the move, refused exactly as the move would be, nothing changed; the move itself records that Impact's
        summary in its ``org.move`` audit event."""
        dry_run = is_dry_run(request)
        org = get_org(request, policy.TENANT_ADMIN, id)
        data = OrgMoveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        parent = _body_parent(request, data.validated_data["parent"])
        if dry_run:
            return impact_response(
                org_changes.preview_move(actor=request.user, org=org, parent=parent, version=if_match(request))
            )
        org, _ = org_changes.apply_move(actor=request.user, org=org, parent=parent, version=if_match(request))
        policy.forget(request.user)
        return with_etag(Response(OrgSerializer(org, context={"request": request}).data), org)


class OrgChildrenView(OrgPageMixin, generics.ListAPIView):
    serializer_class = OrgSerializer
    queryset = Organization.objects.none()  # for the schema; get_queryset() decides

    def get_queryset(self) -> QuerySet[Organization]:
        org = get_org(self.request, "org.view", self.kwargs["id"])
        return org.children.alive().order_by("name")


class TenantListView(generics.ListAPIView):
    """Superusers: every tenant; others: the tenants they administer."""

    serializer_class = TenantSerializer

    def get_queryset(self) -> QuerySet[Tenant]:
        roots = Organization.objects.filter(tenant=OuterRef("pk"), parent__isnull=True).values("pk")[:1]
        return (
            policy.visible(self.request.user, policy.TENANT_ADMIN, Tenant.objects.all())
            .annotate(root_org_id=Subquery(roots))
            .order_by("name")
        )


class TenantUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=200)
    plan = serializers.ChoiceField(choices=Tenant.Plan.choices, required=False)


class TenantDetailView(APIView):
    versioned = True

    @extend_schema(responses=TenantSerializer)
    def get(self, request: Request, id: Any) -> Response:
        tenant = policy.get_for(request.user, policy.TENANT_ADMIN, Tenant.objects.all(), pk=_uuid_or_404(id))
        return with_etag(Response(TenantSerializer(tenant).data), tenant)

    @extend_schema(request=TenantUpdateSerializer, responses=TenantSerializer)
    def patch(self, request: Request, id: Any) -> Response:
        """Tenant administrators rename; only superusers change the plan (403 ``plan_change_forbidden``)."""
        tenant = policy.get_for(request.user, policy.TENANT_ADMIN, Tenant.objects.all(), pk=_uuid_or_404(id))
        data = TenantUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        tenant = services.update_tenant(
            actor=request.user, tenant=tenant, version=if_match(request), **data.validated_data
        )
        return with_etag(Response(TenantSerializer(tenant).data), tenant)


class OrgProjectsView(generics.ListAPIView):
    """Projects of an org: the ones the caller may see."""

    serializer_class = ProjectSerializer
    queryset = Project.objects.none()  # for the schema; get_queryset() decides

    def get_queryset(self) -> QuerySet[Project]:
        org = get_org_for_projects(self.request, self.kwargs["id"])
        return policy.visible(self.request.user, "project.view", org.projects.all()).order_by("name")

    @extend_schema(request=ProjectWriteSerializer, responses={201: ProjectSerializer})
    def post(self, request: Request, id: Any) -> Response:
        org = get_org(request, "project.manage", id)
        data = ProjectWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.create_project(actor=request.user, org=org, **data.validated_data)
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


def get_org_for_projects(request: Request, org_id: Any) -> Organization:
    """The org whose projects are listed: visible with org.view, or holding a project the caller may see."""
    org = Organization.objects.alive().filter(pk=_uuid_or_404(org_id)).first()
    if org is None:
        raise NotFound()
    if policy.can(request.user, "org.view", org):
        return org
    if policy.visible(request.user, "project.view", org.projects.all()).exists():
        return org
    raise NotFound()


def get_project(request: Request, capability: str, project_id: Any) -> Project:
    return policy.get_for(
        request.user,
        capability,
        Project.objects.select_related("org").filter(org__deleted_at__isnull=True),
        pk=_uuid_or_404(project_id),
    )


class ProjectDetailView(APIView):
    versioned = True

    @extend_schema(responses=ProjectSerializer)
    def get(self, request: Request, id: Any) -> Response:
        project = get_project(request, "project.view", id)
        return with_etag(Response(ProjectSerializer(project).data), project)

    @extend_schema(request=ProjectUpdateSerializer, responses=ProjectSerializer)
    def patch(self, request: Request, id: Any) -> Response:
        project = get_project(request, "project.manage", id)
        data = ProjectUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        project = services.update_project(
            actor=request.user, project=project, version=if_match(request), **data.validated_data
        )
        return with_etag(Response(ProjectSerializer(project).data), project)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: Any) -> Response:
        project = get_project(request, "project.manage", id)
        services.delete_project(actor=request.user, project=project, version=if_match(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
