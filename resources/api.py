"""REST API v1 for shared resources (docs/API.md: "Projects and integration tasks", "Shared resources").

Lists of declarations are effective lists (declared here plus inherited), each item saying where it comes from:
``org``, ``inherited``, ``locked``, ``overrides``. Secrets are write-only: no response carries one.
Every view asks the policy: invisible → 404, visible without the capability → 403.

Every declared kind with API URL names and a read serializer (its Faces: resources/serializers.py, or its app's
faces.py) is served by the same two views, ``DeclaredListView`` and ``DeclaredDetailView``, one subclass per kind
made by ``declared_views`` (resources/api_urls.py routes them); writes go through the kind's services
(resources.services.declarations.services_for). What follows them are the kinds' extras: rows and CSV, teams,
versions and a component's own variables, hides, settings, tasks and runs.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access import policy
from access.api_members import TeamRefSerializer, tenant_team, tenant_user
from config import hostile, kinds
from config.concurrency import if_match, with_etag
from config.deprecation import deprecated
from config.errors import NotFound
from config.schema import StaleSerializer
from governance.impact.api import DRY_RUN_PARAMETER, impact_response, is_dry_run
from governance.impact.serializers import ImpactSerializer
from governance.impact.settings_changes import apply_setting, preview_setting
from orgs.api import _uuid_or_404, get_org, get_project
from orgs.models import Organization
from resources import inheritance, services
from resources.models import (
    Component,
    ComponentMember,
    ComponentVersion,
    EnvVar,
    Hidden,
    LookupTable,
    OrgSetting,
    Run,
    RunLogLine,
    Task,
)
from resources.serializers import (
    ORG_SUMMARY,
    ComponentSerializer,
    EnvVarSerializer,
    EnvVarWriteSerializer,
    LogLineSerializer,
    LookupRowSerializer,
    LookupTableSerializer,
    StepResultSerializer,
    StepsField,
    org_summary,
)
from resources.services.declarations import declaration_model, services_for
from resources.services.tasks import SHARE_PERMISSIONS
from resources.settings_registry import REGISTRY, effective_settings
from runtimes.serializers import TaskRuntimeField

# -- shared pieces -------------------------------------------------------------------------------------------------


def effective_page(
    view: generics.GenericAPIView, serializer: type[serializers.Serializer], items: list[Any], **context: Any
) -> Response:
    page = view.paginate_queryset([e.item for e in items])
    context = {"effective": {e.item.pk: e for e in items}, "request": view.request, **context}
    return view.get_paginated_response(serializer(page, many=True, context=context).data)


# A POST that changes a versioned object (a lookup table's import, a component's team, a task's shares) honours
# If-Match like PATCH/PUT/DELETE do (config.schema declares those by itself): the parameter and the 412 stated here.
IF_MATCH_PARAMETER = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description='The ETag of the object as you read it (e.g. "3"): refused with 412 if it changed since.',
)
PRECONDITION_FAILED = OpenApiResponse(
    StaleSerializer, description="If-Match names a version that is no longer current."
)


def get_object(request: Request, capability: str, queryset: Any, object_id: Any) -> Any:
    return policy.get_for(request.user, capability, queryset, pk=_uuid_or_404(object_id))


def _alive(queryset: Any) -> Any:
    return queryset.select_related("org").filter(org__deleted_at__isnull=True)


# -- every declared kind: generic list, create and detail, driven by the registry -----------------------------------


def effective_items(kind: kinds.Kind, org: Organization) -> list[inheritance.Effective]:
    """The effective list of ``kind`` at ``org``, through its read serializer's ``list_queryset`` if it has one."""
    serializer = kinds.faces_of(kind.model).serializer
    narrow = getattr(serializer, "list_queryset", None)
    model = declaration_model(kind.model)
    return inheritance.effective(model, org, narrow(model._default_manager.all()) if narrow else None)


def list_context(kind: kinds.Kind) -> dict[str, Any]:
    return dict(getattr(kinds.faces_of(kind.model).serializer, "list_context", {}))


