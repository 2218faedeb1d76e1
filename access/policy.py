"""The one place that decides access (DESIGN.md §4.1).

    can(user, capability, obj) -> bool
    visible(user, capability, queryset) -> queryset
    explain(user, capability, obj) -> Explanation

Views, serializers, admin classes and templates ask these; nothing else reads memberships, roles or grants.

Capabilities are the role vocabulary in access.roles, plus two tenant-level ones that no role can hold:
``tenant.admin`` (tenant administrators: create, move, delete and restore organizations, manage the tenant) and
``tenant.plan`` (superusers: change a tenant's plan).

Each user gets one ``Access`` object per request (cached on the user instance that the request carries), which
loads what it needs once, so repeated checks in a request cost no query; a change is seen by the next request.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.db import models

from access.roles import ALL_CAPABILITIES
from config.errors import Forbidden, NotFound

if TYPE_CHECKING:
    from orgs.models import Organization

TENANT_ADMIN = "tenant.admin"
TENANT_PLAN = "tenant.plan"
_EVERYTHING = ALL_CAPABILITIES | {TENANT_ADMIN}

# The capability that makes an object of each model visible at all: without it the object answers 404.
VIEW_CAPABILITY = {
    "orgs.tenant": TENANT_ADMIN,
    "orgs.organization": "org.view",
    "orgs.project": "project.view",
}


class Access:
    """What one user may do. Lazy: each fact is loaded on first use, then kept for the object's life."""

    def __init__(self, user: Any):
        self.user = user
        self.is_authenticated = bool(user is not None and user.is_authenticated and user.is_active)
        self.is_superuser = self.is_authenticated and user.is_superuser
        self._admin_tenant_ids: frozenset[UUID] | None = None
        self._member_tenant_ids: frozenset[UUID] | None = None
        self._org_caps: dict[UUID, frozenset[str]] = {}

    # -- tenant facts (one query for both, on first use) --------------------------------------------------------
    def _load_tenants(self) -> None:
        from access.models import TenantMembership

        rows = (
            TenantMembership.objects.filter(user=self.user).values_list("tenant_id", "is_admin")
            if self.is_authenticated
            else []
        )
        rows = list(rows)
        self._member_tenant_ids = frozenset(t for t, _ in rows)
        self._admin_tenant_ids = frozenset(t for t, is_admin in rows if is_admin)

    @property
    def admin_tenant_ids(self) -> frozenset[UUID]:
        if self._admin_tenant_ids is None:
            self._load_tenants()
        return self._admin_tenant_ids  # type: ignore[return-value]

    @property
    def member_tenant_ids(self) -> frozenset[UUID]:
        if self._member_tenant_ids is None:
            self._load_tenants()
        return self._member_tenant_ids  # type: ignore[return-value]

    def is_tenant_admin(self, tenant_id: UUID) -> bool:
        return self.is_superuser or tenant_id in self.admin_tenant_ids

    # -- capabilities ------------------------------------------------------------------------------------------
    def org_capabilities(self, org: Organization) -> frozenset[str]:
        """The user's effective capabilities in ``org``."""
        if not self.is_authenticated or org.deleted_at is not None:
            return frozenset()
        cached = self._org_caps.get(org.pk)
        if cached is None:
            cached = self._org_caps[org.pk] = self._resolve_org(org)
        return cached

    def _resolve_org(self, org: Organization) -> frozenset[str]:
        if self.is_tenant_admin(org.tenant_id):
            return _EVERYTHING
        # Role grants inherited down the tree arrive with the access-core issue (#3); until then only tenant
        # administrators (and superusers) hold capabilities.
        return frozenset()

    def capabilities(self, obj: models.Model) -> frozenset[str]:
        label = obj._meta.label_lower
        if label == "orgs.organization":
            return self.org_capabilities(obj)  # type: ignore[arg-type]
        if label == "orgs.project":
            return self.org_capabilities(obj.org)  # type: ignore[attr-defined]
        if label == "orgs.tenant":
            if self.is_tenant_admin(obj.pk):
                return frozenset({TENANT_ADMIN} | ({TENANT_PLAN} if self.is_superuser else set()))
            return frozenset()
        raise TypeError(f"The policy knows no rule for {label}.")

    def can(self, capability: str, obj: models.Model) -> bool:
        if capability == TENANT_PLAN:
            return self.is_superuser
        return capability in self.capabilities(obj)

    # -- lists -------------------------------------------------------------------------------------------------
    def visible(self, capability: str, queryset: models.QuerySet) -> models.QuerySet:
        """``queryset`` narrowed to the objects on which the user holds ``capability``, in one filtered query."""
        if not self.is_authenticated:
            return queryset.none()
        if self.is_superuser:
            return queryset
        label = queryset.model._meta.label_lower
        tenants = self.admin_tenant_ids
        if label == "orgs.organization":
            return queryset.filter(tenant_id__in=tenants)
        if label == "orgs.project":
            return queryset.filter(org__tenant_id__in=tenants)
        if label == "orgs.tenant":
            return queryset.filter(pk__in=tenants)
        raise TypeError(f"The policy knows no rule for {label}.")

    # -- explanations ------------------------------------------------------------------------------------------
    def explain(self, capability: str, obj: models.Model) -> Explanation:
        allowed = self.can(capability, obj)
        reasons: list[str] = []
        tenant_id = _tenant_id_of(obj)
        if not self.is_authenticated:
            reasons.append("Not signed in.")
        elif self.is_superuser:
            reasons.append("Superuser: holds every capability everywhere.")
        elif tenant_id in self.admin_tenant_ids:
            reasons.append("Tenant administrator: holds every capability in the tenant.")
        else:
            reasons.append("No grant gives this capability here.")
        if getattr(obj, "deleted_at", None) is not None:
            reasons.append("The organization is deleted: nothing is allowed until it is restored.")
        return Explanation(allowed=allowed, capability=capability, reasons=reasons)


