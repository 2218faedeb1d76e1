"""API of single sign-on per tenant (docs ../shared/API.md "Identity"): the tenant's IdP, its e-mail domains,
enforcement and the break-glass codes. Tenant administrators only: anyone else gets 404 for the tenant (and for
its domains), whoever they are elsewhere.

Thin like every face: fetch and authorize through the policy, write through identity.services (which check again,
validate, audit and invalidate the enforcement cache). The client secret is write-only: answers say whether one is
stored, never what it is."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access import policy
from access.models import TenantMembership
from config.concurrency import if_match, with_etag
from config.errors import NotFound
from config.schema import OrgRefField
from identity import oidc, services
from identity.models import Domain, TenantSSO
from orgs.api import _uuid_or_404
from orgs.models import Tenant


def redirect_uri(request: HttpRequest) -> str:
    """The absolute callback URL to register at the IdP: the one the sign-in flow sends (built from SITE_URL, never
    from the request's Host header, so that both always agree)."""
    return oidc.redirect_uri()


def get_tenant(request: Request, id: Any) -> Tenant:
    """The tenant if the caller administers it (404 otherwise, 403 ``sso_required`` behind an SSO fence)."""
    return policy.get_for(request.user, policy.TENANT_ADMIN, Tenant.objects.all(), pk=_uuid_or_404(id))


def get_domain(request: Request, id: Any) -> Domain:
    domain = Domain.objects.select_related("tenant").filter(pk=_uuid_or_404(id)).first()
    if domain is None:
        raise NotFound()
    policy.authorize(request.user, policy.TENANT_ADMIN, domain.tenant)
    return domain


# -- the identity provider -----------------------------------------------------------------------------------------


class GroupRoleSerializer(serializers.Serializer):
    group = serializers.CharField(max_length=200, help_text="The group's name as the IdP sends it.")
    role = serializers.CharField(max_length=50, help_text="A role key available at the org (admin, integrator, …).")
    org = OrgRefField(required=False, allow_null=True, help_text="Where the role is given (default: root).")


class SSOSerializer(serializers.Serializer):
    configured = serializers.BooleanField()
    protocol = serializers.ChoiceField(choices=TenantSSO.Protocol.choices)
    issuer = serializers.CharField(allow_null=True)
    client_id = serializers.CharField(allow_null=True)
    client_secret_set = serializers.BooleanField(help_text="A client secret is stored (it is never shown).")
    scopes = serializers.CharField(allow_null=True)
    groups_claim = serializers.CharField(allow_null=True)
    default_role = serializers.CharField(allow_null=True, help_text="Key of the role new members get.")
    default_org = OrgRefField(allow_null=True, help_text="Where new members get the default role (null: the root).")
    group_roles = GroupRoleSerializer(many=True)
    remove_unmapped_roles = serializers.BooleanField()
    enforced = serializers.BooleanField()
    changed_at = serializers.DateTimeField(allow_null=True)
    tested_at = serializers.DateTimeField(allow_null=True)
    tested_since_change = serializers.BooleanField(help_text="Enforcement can be enabled only when true.")
    redirect_uri = serializers.CharField(help_text="Register this callback URL at the identity provider.")


class SSOWriteSerializer(serializers.Serializer):
    protocol = serializers.ChoiceField(choices=TenantSSO.Protocol.choices, required=False)
    issuer = serializers.CharField(max_length=500)
    client_id = serializers.CharField(max_length=255)
    client_secret = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, write_only=True,
        help_text="Write-only. Omitted or blank: the stored secret is kept (required the first time).",
    )  # fmt: skip
    scopes = serializers.CharField(max_length=500, required=False, help_text="Space-separated; must include openid.")
    groups_claim = serializers.CharField(max_length=100, required=False, allow_blank=True)
    default_role = serializers.CharField(max_length=50, required=False, allow_null=True, allow_blank=True)
    default_org = OrgRefField(required=False, allow_null=True)
    group_roles = GroupRoleSerializer(many=True, required=False, help_text="Replaces every mapping.")
    remove_unmapped_roles = serializers.BooleanField(required=False)
    enforced = serializers.BooleanField(
        required=False, help_text="true: 409 sso_untested unless a test sign-in completed since the last change."
    )


def sso_data(request: HttpRequest, sso: TenantSSO | None) -> dict[str, Any]:
    if sso is None:
        return {
            "configured": False, "protocol": TenantSSO.Protocol.OIDC, "issuer": None, "client_id": None,
            "client_secret_set": False, "scopes": None, "groups_claim": None, "default_role": None,
            "default_org": None, "group_roles": [], "remove_unmapped_roles": False, "enforced": False,
            "changed_at": None, "tested_at": None, "tested_since_change": False, "redirect_uri": redirect_uri(request),
        }  # fmt: skip
    return {
        "configured": True,
        "protocol": sso.protocol,
        "issuer": sso.issuer,
        "client_id": sso.client_id,
        "client_secret_set": bool(sso.client_secret_ciphertext),
        "scopes": sso.scopes,
        "groups_claim": sso.groups_claim,
        "default_role": sso.default_role.key if sso.default_role else None,
        "default_org": sso.default_org_id,
        "group_roles": [{"group": g.group, "role": g.role.key, "org": g.org_id} for g in sso.group_roles.all()],
        "remove_unmapped_roles": sso.remove_unmapped_roles,
        "enforced": sso.enforced,
        "changed_at": sso.changed_at,
        "tested_at": sso.tested_at,
        "tested_since_change": sso.tested_since_change,
        "redirect_uri": redirect_uri(request),
    }


