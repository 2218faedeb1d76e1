"""Every write to a tenant's single sign-on: its identity provider, its claimed e-mail domains, enforcement and the
break-glass recovery codes.

Each service is atomic, takes a keyword-only ``actor`` (a user, or ``config.actors.SYSTEM``), authorizes through
``access.policy`` (tenant administrators only: ``tenant.admin`` on the tenant; anyone else sees nothing of it, so
another tenant's ids answer 404), records its audit event in the same transaction and calls
``access.fences.invalidate`` so the enforcement cache never outlives the rule it describes.

A sign-in depends on the issuer, the client, its secret, the scopes, the claims and the mappings: any change of
one of them moves ``changed_at``, so enforcement can only be (re-)enabled after a tenant administrator completed a
test sign-in against the configuration as it is now (``tested_since_change``). Enforcement that is on stays on
through a change (turning it off silently would open the tenant); the console and the API show that the
configuration is untested since.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import dns.exception
import dns.resolver
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from access import audit, fences, policy, selectors
from access.models import TenantMembership
from access.services.grants import resolve_role
from config.actors import require_actor, user_or_none
from config.concurrency import Versions, lock_for_update, save_changes
from config.errors import Conflict, NotFound
from identity.fences import email_domain
from identity.models import Domain, ExternalIdentity, GroupRole, RecoveryCode, TenantSSO
from orgs.locks import lock_tenant
from orgs.models import Organization, Tenant
from resources import crypto

RECOVERY_CODE_COUNT = 10
GROUP_ROLES_MAX = 200
TXT_PREFIX = "canopy-verification="
DNS_TIMEOUT_SECONDS = 5.0
_LOOPBACK_HOSTS = {"localhost"}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read from paper, typed by hand
_SSO_FIELDS = ("issuer", "client_id", "scopes", "groups_claim", "default_role", "default_org", "remove_unmapped_roles")


def _require_admin(actor: Any, tenant: Tenant) -> None:
    """Tenant administrators (and superusers, SYSTEM); anyone else: 404, or 403 with the fence's code."""
    require_actor(actor)
    policy.authorize(actor, policy.TENANT_ADMIN, tenant)


def _is_admin_member(user: Any, tenant: Tenant) -> bool:
    """A tenant administrator by membership, whatever the fences of this request (policy.by_roles)."""
    if not getattr(user, "pk", None):
        return False
    return tenant.pk in policy.by_roles(user).admin_tenant_ids


def _root(tenant: Tenant) -> Organization:
    return Organization.objects.get(tenant=tenant, parent__isnull=True)


# --------------------------------------------------------------------------------------------------------------
# The identity provider


@dataclass(frozen=True)
class Mapping:
    group: str
    role: Any  # access.models.Role
    org: Organization


def _clean_issuer(value: Any) -> str:
    """An https URL (http only for a loopback host: the tests' and a developer's local IdP), without a query or
    fragment (the discovery document lives at ``<issuer>/.well-known/openid-configuration``)."""
    issuer = (value or "").strip() if isinstance(value, str) or value is None else None
    if not issuer:
        raise ValidationError({"issuer": ["Give the identity provider's issuer URL (https://…)."]})
    try:
        URLValidator(schemes=["http", "https"])(issuer)
    except ValidationError:
        raise ValidationError({"issuer": ["Enter a valid URL, e.g. https://login.example.com."]}) from None
    parts = urlsplit(issuer)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValidationError({"issuer": ["The issuer URL has no query, fragment or credentials."]})
    if parts.scheme != "https" and not _is_loopback(parts.hostname or ""):
        raise ValidationError({"issuer": ["The issuer must use https (http only for a loopback test IdP)."]})
    if len(issuer) > 500:
        raise ValidationError({"issuer": ["The issuer URL is too long (500 characters at most)."]})
    return issuer  # kept as given: the ID token's ``iss`` must equal it exactly (some IdPs end it with "/")


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _clean_text(value: Any, field: str, *, max_length: int, required: bool) -> str:
    if value is not None and not isinstance(value, str):
        raise ValidationError({field: ["Must be a string."]})
    text = (value or "").strip()
    if required and not text:
        raise ValidationError({field: ["This field may not be blank."]})
    if len(text) > max_length:
        raise ValidationError({field: [f"At most {max_length} characters."]})
    if any(ch.isspace() for ch in text) and field != "scopes":
        raise ValidationError({field: ["No spaces."]})
    return text


