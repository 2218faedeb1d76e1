"""Shared set-up of the SSO tests: a configured IdP, domains verified by a superuser, a tested configuration."""

from __future__ import annotations

from typing import Any

from identity import services
from identity.models import Domain, TenantSSO

ISSUER = "https://idp.acme.test"


def config(**overrides: Any) -> dict[str, Any]:
    data = {"issuer": ISSUER, "client_id": "canopy", "client_secret": "s3cret-value", "scopes": "openid email"}
    data.update(overrides)
    return data


def configure(world: Any, **overrides: Any) -> TenantSSO:
    return services.put_sso(actor=world.tenant_admin, tenant=world.acme, data=config(**overrides))


def verified_domain(world: Any, name: str = "acme.test", tenant: Any = None) -> Domain:
    domain = services.claim_domain(actor=world.superuser, tenant=tenant or world.acme, domain=name)
    return services.verify_domain(actor=world.superuser, domain=domain)


def pass_test(world: Any) -> TenantSSO:
    sso = TenantSSO.objects.get(tenant=world.acme)
    assert services.mark_tested(actor=world.tenant_admin, tenant=world.acme, changed_at=sso.changed_at)
    return TenantSSO.objects.get(tenant=world.acme)


def enforced(world: Any) -> TenantSSO:
    configure(world)
    verified_domain(world)
    pass_test(world)
    return services.set_enforced(actor=world.tenant_admin, tenant=world.acme, enforced=True)