@dataclass(frozen=True)
class Explanation:
    allowed: bool
    capability: str
    reasons: list[str] = field(default_factory=list)


def _tenant_id_of(obj: models.Model) -> UUID | None:
    label = obj._meta.label_lower
    if label == "orgs.tenant":
        return obj.pk
    if label == "orgs.organization":
        return obj.tenant_id  # type: ignore[attr-defined]
    if label == "orgs.project":
        return obj.org.tenant_id  # type: ignore[attr-defined]
    return None


_CACHE_ATTR = "_canopy_access"


def access_for(user: Any) -> Access:
    """The user's Access, built once per user instance (so once per request: each request loads its user)."""
    if user is None:
        return Access(None)
    access = getattr(user, _CACHE_ATTR, None)
    if access is None:
        access = Access(user)
        with contextlib.suppress(AttributeError):  # AnonymousUser-like objects that refuse attributes
            setattr(user, _CACHE_ATTR, access)
    return access


def forget(user: Any) -> None:
    """Drop the cached Access, e.g. after a service changed this user's own grants within the request."""
    if user is not None and hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def can(user: Any, capability: str, obj: models.Model) -> bool:
    return access_for(user).can(capability, obj)


def capabilities(user: Any, obj: models.Model) -> frozenset[str]:
    return access_for(user).capabilities(obj)


def visible(user: Any, capability: str, queryset: models.QuerySet) -> models.QuerySet:
    return access_for(user).visible(capability, queryset)


def explain(user: Any, capability: str, obj: models.Model) -> Explanation:
    return access_for(user).explain(capability, obj)


def is_tenant_admin(user: Any, tenant_id: UUID) -> bool:
    return access_for(user).is_tenant_admin(tenant_id)


def authorize(user: Any, capability: str, obj: models.Model) -> None:
    """Raise NotFound if the user may not see ``obj`` at all, Forbidden if they see it but lack ``capability``."""
    access = access_for(user)
    view = VIEW_CAPABILITY.get(obj._meta.label_lower)
    if view is not None and not access.can(view, obj):
        raise NotFound()
    if not access.can(capability, obj):
        raise Forbidden("You do not have permission to do this here.", code="permission_denied")


def get_for(user: Any, capability: str, queryset: models.QuerySet, **lookup: Any) -> Any:
    """Fetch and authorize in one call: 404 for missing or invisible, 403 for visible without ``capability``."""
    try:
        obj = queryset.get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, models.ObjectDoesNotExist):
        raise NotFound() from None
    except Exception as exc:  # a malformed UUID raises ValidationError on some backends
        from django.core.exceptions import ValidationError

        if isinstance(exc, ValidationError):
            raise NotFound() from None
        raise
    authorize(user, capability, obj)
    return obj