def _clean_scopes(value: Any) -> str:
    if isinstance(value, list | tuple):
        value = " ".join(str(v) for v in value)
    text = _clean_text(value if value is not None else "openid email profile", "scopes", max_length=500,
                       required=True)  # fmt: skip
    scopes = list(dict.fromkeys(text.split()))
    if "openid" not in scopes:
        raise ValidationError({"scopes": ["The scopes must include openid (this is an OpenID Connect sign-in)."]})
    if any(not re.fullmatch(r"[\x21\x23-\x5b\x5d-\x7e]+", s) for s in scopes):
        raise ValidationError({"scopes": ["A scope is printable ASCII without quotes or backslashes."]})
    return " ".join(scopes)


def _tenant_org(tenant: Tenant, org_id: Any, field: str) -> Organization:
    """An alive org of ``tenant``; any other id (another tenant's, a deleted or a missing one) is the same field
    error, so the answer tells nothing about other tenants."""
    org = None
    if isinstance(org_id, Organization):
        org_id = org_id.pk
    try:
        org = Organization.objects.alive().filter(tenant=tenant, pk=org_id).first()
    except (ValidationError, ValueError, TypeError):
        org = None
    if org is None:
        raise ValidationError({field: [f"No organization with this id in {tenant.name}."]})
    return org


def _tenant_role(org: Organization, role: Any, field: str) -> Any:
    """A role usable at ``org`` (built-in, or custom defined at ``org`` or above), given as a Role or its key."""
    try:
        return resolve_role(org, role)
    except ValidationError:
        key = getattr(role, "key", role)
        raise ValidationError({field: [f"“{key}” is not a role available in {org.name}."]}) from None


def _clean_mappings(tenant: Tenant, rows: Any, root: Organization) -> list[Mapping]:
    if rows is None:
        return []
    if not isinstance(rows, list | tuple):
        raise ValidationError({"group_roles": ["Give a list of {group, role, org}."]})
    if len(rows) > GROUP_ROLES_MAX:
        raise ValidationError({"group_roles": [f"At most {GROUP_ROLES_MAX} mappings."]})
    found: list[Mapping] = []
    seen: set[tuple[str, Any]] = set()
    errors: list[str] = []
    for number, row in enumerate(rows, start=1):
        try:
            if not isinstance(row, dict):
                raise ValidationError({"group": ["Give {group, role, org}."]})
            group = _clean_text(row.get("group"), "group", max_length=200, required=True)
            org = _tenant_org(tenant, row.get("org") or root.pk, "org")
            role = _tenant_role(org, row.get("role"), "role")
            if (group, org.pk) in seen:
                raise ValidationError({"group": [f"“{group}” is mapped twice at {org.name}."]})
            seen.add((group, org.pk))
            found.append(Mapping(group, role, org))
        except ValidationError as exc:
            errors += [f"Mapping {number}, {name}: {m}" for name, ms in exc.message_dict.items() for m in ms]
    if errors:
        raise ValidationError({"group_roles": errors})
    return found


def sso_of(tenant: Tenant) -> TenantSSO | None:
    return (
        TenantSSO.objects.filter(tenant=tenant)
        .select_related("default_role", "default_org", "tested_by")
        .prefetch_related("group_roles__role", "group_roles__org")
        .first()
    )


def client_secret_of(sso: TenantSSO) -> str:
    """The IdP client secret in clear, for the token request of a sign-in (identity/oidc.py) and nothing else:
    never logged, never shown, never put in an answer."""
    return str(crypto.decrypt(sso.client_secret_ciphertext) or "")


def _fresh(tenant: Tenant) -> TenantSSO:
    """The configuration just written, with what the faces show of it loaded."""
    sso = sso_of(tenant)
    if sso is None:  # deleted by a concurrent request right after this one's commit
        raise NotFound("Single sign-on is not configured.")
    return sso