class DeclaredListView(generics.GenericAPIView):
    """The effective list of a declared kind at an org (declared here and inherited, hidden ones left out), and the
    creation of one there: its view capability to list, its manage capability to create (through the kind's
    services). One class per kind, made by ``declared_views`` from the registry entry and the kind's Faces."""

    kind: kinds.Kind

    def get(self, request: Request, id: Any) -> Response:
        org = get_org(request, self.kind.view, id)
        serializer = kinds.faces_of(self.kind.model).serializer
        assert serializer is not None
        return effective_page(self, serializer, effective_items(self.kind, org), **list_context(self.kind))

    def post(self, request: Request, id: Any) -> Response:
        faces = kinds.faces_of(self.kind.model)
        assert faces.serializer is not None and faces.write_serializer is not None
        org = get_org(request, self.kind.manage, id)
        data = faces.write_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = services_for(self.kind.model).create(actor=request.user, org=org, **data.validated_data)
        return Response(faces.serializer(item, context={"request": request}).data, status=status.HTTP_201_CREATED)


class DeclaredDetailView(APIView):
    """GET, PATCH and DELETE of one declaration: its view capability to read, its manage capability to change
    (through the kind's services). One class per kind, made by ``declared_views``.

    Optimistic concurrency: GET and PATCH answer the object's ``ETag``; PATCH and DELETE pass ``If-Match`` to the
    service, which answers 412 (with the current ETag) when the object changed since the caller read it."""

    versioned = True
    kind: kinds.Kind

    def _get(self, capability: str, id: Any) -> Any:
        related = getattr(kinds.faces_of(self.kind.model).serializer, "detail_related", ())
        queryset = _alive(self.kind.model._default_manager.select_related(*related))
        return get_object(self.request, capability, queryset, id)

    def _out(self, item: Any) -> Response:
        serializer = kinds.faces_of(self.kind.model).serializer
        assert serializer is not None
        return with_etag(Response(serializer(item, context={"request": self.request}).data), item)

    def get(self, request: Request, id: Any) -> Response:
        return self._out(self._get(self.kind.view, id))

    def patch(self, request: Request, id: Any) -> Response:
        faces = kinds.faces_of(self.kind.model)
        item = self._get(self.kind.manage, id)
        body = faces.update_serializer or faces.write_serializer
        assert body is not None
        data = body(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services = services_for(self.kind.model)
        return self._out(
            services.update(actor=request.user, item=item, version=if_match(request), **data.validated_data)
        )

    def delete(self, request: Request, id: Any) -> Response:
        item = self._get(self.kind.manage, id)
        services_for(self.kind.model).delete(actor=request.user, item=item, version=if_match(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


def declared_kinds() -> list[kinds.Kind]:
    """The declared kinds served by the generic views: those with API URL names and a read serializer."""
    return [
        kind
        for kind in kinds.registry.declared()
        if kind.api_list and kind.api_detail and kinds.faces_of(kind.model).serializer is not None
    ]


def api_segment(kind: kinds.Kind) -> str:
    """The path segment of a declared kind's API: its list's URL name without ``api-org-`` (``lookup-tables``)."""
    return kind.api_list.removeprefix("api-org-")


def declared_views(kind: kinds.Kind) -> tuple[type[DeclaredListView], type[DeclaredDetailView]]:
    """The list and detail view classes of ``kind``, documented in the OpenAPI schema with its Faces serializers."""
    faces = kinds.faces_of(kind.model)
    read, write = faces.serializer, faces.write_serializer
    update = faces.update_serializer or write
    assert read is not None and write is not None and update is not None
    name = kind.model.__name__
    list_view = type(
        f"Org{name}ListView",
        (DeclaredListView,),
        {
            "kind": kind,
            "serializer_class": read,
            "queryset": kind.model._default_manager.none(),
            "__module__": __name__,
            "__doc__": f"The effective {kind.label_plural} of an org: declared here and inherited (hidden ones left "
            f"out). Listing needs {kind.view}, creating {kind.manage}.",
        },
    )
    detail_view = type(
        f"{name}DetailView",
        (DeclaredDetailView,),
        {
            "kind": kind,
            "__module__": __name__,
            "__doc__": f"One {kind.label}: {kind.view} to read, {kind.manage} to change or delete. GET and PATCH "
            "answer its ETag; PATCH and DELETE honour If-Match (412 when it changed since).",
        },
    )
    list_view = extend_schema_view(
        get=extend_schema(responses=read(many=True)),
        post=extend_schema(request=write, responses={201: read}),
    )(list_view)
    detail_view = extend_schema_view(
        get=extend_schema(responses=read),
        patch=extend_schema(request=update, responses=read),
        delete=extend_schema(responses={204: None}),
    )(detail_view)
    return list_view, detail_view


# -- lookup tables -------------------------------------------------------------------------------------------------


class LookupTableRowsView(generics.ListAPIView):
    """The rows of a lookup table, paginated (``?search=`` filters keys by prefix): for tables too large for the
    detail's full ``rows``."""

    serializer_class = LookupRowSerializer
    queryset = LookupTable.objects.none()

    @extend_schema(parameters=[OpenApiParameter("search", str, description="Keys starting with this text.")])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        table = get_object(self.request, "lookup.view", _alive(LookupTable.objects), self.kwargs["id"])
        rows = table.rows.order_by("key")
        if search := self.request.query_params.get("search"):
            rows = rows.filter(key__startswith=search)
        return rows


class LookupTableExportView(APIView):
    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, id: Any) -> HttpResponse:
        table = get_object(request, "lookup.view", _alive(LookupTable.objects), id)
        response = HttpResponse(services.export_lookup_csv(table), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{table.name}.csv"'
        return response


class LookupImportSerializer(serializers.Serializer):
    """The import's multipart form: the CSV as a ``file`` (or its text as ``csv``) and the ``mode``."""

    file = serializers.FileField(required=False, help_text="The CSV file: `key,value` per line, optional header.")
    csv = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, help_text="The CSV as text, instead of a file."
    )
    mode = serializers.ChoiceField(choices=["replace", "merge"], default="replace", error_messages={
        "invalid_choice": "Give replace or merge."}, help_text="replace (default): the rows become the CSV's; "
        "merge: the CSV's keys are added or changed, the others kept.")  # fmt: skip


class LookupTableImportView(APIView):
    """Rows from CSV (``key,value`` per line, optional header): a ``file`` upload or a ``csv`` text field of a
    multipart form; ``mode`` is ``replace`` (default) or ``merge``. The schema documents the multipart form only;
    the JSON (and urlencoded) body ``{"csv", "mode"}`` that clients sent before stays accepted, not documented."""

    parser_classes = [hostile.MultiPartParser, hostile.FormParser, hostile.JSONParser]

    @extend_schema(
        request={"multipart/form-data": LookupImportSerializer},
        parameters=[IF_MATCH_PARAMETER],
        responses={200: LookupTableSerializer, 412: PRECONDITION_FAILED},
    )
    def post(self, request: Request, id: Any) -> Response:
        table = get_object(request, "lookup.manage", _alive(LookupTable.objects), id)
        data = LookupImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        mode = data.validated_data["mode"]
        upload = request.FILES.get("file")
        content = upload.read(services.resources.MAX_CSV_BYTES + 1) if upload else data.validated_data.get("csv")
        if not content:
            raise serializers.ValidationError({"file": ["Upload a CSV file (or give its text as “csv”)."]})
        services.import_lookup_csv(
            actor=request.user, table=table, content=content, replace=mode == "replace", version=if_match(request)
        )
        table = LookupTable.objects.select_related("org").get(pk=table.pk)
        return with_etag(Response(LookupTableSerializer(table).data), table)


# -- components ----------------------------------------------------------------------------------------------------


class TeamMemberRefSerializer(serializers.Serializer):
    user = serializers.CharField(help_text="A user of the tenant: id or username.")


class DevTeamMemberSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="user.id")
    username = serializers.CharField(source="user.username")
    email = serializers.EmailField(source="user.email")
    added_at = serializers.DateTimeField(source="created_at")


class VersionSerializer(serializers.ModelSerializer):
    published_by = serializers.CharField(
        source="published_by.username", default=None, read_only=True, allow_null=True,
        help_text="Who pushed it: a username, null when the user is gone.",
    )  # fmt: skip

    class Meta:
        model = ComponentVersion
        fields = ["id", "version", "source", "published_by", "created_at"]
        read_only_fields = ["id", "published_by", "created_at"]


class VersionWriteSerializer(serializers.Serializer):
    """The service checks the version's format and the source's size (field errors)."""

    version = serializers.CharField(required=False, default="", allow_blank=True, trim_whitespace=False)
    source = serializers.CharField(required=False, default="", allow_blank=True, trim_whitespace=False)


class MyComponentsView(generics.ListAPIView):
    """Every component the caller may see: through an org role, or as a development-team member (contractors)."""

    serializer_class = ComponentSerializer
    queryset = Component.objects.none()

    def get_queryset(self) -> Any:
        return policy.visible(self.request.user, "component.view", _alive(Component.objects)).order_by("name", "pk")


def _component(request: Request, capability: str, id: Any) -> Component:
    return get_object(request, capability, _alive(Component.objects), id)


class ComponentTeamView(generics.GenericAPIView):
    """The development team: the only holders of push rights (publishing versions). The team is part of the
    component: answers carry the component's ETag, and a change with a stale If-Match is refused (412)."""

    serializer_class = DevTeamMemberSerializer
    queryset = Component.objects.none()
    versioned = True

    @extend_schema(responses=DevTeamMemberSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        component = _component(request, "component.view", id)
        page = self.paginate_queryset(list(component.members.select_related("user").order_by("user__username")))
        return with_etag(self.get_paginated_response(DevTeamMemberSerializer(page, many=True).data), component)

    @extend_schema(
        request=TeamMemberRefSerializer,
        parameters=[IF_MATCH_PARAMETER],
        responses={201: DevTeamMemberSerializer, 412: PRECONDITION_FAILED},
    )
    def post(self, request: Request, id: Any) -> Response:
        component = _component(request, "component.manage", id)
        data = TeamMemberRefSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = tenant_user(component.org, data.validated_data["user"])
        member = services.add_component_member(
            actor=request.user, component=component, user=user, version=if_match(request)
        )
        response = Response(DevTeamMemberSerializer(member).data, status=status.HTTP_201_CREATED)
        return with_etag(response, member.component)

    # A DELETE with a body: generated clients and some proxies drop it. The path form replaces it (#15).
    @deprecated(sunset=date(2027, 6, 1), link="/api/v1/docs/#/components/removeComponentTeamMember")
    @extend_schema(request=TeamMemberRefSerializer, responses={204: None})
    def delete(self, request: Request, id: Any) -> Response:
        """The user named in the body: kept for older clients; DELETE /components/{id}/team/{user_id} names the
        user in the path."""
        component = _component(request, "component.manage", id)
        data = TeamMemberRefSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = tenant_user(component.org, data.validated_data["user"])
        services.remove_component_member(actor=request.user, component=component, user=user, version=if_match(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ComponentTeamMemberView(APIView):
    """One member of a component's development team. Removing them changes the component: If-Match is the
    component's ETag (412 when it changed since)."""

    versioned = True

    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: Any, user_id: Any) -> Response:
        component = _component(request, "component.manage", id)
        member = ComponentMember.objects.filter(component=component, user_id=user_id).select_related("user").first()
        if member is None:
            raise NotFound("Not on the development team.")
        services.remove_component_member(
            actor=request.user, component=component, user=member.user, version=if_match(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ComponentVersionsView(generics.GenericAPIView):
    serializer_class = VersionSerializer
    queryset = ComponentVersion.objects.none()

    @extend_schema(responses=VersionSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        component = _component(request, "component.view", id)
        page = self.paginate_queryset(component.versions.select_related("published_by").order_by("-created_at"))
        return self.get_paginated_response(VersionSerializer(page, many=True).data)

    @extend_schema(request=VersionWriteSerializer, responses={201: VersionSerializer})
    def post(self, request: Request, id: Any) -> Response:
        component = _component(request, "component.view", id)
        data = VersionWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        published = services.publish_version(actor=request.user, component=component, **data.validated_data)
        return Response(VersionSerializer(published).data, status=status.HTTP_201_CREATED)


class ComponentEnvVarsView(generics.GenericAPIView):
    serializer_class = EnvVarSerializer
    queryset = EnvVar.objects.none()

    @extend_schema(responses=EnvVarSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        component = _component(request, "component.view", id)
        variables = component.env_vars.select_related("org", "component").order_by("key")
        page = self.paginate_queryset(policy.visible(request.user, "envvar.view", variables))
        return self.get_paginated_response(EnvVarSerializer(page, many=True).data)

    @extend_schema(request=EnvVarWriteSerializer, responses={201: EnvVarSerializer})
    def post(self, request: Request, id: Any) -> Response:
        component = _component(request, "component.view", id)
        data = EnvVarWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        data.validated_data.pop("locked", None)
        variable = services.create_env_var(actor=request.user, component=component, **data.validated_data)
        return Response(EnvVarSerializer(variable).data, status=status.HTTP_201_CREATED)


# -- hidden items, settings, effective configuration ---------------------------------------------------------------


def hide_choices() -> list[tuple[str, str]]:
    """Every hideable kind of the registry: this app's, in their usual order, then any other app's (a runtime)."""
    known = list(Hidden.Kind.choices)
    return known + [(key, kind.label) for key, kind in kinds.registry.hideable().items() if key not in Hidden.Kind]


class HiddenSerializer(serializers.ModelSerializer):
    type = serializers.ChoiceField(source="kind", choices=Hidden.Kind.choices, help_text="The kind of item hidden.")

    class Meta:
        model = Hidden
        fields = ["id", "type", "name", "created_at"]
        read_only_fields = ["id", "created_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["type"]
        assert isinstance(field, serializers.ChoiceField)
        field.choices = hide_choices()  # read when used, like HideSerializer's


class HideSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=Hidden.Kind.choices)
    name = serializers.CharField(max_length=100, error_messages={"blank": "This field is required."})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = hide_choices()  # read when used: kinds register at start-up, a test's throwaway kind later
        field = self.fields["type"]
        assert isinstance(field, serializers.ChoiceField)
        field.choices = choices
        field.error_messages["invalid_choice"] = f"Give one of: {', '.join(k for k, _ in choices)}."


class OrgHiddenView(generics.GenericAPIView):
    """Inherited items this org hides from itself and its subtree."""

    serializer_class = HiddenSerializer
    queryset = Hidden.objects.none()

    @extend_schema(responses=HiddenSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        org = get_org(request, "org.view", id)
        page = self.paginate_queryset(services.hidden_here(org))
        return self.get_paginated_response(HiddenSerializer(page, many=True).data)

    @extend_schema(request=HideSerializer, responses={201: HiddenSerializer})
    def post(self, request: Request, id: Any) -> Response:
        org = get_org(request, "org.view", id)
        data = HideSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        hidden = services.hide(
            actor=request.user, org=org, kind=data.validated_data["type"], name=data.validated_data["name"]
        )
        return Response(HiddenSerializer(hidden).data, status=status.HTTP_201_CREATED)


class HiddenDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: Any) -> Response:
        hidden = Hidden.objects.select_related("org").filter(pk=_uuid_or_404(id), org__deleted_at__isnull=True).first()
        if hidden is None or not policy.can(request.user, "org.view", hidden.org):
            raise NotFound()
        services.unhide(actor=request.user, hidden=hidden)
        return Response(status=status.HTTP_204_NO_CONTENT)


# A setting's value: its type depends on the key (the setting's ``type``), so the schema says each type it can be.
SETTING_TYPES = {
    "bool": "true or false",
    "int": "a whole number (each key has its range)",
    "str": "a text, or null",
    "domains": "a list of e-mail domains (empty: any)",
    "runtimes": "a list of runtime names (empty: any)",
    "two_factor": '{"required": true or false, "grace_hours": 0 to 720}',
}
SETTING_VALUE: dict[str, Any] = {
    "description": "The value; its type follows the setting's `type`: "
    + "; ".join(f"`{name}`: {meaning}" for name, meaning in SETTING_TYPES.items())
    + ".",
    "nullable": True,
    "oneOf": [
        {"type": "boolean"},
        {"type": "integer"},
        {"type": "string"},
        {"type": "array", "items": {"type": "string"}},
        {
            "type": "object",
            "properties": {"required": {"type": "boolean"}, "grace_hours": {"type": "integer", "minimum": 0}},
            "required": ["required", "grace_hours"],
        },
    ],
}
SETTING_INPUT: dict[str, Any] = {
    **SETTING_VALUE,
    "description": SETTING_VALUE["description"] + " A text in the console's words is accepted too (e.g. "
    '"on", "10", "example.com, example.org", "true, 24"); null resets a text setting.',
}


@extend_schema_field(SETTING_VALUE)
class SettingValueField(serializers.JSONField):
    pass


@extend_schema_field(SETTING_INPUT)
class SettingInputField(serializers.JSONField):
    pass


class SettingSerializer(serializers.Serializer):
    key = serializers.CharField(source="spec.key")
    label = serializers.CharField(source="spec.label")
    help = serializers.CharField(source="spec.help")
    type = serializers.ChoiceField(source="spec.type", choices=list(SETTING_TYPES), help_text="The value's type.")
    value = SettingValueField(help_text="The effective value.")
    default = SettingValueField(source="spec.default", help_text="The value where none is set.")
    source = serializers.ChoiceField(
        choices=["default", "here", "inherited"],
        help_text="default: nobody set it; here: set at this org; inherited: set at an org above.",
    )
    org = serializers.SerializerMethodField()
    inherited = serializers.BooleanField()
    locked = serializers.BooleanField()

    @extend_schema_field({**ORG_SUMMARY, "nullable": True, "description": "Where the value is set (null: default)."})
    def get_org(self, setting: Any) -> dict[str, Any] | None:
        return org_summary(setting.org) if setting.org is not None else None


class SettingWriteSerializer(serializers.Serializer):
    value = SettingInputField(allow_null=True)
    locked = serializers.BooleanField(required=False, default=False)


class OrgSettingsView(generics.GenericAPIView):
    """Every registered setting at the org, with its value and where it comes from (paginated, in the registry's
    order)."""

    serializer_class = SettingSerializer
    queryset = OrgSetting.objects.none()

    @extend_schema(responses=SettingSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        org = get_org(request, "org.view", id)
        page = self.paginate_queryset(effective_settings(org))
        return self.get_paginated_response(SettingSerializer(page, many=True).data)


class OrgSettingDetailView(APIView):
    """One setting at an org. Its ETag is the version of the value set at this org, ``"0"`` when none is (the
    value is inherited or the default): PUT and DELETE with a stale If-Match answer 412, and ``If-Match: "0"`` on
    a PUT sets the value only if nobody set one here in the meantime."""

    versioned = True

    def _setting(self, org: Organization, key: str) -> Response:
        setting = next(s for s in effective_settings(org) if s.spec.key == key)
        response = Response(SettingSerializer(setting).data)
        response["ETag"] = f'"{services.setting_version(org, key)}"'
        return response

    @extend_schema(responses=SettingSerializer)
    def get(self, request: Request, id: Any, key: str) -> Response:
        org = get_org(request, "org.view", id)
        if key not in REGISTRY:
            raise NotFound(f"Unknown setting “{key}”.")
        return self._setting(org, key)

    @extend_schema(
        request=SettingWriteSerializer,
        parameters=[DRY_RUN_PARAMETER],
        responses={200: PolymorphicProxySerializer("SettingOrImpact", [SettingSerializer, ImpactSerializer], None)},
    )
    def put(self, request: Request, id: Any, key: str) -> Response:
        """Set the value at this org; ``locked: true`` locks it for every org below (refused, 409
        ``overridden_below``, while orgs below set their own). ``dry_run=true``: 200 with the Impact instead (the
        orgs whose value changes, from what to what, the orgs that become locked), refused as the change itself would
        be, nothing written."""
        dry_run = is_dry_run(request)
        org = get_org(request, "policy.manage", id)
        if key not in REGISTRY:
            raise NotFound(f"Unknown setting “{key}”.")
        data = SettingWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if dry_run:
            fields = data.validated_data
            impact = preview_setting(actor=request.user, org=org, key=key, version=if_match(request), **fields)
            return impact_response(impact)
        apply_setting(actor=request.user, org=org, key=key, version=if_match(request), **data.validated_data)
        return self._setting(org, key)

    @extend_schema(responses={200: SettingSerializer})
    def delete(self, request: Request, id: Any, key: str) -> Response:
        org = get_org(request, "policy.manage", id)
        if key not in REGISTRY:
            raise NotFound(f"Unknown setting “{key}”.")
        services.reset_setting(actor=request.user, org=org, key=key, version=if_match(request))
        return self._setting(org, key)


def effective_config_serializer() -> type[serializers.Serializer]:
    """The effective configuration's body: the settings, every declared kind's effective list under its segment
    (``lookup_tables``, …; absent when the caller may not view that kind) and the hidden items."""
    fields: dict[str, Any] = {
        "settings": SettingSerializer(many=True, help_text="Every setting, as GET /orgs/{id}/settings gives them.")
    }
    for kind in declared_kinds():
        serializer = kinds.faces_of(kind.model).serializer
        assert serializer is not None
        fields[api_segment(kind).replace("-", "_")] = serializer(
            many=True, required=False, help_text=f"The effective {kind.label_plural} (absent without {kind.view})."
        )
    fields["hidden"] = HiddenSerializer(many=True, help_text="The inherited items this org hides.")
    return type("EffectiveConfigSerializer", (serializers.Serializer,), {**fields, "__module__": __name__})


class EffectiveConfigView(APIView):
    """Every setting and every shared resource the caller may see at this org, with source and lock state."""

    @extend_schema(responses=effective_config_serializer())
    def get(self, request: Request, id: Any) -> Response:
        org = get_org(request, "org.view", id)
        result: dict[str, Any] = {"settings": SettingSerializer(effective_settings(org), many=True).data}
        for kind in declared_kinds():
            if not policy.can(request.user, kind.view, org):
                continue
            items = effective_items(kind, org)
            context = {"effective": {e.item.pk: e for e in items}, "request": request, **list_context(kind)}
            serializer = kinds.faces_of(kind.model).serializer
            assert serializer is not None
            result[api_segment(kind).replace("-", "_")] = serializer(
                [e.item for e in items], many=True, context=context
            ).data
        result["hidden"] = HiddenSerializer(services.hidden_here(org), many=True).data
        return Response(result)


# -- tasks, shares and runs ----------------------------------------------------------------------------------------


class TaskSerializer(serializers.ModelSerializer):
    project = serializers.UUIDField(source="project_id", read_only=True)
    steps = StepsField(read_only=True)
    runtime = serializers.UUIDField(
        source="runtime_id", read_only=True, allow_null=True, help_text="null: the default runtime when it runs."
    )

    class Meta:
        model = Task
        fields = [
            "id", "project", "name", "description", "steps", "runtime", "retry_on_lost", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class TaskWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    steps = StepsField(required=False)
    runtime = TaskRuntimeField(required=False)
    retry_on_lost = serializers.BooleanField(required=False)


class TaskUpdateSerializer(TaskWriteSerializer):
    name = serializers.CharField(max_length=100, required=False)


def _tasks() -> Any:
    return Task.objects.select_related("project__org").filter(project__org__deleted_at__isnull=True)


class ProjectTasksView(generics.ListAPIView):
    serializer_class = TaskSerializer
    queryset = Task.objects.none()

    def get_queryset(self) -> Any:
        project = get_project(self.request, "project.view", self.kwargs["id"])
        return policy.visible(self.request.user, "task.view", _tasks().filter(project=project)).order_by("name")

    @extend_schema(request=TaskWriteSerializer, responses={201: TaskSerializer})
    def post(self, request: Request, id: Any) -> Response:
        project = get_project(request, "task.create", id)
        data = TaskWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        task = services.create_task(actor=request.user, project=project, **data.validated_data)
        return Response(TaskSerializer(task).data, status=status.HTTP_201_CREATED)


def _task(request: Request, capability: str, id: Any) -> Task:
    return get_object(request, capability, _tasks(), id)


class TaskDetailView(APIView):
    """A task; GET and PATCH answer its ETag, PATCH and DELETE honour If-Match (412 when it changed since)."""

    versioned = True

    @extend_schema(responses=TaskSerializer)
    def get(self, request: Request, id: Any) -> Response:
        task = _task(request, "task.view", id)
        return with_etag(Response(TaskSerializer(task).data), task)

    @extend_schema(request=TaskUpdateSerializer, responses=TaskSerializer)
    def patch(self, request: Request, id: Any) -> Response:
        task = _task(request, "task.edit", id)
        data = TaskUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        task = services.update_task(actor=request.user, task=task, version=if_match(request), **data.validated_data)
        return with_etag(Response(TaskSerializer(task).data), task)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: Any) -> Response:
        services.delete_task(actor=request.user, task=_task(request, "task.delete", id), version=if_match(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ShareUserSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    username = serializers.CharField()


SHARE_LEVEL_HELP = "view: see it and its runs; run: also run it; edit: also change it."


class ShareSerializer(serializers.Serializer):
    """A share of a task, with a user or with a team (the other one is null)."""

    id = serializers.UUIDField()
    user = ShareUserSerializer(allow_null=True)
    team = TeamRefSerializer(allow_null=True)
    permission = serializers.ChoiceField(choices=list(SHARE_PERMISSIONS), help_text=SHARE_LEVEL_HELP)


class ShareCreateSerializer(serializers.Serializer):
    user = serializers.CharField(required=False, help_text="A user of the tenant: id or username.")
    team = serializers.UUIDField(required=False)
    permission = serializers.ChoiceField(choices=list(SHARE_PERMISSIONS), help_text=SHARE_LEVEL_HELP)


class TaskSharesView(generics.GenericAPIView):
    """Who the task is shared with (paginated: users first, then teams). Sharing changes the task: a POST honours
    If-Match (the task's ETag)."""

    serializer_class = ShareSerializer
    queryset = Task.objects.none()

    @extend_schema(responses=ShareSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        task = _task(request, "task.view", id)
        page = self.paginate_queryset(services.shares_of(task))
        return self.get_paginated_response(ShareSerializer(page, many=True).data)

    @extend_schema(
        request=ShareCreateSerializer,
        parameters=[IF_MATCH_PARAMETER],
        responses={201: ShareSerializer, 412: PRECONDITION_FAILED},
    )
    def post(self, request: Request, id: Any) -> Response:
        task = _task(request, "task.share", id)
        data = ShareCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org = task.project.org
        holder = {}
        if data.validated_data.get("user") is not None:
            holder["user"] = tenant_user(org, data.validated_data["user"])
        if data.validated_data.get("team") is not None:
            holder["team"] = tenant_team(org, data.validated_data["team"], request.user)
        share = services.share_task(
            actor=request.user, task=task, permission=data.validated_data["permission"], version=if_match(request),
            **holder,
        )  # fmt: skip
        shown = next(s for s in services.shares_of(task) if s["id"] == share.pk)
        return with_etag(Response(ShareSerializer(shown).data, status=status.HTTP_201_CREATED), share.content_object)


class TaskShareDetailView(APIView):
    """Removing a share changes the task: If-Match is the task's ETag."""

    versioned = True

    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: Any, share_id: Any) -> Response:
        task = _task(request, "task.share", id)
        services.unshare_task(actor=request.user, task=task, share_id=_uuid_or_404(share_id), version=if_match(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RunSerializer(serializers.ModelSerializer):
    task = serializers.UUIDField(source="task_id", read_only=True)
    requested_by = serializers.CharField(
        source="requested_by.username", default=None, read_only=True, allow_null=True,
        help_text="Who ran it: a username, null when the system did (or the user is gone).",
    )  # fmt: skip
    runtime = serializers.UUIDField(
        source="runtime_id", read_only=True, allow_null=True, help_text="The runtime it was placed on (null: gone)."
    )
    runtime_name = serializers.CharField(read_only=True, help_text="Kept when the runtime is deleted.")
    step_results = StepResultSerializer(many=True, read_only=True, help_text="As the runtime reported them.")
    log_location = serializers.CharField(
        read_only=True, help_text="Sovereign runs: where the runtime keeps the log (Canopy holds no log text)."
    )

    class Meta:
        model = Run
        fields = ["id", "task", "status", "error", "requested_by", "created_at", "started_at", "finished_at",
                  "runtime", "runtime_name", "sovereign", "attempt", "claimed_at", "step_results",
                  "log_location"]  # fmt: skip
        read_only_fields = fields


def _runs() -> Any:
    return Run.objects.select_related("task__project__org", "requested_by").filter(
        task__project__org__deleted_at__isnull=True
    )


class TaskRunView(APIView):
    @extend_schema(request=None, responses={201: RunSerializer})
    def post(self, request: Request, id: Any) -> Response:
        run = services.run_task(actor=request.user, task=_task(request, "task.run", id))
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)


class TaskRunsView(generics.ListAPIView):
    serializer_class = RunSerializer
    queryset = Run.objects.none()

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=[s for s, _ in Run.Status.choices])])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        task = _task(self.request, "task.view", self.kwargs["id"])
        runs = _runs().filter(task=task).order_by("-created_at")
        if status_filter := self.request.query_params.get("status"):
            if status_filter not in Run.Status.values:
                raise serializers.ValidationError({"status": [f"Give one of: {', '.join(Run.Status.values)}."]})
            runs = runs.filter(status=status_filter)
        return runs


def _run(request: Request, capability: str, id: Any) -> Run:
    return get_object(request, capability, _runs(), id)


class RunDetailView(APIView):
    @extend_schema(responses=RunSerializer)
    def get(self, request: Request, id: Any) -> Response:
        return Response(RunSerializer(_run(request, "task.view", id)).data)


class RunStopView(APIView):
    @extend_schema(request=None, responses=RunSerializer)
    def post(self, request: Request, id: Any) -> Response:
        run = services.stop_run(actor=request.user, run=_run(request, "task.run", id))
        return Response(RunSerializer(run).data)


class RunLogsView(generics.ListAPIView):
    """The run's log lines in order; ``after`` (a seq) gives only the lines after it — what a live tail polls."""

    serializer_class = LogLineSerializer
    queryset = RunLogLine.objects.none()

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "after", int, description="Only the lines whose seq is greater (a live tail passes the last it has)."
            )
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        run = _run(self.request, "task.view", self.kwargs["id"])
        lines = run.log_lines.order_by("seq")
        if (after := self.request.query_params.get("after")) is not None:
            try:
                seq = int(after)
            except ValueError:
                raise serializers.ValidationError({"after": ["Give a whole number (a line's seq)."]}) from None
            if not 0 <= seq < 2**31:
                raise serializers.ValidationError({"after": ["Give a line's seq (0 or more)."]})
            lines = lines.filter(seq__gt=seq)
        return lines