def _sso_response(request: Request, sso: TenantSSO | None) -> Response:
    response = Response(SSOSerializer(sso_data(request, sso)).data)
    return with_etag(response, sso) if sso is not None else response


class TenantSSOView(APIView):
    versioned = True

    @extend_schema(responses=SSOSerializer)
    def get(self, request: Request, id: Any) -> Response:
        """The tenant's IdP configuration (the secret never shown); ``configured: false`` with the
        ``redirect_uri`` to register at the IdP before anything is configured."""
        return _sso_response(request, services.sso_of(get_tenant(request, id)))

    @extend_schema(request=SSOWriteSerializer, responses=SSOSerializer)
    def put(self, request: Request, id: Any) -> Response:
        """Configure the IdP (the whole configuration; ``group_roles`` replaces every mapping). A change of what a
        sign-in depends on requires a new test sign-in before enforcement can be enabled again."""
        tenant = get_tenant(request, id)
        data = SSOWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        enforced = values.pop("enforced", None)
        values.pop("protocol", None)
        with transaction.atomic():  # a refused enforcement keeps the configuration as it was too
            sso = services.put_sso(actor=request.user, tenant=tenant, data=values, version=if_match(request))
            if enforced is not None:
                sso = services.set_enforced(actor=request.user, tenant=tenant, enforced=enforced, version=sso.version)
        return _sso_response(request, sso)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: Any) -> Response:
        """Remove the IdP configuration, its group mappings and enforcement (linked identities stay)."""
        services.delete_sso(actor=request.user, tenant=get_tenant(request, id), version=if_match(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- domains -------------------------------------------------------------------------------------------------------


class DomainSerializer(serializers.ModelSerializer):
    verified = serializers.BooleanField(read_only=True)
    txt_record = serializers.CharField(read_only=True, help_text="Publish this TXT record at the domain to verify it.")

    class Meta:
        model = Domain
        fields = ["id", "domain", "verified", "verified_at", "txt_record", "created_at"]
        read_only_fields = fields


class DomainCreateSerializer(serializers.Serializer):
    domain = serializers.CharField(max_length=253, help_text="e.g. example.com")


class TenantDomainsView(generics.GenericAPIView):
    """The tenant's claimed e-mail domains."""

    serializer_class = DomainSerializer
    queryset = Tenant.objects.none()  # for the schema's path parameter; the view decides

    @extend_schema(responses=DomainSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        page = self.paginate_queryset(services.domains_of(get_tenant(request, id)))
        return self.get_paginated_response(DomainSerializer(page, many=True).data)

    @extend_schema(request=DomainCreateSerializer, responses={201: DomainSerializer})
    def post(self, request: Request, id: Any) -> Response:
        """Claim a domain (409 ``domain_taken`` when another tenant verified it)."""
        tenant = get_tenant(request, id)
        data = DomainCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        domain = services.claim_domain(actor=request.user, tenant=tenant, domain=data.validated_data["domain"])
        return Response(DomainSerializer(domain).data, status=status.HTTP_201_CREATED)


class DomainDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: Any) -> Response:
        services.delete_domain(actor=request.user, domain=get_domain(request, id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DomainVerifyView(APIView):
    @extend_schema(request=None, responses=DomainSerializer)
    def post(self, request: Request, id: Any) -> Response:
        """Verify by the DNS TXT record (400 saying what is missing), or at once for a superuser; 409
        ``domain_taken`` when another tenant verified it first."""
        domain = services.verify_domain(actor=request.user, domain=get_domain(request, id))
        return Response(DomainSerializer(domain).data)


# -- recovery codes and the members enforcement would bind ---------------------------------------------------------


class RecoveryCodesSerializer(serializers.Serializer):
    codes = serializers.ListField(child=serializers.CharField(), help_text="Shown once: store them safely.")


class RecoveryCodesView(APIView):
    @extend_schema(request=None, responses={201: RecoveryCodesSerializer})
    def post(self, request: Request, id: Any) -> Response:
        """Ten new single-use break-glass codes (the unused ones of before stop working)."""
        codes = services.regenerate_recovery_codes(actor=request.user, tenant=get_tenant(request, id))
        return Response(RecoveryCodesSerializer({"codes": codes}).data, status=status.HTTP_201_CREATED)


class UnlinkedMemberSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="user.pk")
    username = serializers.CharField(source="user.username")
    email = serializers.CharField(source="user.email")
    is_admin = serializers.BooleanField()


class UnlinkedMembersView(generics.GenericAPIView):
    """Members in the tenant's verified domains whom its IdP has not asserted yet: who enforcement would send to
    an IdP that may not know them."""

    serializer_class = UnlinkedMemberSerializer
    queryset = TenantMembership.objects.none()  # for the schema; the view decides

    @extend_schema(responses=UnlinkedMemberSerializer(many=True))
    def get(self, request: Request, id: Any) -> Response:
        page = self.paginate_queryset(services.unlinked_members(get_tenant(request, id)))
        return self.get_paginated_response(UnlinkedMemberSerializer(page, many=True).data)