def put_sso(*, actor: Any, tenant: Tenant, data: dict[str, Any], version: Versions = None) -> TenantSSO:
    """Configure (or reconfigure) the tenant's identity provider: the whole configuration (``group_roles``
    replaces every mapping; an absent ``client_secret`` keeps the stored one, which a new configuration needs).

    Anything a sign-in depends on that changes moves ``changed_at``: enforcement can then be enabled again only
    after a new test sign-in. Field errors change nothing."""
    _require_admin(actor, tenant)
    if not isinstance(data, dict):
        raise ValidationError("Give the configuration as an object.")
    root = _root(tenant)
    fields: dict[str, Any] = {
        "issuer": _clean_issuer(data.get("issuer")),
        "client_id": _clean_text(data.get("client_id"), "client_id", max_length=255, required=True),
        "scopes": _clean_scopes(data.get("scopes")),
        "groups_claim": _clean_text(data.get("groups_claim", "groups"), "groups_claim", max_length=100, required=False),
        "remove_unmapped_roles": bool(data.get("remove_unmapped_roles", False)),
    }
    default_org = _tenant_org(tenant, data["default_org"], "default_org") if data.get("default_org") else None
    fields["default_org"] = default_org
    role = data.get("default_role")
    fields["default_role"] = _tenant_role(default_org or root, role, "default_role") if role else None
    mappings = _clean_mappings(tenant, data.get("group_roles"), root)
    secret = data.get("client_secret")
    if secret is not None and not isinstance(secret, str):
        raise ValidationError({"client_secret": ["Must be a string."]})
    secret = (secret or "").strip()
    if len(secret) > 2000:
        raise ValidationError({"client_secret": ["At most 2000 characters."]})
    with transaction.atomic():
        lock_tenant(tenant.pk)
        sso = TenantSSO.objects.filter(tenant=tenant).first()
        now = timezone.now()
        if sso is None:
            if not secret:
                raise ValidationError({"client_secret": ["Give the client secret the identity provider issued."]})
            sso = TenantSSO.objects.create(
                tenant=tenant, changed_at=now, client_secret_ciphertext=crypto.encrypt(secret), **fields
            )
            changes: dict[str, Any] = {name: _audit_value(fields[name]) for name in _SSO_FIELDS}
            changes["client_secret"] = "set"
            mappings_changed = True
        else:
            sso = lock_for_update(sso, version)
            also: list[str] = []
            if secret and crypto.decrypt(sso.client_secret_ciphertext) != secret:
                sso.client_secret_ciphertext = crypto.encrypt(secret)
                also.append("client_secret_ciphertext")
            mappings_changed = _mapping_key(mappings) != _mapping_key(list(sso.group_roles.all()))
            depends = {k: v for k, v in fields.items()} | {"changed_at": sso.changed_at}
            touched = {name for name in _SSO_FIELDS if getattr(sso, name) != fields[name]}
            if touched or also or mappings_changed:
                depends["changed_at"] = now
            raw = save_changes(sso, depends, also=also)
            changes = {k: [_audit_value(v[0]), _audit_value(v[1])] for k, v in raw.items() if k != "changed_at"}
            if also:
                changes["client_secret"] = "replaced"
        if mappings_changed:
            GroupRole.objects.filter(sso=sso).delete()
            GroupRole.objects.bulk_create(GroupRole(sso=sso, group=m.group, role=m.role, org=m.org) for m in mappings)
            changes["group_roles"] = [f"{m.group} → {m.role.key} at {m.org.name}" for m in mappings]
        if changes:
            audit.record(actor=actor, action="sso.configured", tenant=tenant, org=root, target=sso, changes=changes)
            fences.invalidate(tenant.pk)
    return _fresh(tenant)


def _mapping_key(rows: list[Any]) -> list[tuple[str, Any, Any]]:
    return sorted((r.group, r.role.pk, r.org.pk) for r in rows)


def _audit_value(value: Any) -> Any:
    if isinstance(value, Organization):
        return value.name
    return getattr(value, "key", value)


