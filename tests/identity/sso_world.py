"""Helpers of the sign-in tests: a tenant's SSO configured against a test IdP, and a person signing in through it."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from identity import oidc
from identity.models import Domain, GroupRole, TenantSSO
from resources import crypto
from tests.identity.idp import IdP, callback_path


def client_of(client_id: str, secret: str | None = None) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "client_secret": secret or f"{client_id}-secret",
        "redirect_uris": [oidc.redirect_uri()],
    }


def person(sub: str, username: str, email: str, groups: list[str] | None = None, verified: bool = True) -> dict:
    return {"sub": sub, "username": username, "email": email, "email_verified": verified, "groups": groups}


def configure(
    tenant: Any,
    idp: IdP,
    *,
    client_id: str,
    domain: str | None = None,
    verified: bool = True,
    groups: tuple[tuple[str, str, Any], ...] | list[tuple[str, str, Any]] = (),
    **fields: Any,
) -> TenantSSO:
    """The tenant's SSO (as sso-core's services would store it: the secret encrypted), its domain and mappings."""
    client = next(c for c in idp.clients if c["client_id"] == client_id)
    sso = TenantSSO.objects.create(
        tenant=tenant,
        issuer=idp.issuer,
        client_id=client_id,
        client_secret_ciphertext=crypto.encrypt(client["client_secret"]),
        scopes="openid email profile groups",
        changed_at=timezone.now(),
        **fields,
    )
    if domain is not None:
        Domain.objects.create(
            tenant=tenant, domain=domain, txt_token="t" * 32, verified_at=timezone.now() if verified else None
        )
    from access.models import Role

    for group, role, org in groups:
        GroupRole.objects.create(sso=sso, group=group, role=Role.objects.get(key=role, tenant=None), org=org)
    return sso


def sign_in(
    client: Any, idp: IdP, username: str, *, email: str | None = None, tenant: Any = None, next_url: str = ""
) -> Any:
    """The whole browser round trip: the log-in page (or sso-start), the IdP's form, the callback's response."""
    query = {"next": next_url} if next_url else {}
    if email is not None:
        leave = client.get("/login/", {"email": email, **query})
    else:
        leave = client.get("/login/sso/", {"tenant": str(tenant.pk), **query})
    assert leave.status_code == 302 and leave["Location"].startswith(idp.url), leave.content[:500]
    return client.get(callback_path(idp.log_in(leave["Location"], username)))
