"""The fence of single sign-on (access/fences.py): a tenant that enforces SSO closes itself, whole, to the members
its identity provider is responsible for, unless this request was authenticated through that provider (or a
break-glass code of the tenant).

Who the IdP is responsible for: a user whose e-mail address is in one of the tenant's verified domains, or whom the
IdP has asserted already (a linked identity in this tenant: changing one's address to a personal one must not be a
way around enforcement). Everyone else — contractors and guests with their own addresses — keeps signing in as
before, and nobody loses any *other* tenant: the fence covers this tenant only. Superusers are never fenced (the
policy does not ask for them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.db.models import Exists, OuterRef

from access import fences
from access.fences import AuthContext, Fence
from identity.models import Domain, ExternalIdentity, TenantSSO


def email_domain(email: str | None) -> str:
    """The lower-case domain of an address (after its last @; an IDN in its punycode form, as domains are
    stored), empty without one."""
    if not email or "@" not in email:
        return ""
    domain = email.rsplit("@", 1)[1].strip().lower().rstrip(".")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return ""
    return domain


class SSOFences:
    name = "sso"

    def enforcing_query(self, tenant_ids: Iterable[UUID]) -> tuple[Any, str]:
        return TenantSSO.objects.filter(tenant_id__in=list(tenant_ids), enforced=True), "tenant_id"

    def enforcing(self, tenant_ids: Iterable[UUID]) -> set[UUID]:
        queryset, field = self.enforcing_query(tenant_ids)
        return set(queryset.values_list(field, flat=True))

    def fences(self, user: Any, context: AuthContext, tenant_id: UUID) -> list[Fence]:
        if tenant_id in context.sso_tenants or getattr(user, "is_superuser", False) or not getattr(user, "pk", None):
            return []
        domain = email_domain(getattr(user, "email", ""))
        # One query: the tenant's name when the user is bound to its IdP (by domain or by a linked identity).
        bound = (
            TenantSSO.objects.filter(tenant_id=tenant_id, enforced=True)
            .annotate(
                in_domain=Exists(Domain.objects.filter(tenant_id=tenant_id, domain=domain, verified_at__isnull=False)),
                linked=Exists(ExternalIdentity.objects.filter(tenant_id=OuterRef("tenant_id"), user_id=user.pk)),
            )
            .values_list("tenant__name", "in_domain", "linked")
            .first()
        )
        if bound is None or not (bound[1] or bound[2]):
            return []
        name = bound[0]
        return [
            Fence(
                "sso_required",
                f"{name} requires signing in through its identity provider: sign in with your company's single "
                f"sign-on to reach {name}.",
                tenant_id,
            )
        ]


fences.register(SSOFences())