def delete_sso(*, actor: Any, tenant: Tenant, version: Versions = None) -> None:
    """Remove the tenant's IdP (and with it enforcement and the group mappings). Linked identities stay: a new
    configuration of the same issuer finds its people again."""
    _require_admin(actor, tenant)
    with transaction.atomic():
        lock_tenant(tenant.pk)
        sso = TenantSSO.objects.filter(tenant=tenant).first()
        if sso is None:
            raise NotFound("Single sign-on is not configured.")
        sso = lock_for_update(sso, version)
        audit.record(actor=actor, action="sso.deleted", tenant=tenant, org=_root(tenant), target=sso,
                     changes={"issuer": sso.issuer, "enforced": sso.enforced})  # fmt: skip
        sso.delete()
        fences.invalidate(tenant.pk)


def set_enforced(*, actor: Any, tenant: Tenant, enforced: bool, version: Versions = None) -> TenantSSO:
    """Turn enforcement on or off. On only with a configuration tested since its last change (409
    ``sso_untested``) and at least one verified domain (409 ``sso_no_domain``): otherwise it would lock people out
    or enforce nothing."""
    _require_admin(actor, tenant)
    with transaction.atomic():
        lock_tenant(tenant.pk)
        sso = TenantSSO.objects.filter(tenant=tenant).first()
        if sso is None:
            raise NotFound("Single sign-on is not configured.")
        sso = lock_for_update(sso, version)
        if enforced and not sso.enforced:
            if not sso.tested_since_change:
                raise Conflict(
                    "Complete a test sign-in through the identity provider first: enforcement is enabled only with "
                    "a configuration that was tested since its last change.",
                    code="sso_untested",
                )
            if not Domain.objects.filter(tenant=tenant, verified_at__isnull=False).exists():
                raise Conflict(
                    "Verify at least one e-mail domain first: enforcement applies to the members in them.",
                    code="sso_no_domain",
                )
        changes = save_changes(sso, {"enforced": bool(enforced)})
        if changes:
            audit.record(actor=actor, action="sso.enforced", tenant=tenant, org=_root(tenant), target=sso,
                         changes=changes)  # fmt: skip
            fences.invalidate(tenant.pk)
    return _fresh(tenant)


def mark_tested(*, actor: Any, tenant: Tenant, changed_at: datetime) -> bool:
    """Record a completed test sign-in by ``actor`` (a tenant administrator), for the configuration as it was when
    the test started (``changed_at`` read then). A configuration changed during the test is not counted as tested:
    returns False. Called by the sign-in flow (identity/signin.py) after the callback validated everything.

    By roles alone (policy.by_roles): the sign-in being recorded is what opens an enforcing tenant, and the user
    object of the callback does not carry its SSO context yet."""
    require_actor(actor)
    if not (getattr(actor, "is_superuser", False) or _is_admin_member(actor, tenant)):
        return False
    with transaction.atomic():
        sso = TenantSSO.objects.select_for_update().filter(tenant=tenant).first()
        if sso is None or sso.changed_at != changed_at:
            return False
        now = timezone.now()
        TenantSSO.objects.filter(pk=sso.pk).update(tested_at=now, tested_by=user_or_none(actor))
        audit.record(actor=actor, action="sso.tested", tenant=tenant, org=_root(tenant), target=sso)
    return True


# --------------------------------------------------------------------------------------------------------------
# Domains


