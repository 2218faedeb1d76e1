"""REST API v1 for runtimes (docs/API.md "Runtimes").

Custom views rather than the generic declared-kind ones (resources/api.py): an org's runtime list holds global
runtimes too (no org: not in ``resources.inheritance.effective``), a detail may be a global runtime, and creation
answers a one-time enrollment token. So no API serializers are registered for Runtime in the kind registry.

Every view asks the policy: a runtime (or org) the caller may not see is 404, whoever sees it without
``runtime.manage`` gets 403; global runtimes are written by superusers only.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access import policy
from config.concurrency import if_match, with_etag
from config.errors import Forbidden
from orgs.api import _uuid_or_404, get_org
from runtimes import selectors, services
from runtimes.models import Runtime, RuntimeInstance
from runtimes.serializers import (
    CreatedRuntimeSerializer,
    EnrollmentSerializer,
    GlobalRuntimeWriteSerializer,
    InstanceSerializer,
    LocalRuntimeWriteSerializer,
    RevokeSerializer,
    RuntimeSerializer,
    RuntimeUpdateSerializer,
)


def runtimes_queryset() -> Any:
    """Runtimes that exist for the API: global ones and local ones of live orgs."""
    return Runtime.objects.select_related("org").exclude(org__deleted_at__isnull=False)


def get_runtime(request: Request, capability: str, id: Any) -> Runtime:
    return policy.get_for(request.user, capability, runtimes_queryset(), pk=_uuid_or_404(id))


def created_body(request: Request, enrollment: services.Enrollment, at: Any = None) -> dict[str, Any]:
    row = selectors.row_for(enrollment.runtime, at)
    return {
        **RuntimeSerializer(row, context={"request": request}).data,
        "enrollment_token": enrollment.raw,
        "enrollment_token_expires_at": enrollment.token.expires_at,
        "command": enrollment.command,
    }


class OrgRuntimesView(generics.GenericAPIView):
    """The runtimes usable in an org: its effective local runtimes (declared here or inherited, hides honoured) and
    the global runtimes offered to its tenant (minus hidden and shadowed ones), with status. Listing needs
    runtime.view; creating a local runtime runtime.manage (Admin): the answer carries a one-time enrollment token
    and the command starting an agent with it, shown once."""

    serializer_class = RuntimeSerializer
    queryset = Runtime.objects.none()

    @extend_schema(responses=RuntimeSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        org = get_org(request, "runtime.view", id)
        rows = selectors.effective_runtimes(org, viewer=request.user)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(RuntimeSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(request=LocalRuntimeWriteSerializer, responses={201: CreatedRuntimeSerializer})
    def post(self, request: Request, id: Any) -> Response:
        org = get_org(request, "runtime.manage", id)
        data = LocalRuntimeWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        enrollment = services.create_local_runtime(actor=request.user, org=org, **data.validated_data)
        return Response(created_body(request, enrollment, org), status=status.HTTP_201_CREATED)


class GlobalRuntimesView(APIView):
    """Superusers: create a global runtime, offered to every tenant (``"all"``) or to the listed ones; the answer
    carries its first enrollment token and the agent command, shown once."""

    @extend_schema(request=GlobalRuntimeWriteSerializer, responses={201: CreatedRuntimeSerializer})
    def post(self, request: Request) -> Response:
        if not policy.access_for(request.user).is_superuser:
            raise Forbidden("Only a superuser creates global runtimes.", code="superuser_only")
        data = GlobalRuntimeWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        fields.pop("kind", None)
        enrollment = services.create_global_runtime(actor=request.user, **fields)
        return Response(created_body(request, enrollment), status=status.HTTP_201_CREATED)


class RuntimeDetailView(APIView):
    """One runtime: runtime.view to read, runtime.manage to change (rename, labels, region, pause, sovereign …) or
    delete (409 ``runtime_busy`` while it has active runs). GET and PATCH answer its ETag; PATCH and DELETE honour
    If-Match (412 when it changed since)."""

    versioned = True

    def _out(self, request: Request, runtime: Runtime) -> Response:
        row = selectors.row_for(runtime)
        return with_etag(Response(RuntimeSerializer(row, context={"request": request}).data), runtime)

    @extend_schema(responses=RuntimeSerializer)
    def get(self, request: Request, id: Any) -> Response:
        return self._out(request, get_runtime(request, "runtime.view", id))

    @extend_schema(request=RuntimeUpdateSerializer, responses=RuntimeSerializer)
    def patch(self, request: Request, id: Any) -> Response:
        runtime = get_runtime(request, "runtime.manage", id)
        data = RuntimeUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        runtime = services.update_runtime(
            actor=request.user, runtime=runtime, version=if_match(request), **data.validated_data
        )
        return self._out(request, runtime)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: Any) -> Response:
        runtime = get_runtime(request, "runtime.manage", id)
        services.delete_runtime(actor=request.user, runtime=runtime, version=if_match(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RuntimeEnrollmentTokensView(APIView):
    """Another one-time enrollment token (1 h, single use) and the agent command: shown once."""

    @extend_schema(request=None, responses={201: EnrollmentSerializer})
    def post(self, request: Request, id: Any) -> Response:
        runtime = get_runtime(request, "runtime.manage", id)
        enrollment = services.new_enrollment_token(actor=request.user, runtime=runtime)
        return Response(EnrollmentSerializer(enrollment).data, status=status.HTTP_201_CREATED)


class RuntimeRevokeView(APIView):
    """Revoke every agent token of the runtime (and its unused enrollment tokens): the next agent call is 401."""

    @extend_schema(request=None, responses=RevokeSerializer)
    def post(self, request: Request, id: Any) -> Response:
        runtime = get_runtime(request, "runtime.manage", id)
        revoked = services.revoke(actor=request.user, runtime=runtime)
        return Response(RevokeSerializer({"revoked": revoked}).data)


class RuntimeInstancesView(generics.GenericAPIView):
    """The agent processes of a runtime, most recently heard first."""

    serializer_class = InstanceSerializer
    queryset = RuntimeInstance.objects.none()

    @extend_schema(responses=InstanceSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        runtime = get_runtime(request, "runtime.view", id)
        page = self.paginate_queryset(selectors.instances_of(runtime))
        return self.get_paginated_response(InstanceSerializer(page, many=True).data)
