"""Console pages of single sign-on: the tenant's SSO page (for its administrators, reached from any org of the
tenant, like People) and the page the console's fence redirect leads to when a tenant requires its IdP.

Every write goes through identity.services (authorized there again, audited); refusals are config.console's."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache

from access import policy, selectors
from access.services.grants import roles_available
from config.console import (
    Confirm,
    Write,
    console_view,
    dispatch,
    fetch_org,
    opened,
    parse_uuid,
    render_org_page,
)
from config.errors import NotFound
from identity import services
from identity.api import redirect_uri
from identity.forms import EXTRA_ROWS, DomainForm, EnforceForm, SSOForm
from identity.models import Domain, TenantSSO
from orgs.models import Organization, Tenant

ORGS_OFFERED = 1000  # the mapping rows' org choices; deeper or later orgs are mapped through the API


def _optional_url(name: str, **query: Any) -> str | None:
    """The URL named ``name`` with ``query``, None while no app defines it (the sign-in flow's routes)."""
    try:
        path = reverse(name)
    except NoReverseMatch:
        return None
    return f"{path}?{urlencode(query)}" if query else path


def configuration_of(d: dict[str, Any]) -> dict[str, Any]:
    """An SSOForm's cleaned data as identity.services.put_sso's ``data``; rows with an empty group are dropped."""
    mappings = []
    i = 0
    while f"group_{i}" in d:
        if (d[f"group_{i}"] or "").strip():
            mappings.append({"group": d[f"group_{i}"], "role": d[f"role_{i}"], "org": d[f"org_{i}"] or None})
        i += 1
    return {
        "issuer": d["issuer"], "client_id": d["client_id"], "client_secret": d["client_secret"] or None,
        "scopes": d["scopes"], "groups_claim": d["groups_claim"], "default_role": d["default_role"] or None,
        "default_org": d["default_org"] or None, "remove_unmapped_roles": d["remove_unmapped_roles"],
        "group_roles": mappings,
    }  # fmt: skip


def _initial(sso: TenantSSO | None) -> dict[str, Any]:
    if sso is None:
        return {"scopes": "openid email profile", "groups_claim": "groups", "rows": EXTRA_ROWS}
    values: dict[str, Any] = opened(
        sso, issuer=sso.issuer, client_id=sso.client_id, scopes=sso.scopes, groups_claim=sso.groups_claim,
        default_role=sso.default_role.key if sso.default_role else "",
        default_org=str(sso.default_org_id or ""), remove_unmapped_roles=sso.remove_unmapped_roles,
    )  # fmt: skip
    mappings = list(sso.group_roles.all())
    for i, row in enumerate(mappings):
        values.update({f"group_{i}": row.group, f"role_{i}": row.role.key, f"org_{i}": str(row.org_id)})
    values["rows"] = len(mappings) + EXTRA_ROWS
    return values


@never_cache  # the response that carries new recovery codes must not be kept by any cache
@console_view
def tenant_sso(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The tenant's single sign-on: its IdP and group mappings, the test sign-in and its status, enforcement (with
    the members it would bind who have no linked identity yet), the e-mail domains and the break-glass codes."""
    org = fetch_org(request, org_id, policy.TENANT_ADMIN)
    tenant: Tenant = org.tenant
    user = request.user
    here = reverse("tenant-sso", args=[org.pk])
    root = Organization.objects.get(tenant=tenant, parent__isnull=True)
    roles = [(r.key, r.name) for r in roles_available(root)]
    orgs = [
        (str(o.pk), f"{'· ' * o.level}{o.name}")
        for o in Organization.objects.alive().filter(tenant=tenant).order_by("tree_id", "lft")[:ORGS_OFFERED]
    ]

    def sso_form(*args: Any, **kwargs: Any) -> SSOForm:
        return SSOForm(*args, roles=roles, orgs=orgs, **kwargs)

    def domain() -> Domain:
        pk = parse_uuid(request.POST.get("domain"))
        found = services.domains_of(tenant).filter(pk=pk).first() if pk is not None else None
        if found is None:
            raise NotFound()
        return found

    def enforce(d: dict[str, Any]) -> Any:
        if services.unlinked_members(tenant).exists() and not d["confirm"]:
            raise ValidationError(
                "Some members in your domains have no linked identity yet: read the list, then tick the box."
            )
        return services.set_enforced(actor=user, tenant=tenant, enforced=True, version=d["version"])

    writes = {
        "configure": Write(
            run=lambda d: services.put_sso(actor=user, tenant=tenant, data=configuration_of(d), version=d["version"]),
            done="The single sign-on configuration was saved.", then=lambda s: here, form=sso_form,
            form_key="sso_form",
        ),
        "delete-sso": Write(
            run=lambda d: services.delete_sso(actor=user, tenant=tenant, version=d["version"]),
            done="Single sign-on was removed.", then=lambda s: here,
            confirm=lambda d: Confirm(
                title=f"Remove the single sign-on configuration of {tenant.name}?", button="Remove", cancel=here,
                goes_with=["its enforcement: members sign in with their passwords again",
                           "the links between members and their identities at the IdP"],
                note="This cannot be undone: the IdP's settings must be entered again.",
            ),
        ),
        "enforce": Write(run=enforce, done="Single sign-on is now enforced.", then=lambda s: here, form=EnforceForm),
        "unenforce": Write(
            run=lambda d: services.set_enforced(actor=user, tenant=tenant, enforced=False, version=d["version"]),
            done="Single sign-on is no longer enforced.", then=lambda s: here,
            confirm=lambda d: Confirm(
                title=f"Stop enforcing single sign-on in {tenant.name}?", button="Stop enforcing", cancel=here,
                goes_with=["members in your domains may sign in with a password again"],
                note="You can enforce it again later.",
            ),
        ),
        "claim": Write(
            run=lambda d: services.claim_domain(actor=user, tenant=tenant, domain=d["domain"]),
            done=lambda dom: f"{dom.domain} was claimed: publish its TXT record, then verify it.",
            then=lambda dom: here, form=DomainForm, form_key="domain_form",
        ),
        "verify": Write(
            run=lambda d: services.verify_domain(actor=user, domain=domain()),
            done=lambda dom: f"{dom.domain} is verified.", then=lambda dom: here,
        ),
        "delete-domain": Write(
            run=lambda d: _delete_domain(user, domain()),
            done=lambda name: f"{name} was removed.", then=lambda name: here,
            confirm=lambda d: Confirm(
                title=f"Remove the domain {domain().domain}?", button="Remove", cancel=here,
                goes_with=["its verification: claiming it again takes a new TXT record"],
                note="Its members are no longer sent to your IdP by their address.",
            ),
        ),
        "recovery": Write(
            run=lambda d: services.regenerate_recovery_codes(actor=user, tenant=tenant),
            then=lambda codes: show({"codes": codes}),
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        current = services.sso_of(tenant)
        unlinked = services.unlinked_members(tenant)
        return render_org_page(
            request, "identity/sso.html", org, tab="sso", sso=current,
            sso_form=context.get("sso_form") or _blank_form(sso_form, current),
            domain_form=context.get("domain_form") or DomainForm(),
            domains=list(services.domains_of(tenant)), unlinked=list(unlinked[:200]), unlinked_count=unlinked.count(),
            recovery_left=services.unused_recovery_codes(tenant), codes=context.get("codes"),
            redirect_uri=redirect_uri(request),
            test_url=_optional_url("sso-test", tenant=tenant.pk) if current is not None else None,
            error=context.get("error"), failed_action=context.get("failed_action"),
        )  # fmt: skip

    return dispatch(request, writes, show)


def _blank_form(make: Any, sso: TenantSSO | None) -> SSOForm:
    initial = _initial(sso)
    return make(initial=initial, rows=initial["rows"])


def _delete_domain(user: Any, domain: Domain) -> str:
    services.delete_domain(actor=user, domain=domain)
    return domain.domain


@console_view
def sso_required(request: HttpRequest) -> HttpResponse:
    """Where the console sends a member of a tenant that requires its IdP: says so and offers the IdP's sign-in,
    then back to ``next``. Nothing for anyone who is not a member of that tenant (404): the page must not tell
    which tenants exist or use single sign-on."""
    tenant_id = parse_uuid(request.GET.get("tenant"))
    tenant = Tenant.objects.filter(pk=tenant_id).first() if tenant_id else None
    user_id = request.user.pk
    if tenant is None or user_id is None or not selectors.tenant_memberships(tenant).filter(user_id=user_id).exists():
        raise NotFound()
    if not TenantSSO.objects.filter(tenant=tenant).exists():
        raise NotFound()
    next_url = request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = "/"
    return render_sso_required(request, tenant, next_url)


def render_sso_required(request: HttpRequest, tenant: Tenant, next_url: str) -> HttpResponse:
    start = _optional_url("sso-start", tenant=tenant.pk, next=next_url)
    return render(request, "identity/sso_required.html", {"tenant": tenant, "start_url": start, "next": next_url})