def clean_domain(value: Any) -> str:
    """A lower-case host name of two labels or more (IDN in its punycode form), without a trailing dot."""
    if not isinstance(value, str):
        raise ValidationError({"domain": ["Must be a string."]})
    text = value.strip().lower().rstrip(".")
    if text.startswith("@"):
        text = text[1:]
    try:
        text = text.encode("idna").decode("ascii") if text and not text.isascii() else text
    except UnicodeError:
        raise ValidationError({"domain": ["Enter a valid domain name, e.g. example.com."]}) from None
    labels = text.split(".")
    if (
        not text
        or len(text) > 253
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValidationError({"domain": ["Enter a valid domain name, e.g. example.com."]})
    return text


def domains_of(tenant: Tenant) -> QuerySet[Domain]:
    return Domain.objects.filter(tenant=tenant).order_by("domain")


def _taken() -> Conflict:
    return Conflict("This domain is verified by another tenant.", code="domain_taken")


def claim_domain(*, actor: Any, tenant: Tenant, domain: str) -> Domain:
    """Claim an e-mail domain: unverified until its DNS TXT record is found (or a superuser verifies it). A
    domain verified by another tenant is refused (409 ``domain_taken``); claimed twice here: 409 ``domain_claimed``."""
    _require_admin(actor, tenant)
    name = clean_domain(domain)
    with transaction.atomic():
        lock_tenant(tenant.pk)
        if Domain.objects.filter(domain=name, verified_at__isnull=False).exclude(tenant=tenant).exists():
            raise _taken()
        if Domain.objects.filter(domain=name, tenant=tenant).exists():
            raise Conflict("This tenant claimed this domain already.", code="domain_claimed")
        try:
            with transaction.atomic():
                claimed = Domain.objects.create(tenant=tenant, domain=name, txt_token=secrets.token_urlsafe(24))
        except IntegrityError:
            raise Conflict("This tenant claimed this domain already.", code="domain_claimed") from None
        audit.record(actor=actor, action="domain.claimed", tenant=tenant, org=_root(tenant), target=claimed,
                     changes={"domain": name})  # fmt: skip
        fences.invalidate(tenant.pk)  # binds nobody until verified; kept uniform with every other change
    return claimed


def _dns_has_record(domain: Domain) -> bool:
    """Whether the domain publishes ``canopy-verification=<token>`` in a TXT record. A lookup that fails is a field
    error saying what went wrong; a lookup that works but finds no such record returns False."""
    try:
        answer = dns.resolver.resolve(domain.domain, "TXT", lifetime=DNS_TIMEOUT_SECONDS)
    except dns.resolver.NXDOMAIN:
        raise ValidationError({"domain": [f"{domain.domain} does not exist in the DNS."]}) from None
    except dns.resolver.NoAnswer:
        return False
    except (dns.resolver.NoNameservers, dns.exception.Timeout):
        raise ValidationError(
            {"domain": [f"The DNS servers of {domain.domain} did not answer: try again in a few minutes."]}
        ) from None
    except dns.exception.DNSException:
        raise ValidationError({"domain": [f"The TXT records of {domain.domain} could not be read."]}) from None
    wanted = domain.txt_record
    for record in answer:
        strings = getattr(record, "strings", None)
        text = b"".join(strings).decode("utf-8", "replace") if strings else str(record).strip('"')
        if text.strip() == wanted:
            return True
    return False


def verify_domain(*, actor: Any, domain: Domain) -> Domain:
    """Mark the domain verified: a superuser at any time, a tenant administrator once the TXT record is found in
    the DNS (400 saying what is missing otherwise). Verified by another tenant meanwhile: 409 ``domain_taken``
    (the partial unique constraint decides a race)."""
    _require_admin(actor, domain.tenant)
    if domain.verified:
        return domain
    by = "superuser" if policy.access_for(actor).is_superuser else "dns"
    if by == "dns" and not _dns_has_record(domain):
        message = (
            f"No TXT record “{domain.txt_record}” found at {domain.domain}. Publish it and try again (DNS changes "
            "can take a while to appear)."
        )
        raise ValidationError({"domain": [message]})
    with transaction.atomic():
        lock_tenant(domain.tenant_id)
        fresh = Domain.objects.select_for_update().filter(pk=domain.pk).first()
        if fresh is None:
            raise NotFound()
        if fresh.verified:
            return fresh
        if Domain.objects.filter(domain=fresh.domain, verified_at__isnull=False).exclude(pk=fresh.pk).exists():
            raise _taken()
        fresh.verified_at, fresh.verified_by = timezone.now(), user_or_none(actor)
        try:
            with transaction.atomic():
                fresh.save(update_fields=["verified_at", "verified_by"])
        except IntegrityError:
            raise _taken() from None
        audit.record(actor=actor, action="domain.verified", tenant=fresh.tenant_id, org=_root(domain.tenant),
                     target=fresh, changes={"domain": fresh.domain, "by": by})  # fmt: skip
        fences.invalidate(fresh.tenant_id)
    return fresh


def delete_domain(*, actor: Any, domain: Domain) -> None:
    """Give up a domain: its members are no longer bound to the tenant's SSO."""
    _require_admin(actor, domain.tenant)
    with transaction.atomic():
        lock_tenant(domain.tenant_id)
        deleted, _ = Domain.objects.filter(pk=domain.pk).delete()
        if not deleted:
            raise NotFound()
        audit.record(actor=actor, action="domain.deleted", tenant=domain.tenant_id, org=_root(domain.tenant),
                     target_name=domain.domain, changes={"domain": domain.domain,
                                                         "verified": domain.verified})  # fmt: skip
        fences.invalidate(domain.tenant_id)


def sso_for_address(email: str) -> TenantSSO | None:
    """The SSO configuration of the tenant that verified the domain of ``email``, if any (for sign-in discovery:
    the caller must answer the same whether or not one exists, so nothing reveals which domains use SSO)."""
    domain = email_domain(email)
    if not domain:
        return None
    return (
        TenantSSO.objects.filter(tenant__domains__domain=domain, tenant__domains__verified_at__isnull=False)
        .select_related("tenant")
        .first()
    )


def unlinked_members(tenant: Tenant) -> QuerySet[TenantMembership]:
    """Members whose address is in a verified domain of the tenant and whom its IdP has not asserted yet: the
    people enforcement would send to an IdP that does not know them (shown before enabling it)."""
    names = list(Domain.objects.filter(tenant=tenant, verified_at__isnull=False).values_list("domain", flat=True))
    if not names:
        return TenantMembership.objects.none()
    in_domains = Q()
    for name in names:
        in_domains |= Q(user__email__iendswith=f"@{name}")
    linked = ExternalIdentity.objects.filter(tenant=tenant, user=OuterRef("user"))
    return selectors.tenant_memberships(tenant).filter(in_domains).filter(~Exists(linked)).order_by("user__username")


# --------------------------------------------------------------------------------------------------------------
# Break-glass recovery codes


def hash_recovery_code(code: str) -> str:
    normalized = re.sub(r"[\s-]", "", (code or "").lower())
    return hashlib.sha256(normalized.encode()).hexdigest()


def _new_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(15))
    return "-".join(raw[i : i + 5] for i in range(0, 15, 5))


