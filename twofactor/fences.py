"""The fence provider "2fa" (access/fences.py): an org whose effective ``require_2fa`` is on, past its grace
period, is closed with its subtree to sessions and tokens not verified with a second factor.

A user without a confirmed device is stopped there (console: the enrollment page; API: 403 ``2fa_required``) on
every path that gives them access (a direct grant, an invitation, a team, SSO provisioning): the fence applies to
whatever the roles say. A user with a device signs in through the code step, so their sessions are verified;
their password-only tokens are not, which is the point (API tokens reach a 2FA subtree only when minted with a code).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from access import fences
from resources.models import OrgSetting
from twofactor.requirement import KEY, enforced_regions, tenant_rows


class TwoFactorRequired:
    name = "2fa"

    def enforcing_query(self, tenant_ids: Iterable[UUID]) -> tuple[Any, str]:
        """Tenants with a ``require_2fa`` declaration that requires it anywhere (grace or not)."""
        queryset = OrgSetting.objects.filter(key=KEY, org__tenant_id__in=list(tenant_ids), value__required=True)
        return queryset, "org__tenant_id"

    def enforcing(self, tenant_ids: Iterable[UUID]) -> set[UUID]:
        queryset, field = self.enforcing_query(tenant_ids)
        return set(queryset.values_list(field, flat=True))

    def fences(self, user: Any, context: fences.AuthContext, tenant_id: UUID) -> list[fences.Fence]:
        if context.otp_verified:
            return []
        return [
            fences.Fence(
                "2fa_required",
                f"{region.org_name} requires two-factor authentication (since "
                f"{region.since:%Y-%m-%d %H:%M} UTC): verify this sign-in with a code from your authenticator app, "
                "or set one up on your account page.",
                tenant_id,
                region.tree_id,
                region.lft,
                region.rght,
                region.org_id,
                region.org_name,
            )
            for region in enforced_regions(tenant_rows(tenant_id))
        ]


fences.register(TwoFactorRequired())