def regenerate_recovery_codes(*, actor: Any, tenant: Tenant) -> list[str]:
    """Ten new single-use codes, returned once (only their SHA-256 is kept); the unused codes of before stop
    working. For tenant administrators to print and keep for the day the IdP is down."""
    _require_admin(actor, tenant)
    codes = [_new_code() for _ in range(RECOVERY_CODE_COUNT)]
    with transaction.atomic():
        lock_tenant(tenant.pk)
        revoked, _ = RecoveryCode.objects.filter(tenant=tenant, used_at__isnull=True).delete()
        RecoveryCode.objects.bulk_create(
            RecoveryCode(tenant=tenant, code_hash=hash_recovery_code(code), created_by=user_or_none(actor))
            for code in codes
        )
        audit.record(actor=actor, action="sso.recovery_codes", tenant=tenant, org=_root(tenant),
                     target_name="recovery codes", changes={"issued": len(codes), "revoked": revoked})  # fmt: skip
    return codes


def unused_recovery_codes(tenant: Tenant) -> int:
    return RecoveryCode.objects.filter(tenant=tenant, used_at__isnull=True).count()


def use_recovery_code(user: Any, tenant: Tenant, code: str) -> bool:
    """Spend one break-glass code of ``tenant`` for ``user``, a tenant administrator (whose password the caller
    checked): True once per code, atomically (two requests with the same code: one wins), audited. False for
    anyone else, a wrong or a used code; the caller throttles attempts."""
    if not isinstance(code, str) or not code.strip() or user is None or not getattr(user, "pk", None):
        return False
    # By roles alone (policy.by_roles): the fences close an enforcing tenant to the password session this code is
    # meant to open.
    if not _is_admin_member(user, tenant):
        return False
    with transaction.atomic():
        now = timezone.now()
        spent = RecoveryCode.objects.filter(
            tenant=tenant, code_hash=hash_recovery_code(code), used_at__isnull=True
        ).update(used_at=now, used_by=user)
        if spent != 1:
            return False
        used = RecoveryCode.objects.get(tenant=tenant, code_hash=hash_recovery_code(code))
        audit.record(actor=user, action="sso.recovery_used", tenant=tenant, org=_root(tenant), target=used,
                     target_name="recovery code", changes={"left": unused_recovery_codes(tenant)})  # fmt: skip
    return True
