"""Signing in through a tenant's identity provider: sign-in discovery on the log-in page, the callback, just-in-time
provisioning with group mapping, the administrator's test sign-in and the break-glass page.

- **Discovery** (``login``): the log-in page asks for the e-mail address first. An address in a verified domain of a
  tenant with single sign-on goes to that tenant's IdP; anything else (an unknown or unverified domain, an unknown
  user, a username) gets the same password form, with the same status and the same one query: the page reveals
  neither which domains are claimed nor which accounts exist. Posting a username and a password directly still
  works (and django-axes still counts and locks out).
- **Attempts** live in the session, keyed by ``state``, each with its nonce and PKCE verifier, for ten minutes and
  used once: a callback whose state is unknown, expired or already used is refused before anything is fetched.
- **Provisioning** keys a person by (tenant, issuer, subject). A first sign-in creates the account (a username from
  the e-mail, no usable password) and the tenant membership. The IdP vouches for an address only when it says it
  verified it and the address is in one of the tenant's verified domains: only then is the new account's address
  verified, and only then is an existing account with that address linked — and only one that already belongs to
  this tenant and verified the address itself. Any other match is refused, never linked (across tenants above all).
- **Group sync** grants the highest mapped role per org, through the access services with ``SYSTEM`` as the actor.
  It only adds, unless the tenant turned on ``remove_unmapped_roles`` and the IdP sent the groups claim: then it takes
  back what an earlier sync gave (identity.models.SyncedGrant) and nothing an administrator gave by hand.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlencode
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from access import audit, policy
from access.models import OrgUserGrant, Role, TenantMembership
from access.services.grants import add_tenant_member, change_grant, grant_role, revoke_grant
from access.views import LoginForm, LoginView
from config.actors import SYSTEM
from config.errors import DomainError
from identity import oidc, services
from identity.models import Domain, ExternalIdentity, GroupRole, RecoveryCode, SyncedGrant, TenantSSO
from identity.services import mark_tested, use_recovery_code
from orgs.models import Organization, Tenant
from twofactor.flow import complete_login

log = logging.getLogger("canopy.security")

ATTEMPTS_KEY = "canopy_sso_attempts"
ATTEMPT_TTL = 600  # seconds between leaving for the IdP and coming back
MAX_ATTEMPTS = 5  # open attempts per session (several tabs); the oldest goes first


# -- attempts in the session ----------------------------------------------------------------------------------------


def _store_attempt(request: HttpRequest, attempt: oidc.Attempt, **data: Any) -> None:
    now = time.time()
    attempts = {
        state: value
        for state, value in (request.session.get(ATTEMPTS_KEY) or {}).items()
        if isinstance(value, dict) and value.get("created", 0) + ATTEMPT_TTL > now
    }
    attempts[attempt.state] = {"nonce": attempt.nonce, "verifier": attempt.verifier, "created": now, **data}
    while len(attempts) > MAX_ATTEMPTS:
        attempts.pop(min(attempts, key=lambda s: attempts[s]["created"]))
    request.session[ATTEMPTS_KEY] = attempts


def _pop_attempt(request: HttpRequest, state: str) -> tuple[oidc.Attempt, dict[str, Any]] | None:
    """The pending attempt named by ``state``, removed from the session whatever happens next (single use)."""
    attempts = dict(request.session.get(ATTEMPTS_KEY) or {})
    data = attempts.pop(state, None) if state else None
    request.session[ATTEMPTS_KEY] = attempts
    if not isinstance(data, dict) or data.get("created", 0) + ATTEMPT_TTL <= time.time():
        return None
    return oidc.Attempt(state=state, nonce=data["nonce"], verifier=data["verifier"]), data


def _safe_next(request: HttpRequest, value: Any) -> str:
    if (
        isinstance(value, str)
        and value
        and url_has_allowed_host_and_scheme(
            value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return value
    return reverse(settings.LOGIN_REDIRECT_URL)


def _failure(request: HttpRequest, message: str, *, status: int = 400, tenant: Any = None) -> HttpResponse:
    return render(
        request, "identity/signin/failed.html", {"message": message, "tenant": tenant}, status=status
    )  # fmt: skip


def begin(
    request: HttpRequest, sso: TenantSSO, *, next_url: str, purpose: str = "signin", hint: str = ""
) -> HttpResponse:
    """Leave for the tenant's IdP with a fresh attempt (state, nonce, PKCE verifier kept in the session)."""
    try:
        provider = oidc.discover(sso.issuer)
    except oidc.SignInFailed as failure:
        log.warning("sso: %s for tenant %s: %s", purpose, sso.tenant_id, failure.reason)
        return _failure(request, failure.message, status=502)
    attempt = oidc.new_attempt()
    _store_attempt(
        request,
        attempt,
        tenant=str(sso.tenant_id),
        purpose=purpose,
        next=next_url,
        changed_at=sso.changed_at.isoformat(),
        tester=str(request.user.pk) if purpose == "test" else None,
    )
    return HttpResponseRedirect(oidc.authorization_url(sso, provider, attempt, login_hint=hint))


# -- sign-in discovery: the console's log-in page -------------------------------------------------------------------


def sso_for_address(address: str) -> TenantSSO | None:
    """The single sign-on of the tenant that verified this address's domain, if any (one query, whatever the
    answer: the page must not take longer for a claimed domain than for an unknown one)."""
    local, at, domain = address.strip().rpartition("@")
    domain = domain.strip().lower().rstrip(".")
    if not at or not local or not domain:
        domain = ""  # still one query: the same database round trip for a username
    return (
        TenantSSO.objects.filter(tenant__domains__domain__iexact=domain, tenant__domains__verified_at__isnull=False)
        .select_related("tenant")
        .first()
    )


# The password step: Django's view with its form (django-axes counts and locks out), ending in the second factor's
# code step for a user with a device (access.views.LoginView → twofactor.flow.complete_login).
_password_login = LoginView.as_view(extra_context={"step": "password"})


class IdentifyForm(forms.Form):
    email = forms.CharField(label="E-mail address or username", max_length=254, strip=True)


def _login_page(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return render(request, "registration/login.html", context, status=status)


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    """The log-in page: the e-mail first (``?email=`` too), then the IdP or the password form (see the module)."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.user.is_authenticated:
        return redirect(_safe_next(request, next_url))
    if request.method == "POST" and "password" in request.POST:
        return cast(HttpResponse, _password_login(request))
    if request.GET.get("password"):  # "log in with a password instead", for members of a tenant that allows it
        return _login_page(request, {"form": LoginForm(request), "step": "password", "next": next_url})
    raw = request.POST.get("email") if request.method == "POST" else request.GET.get("email")
    if raw is None:
        return _login_page(request, {"form": IdentifyForm(), "step": "identify", "next": next_url})
    identify = IdentifyForm({"email": raw})
    if not identify.is_valid():
        return _login_page(request, {"form": identify, "step": "identify", "next": next_url}, status=400)
    address = identify.cleaned_data["email"]
    sso = sso_for_address(address)
    if sso is not None:
        return begin(request, sso, next_url=_safe_next(request, next_url), hint=address)
    form = LoginForm(request, initial={"username": address})
    return _login_page(request, {"form": form, "step": "password", "next": next_url})


@never_cache  # each answer carries a fresh state: never a cached one
@require_GET
def sso_start(request: HttpRequest) -> HttpResponse:
    """Sign in through one tenant's IdP (the ``sso-required`` page links here with ``?tenant=&next=``)."""
    try:
        tenant_id = UUID(request.GET.get("tenant", ""))
    except ValueError:
        raise Http404 from None
    sso = TenantSSO.objects.filter(tenant_id=tenant_id).select_related("tenant").first()
    if sso is None:
        raise Http404
    return begin(request, sso, next_url=_safe_next(request, request.GET.get("next")))


# -- the callback ---------------------------------------------------------------------------------------------------


@never_cache
@require_GET
def sso_callback(request: HttpRequest) -> HttpResponse:
    """Where the IdP sends the browser back. Nothing is fetched or written before the state matched a pending
    attempt of this session, and that attempt is gone afterwards whatever the outcome."""
    pending = _pop_attempt(request, request.GET.get("state", ""))
    if pending is None:
        return _failure(request, "This sign-in is not valid any more (it expired or was already used). Start again.")
    attempt, data = pending
    sso = TenantSSO.objects.filter(tenant_id=str(data.get("tenant"))).select_related("tenant").first()
    if sso is None:
        return _failure(request, "Single sign-on is not configured for this organization any more.")
    if request.GET.get("error"):
        log.info("sso: IdP answered %r for tenant %s", request.GET.get("error"), sso.tenant_id)
        return _failure(request, "The identity provider did not sign you in. Start again.", tenant=sso.tenant)
    code = request.GET.get("code", "")
    if not code:
        return _failure(request, "The identity provider's answer is incomplete. Start again.", tenant=sso.tenant)
    try:
        identity = oidc.complete(sso, attempt, code=code, iss=request.GET.get("iss"))
        if data.get("purpose") == "test":
            return _finish_test(request, sso, identity, data)
        user = provision(sso=sso, identity=identity)
    except oidc.SignInFailed as failure:
        log.warning("sso: sign-in for tenant %s refused: %s", sso.tenant_id, failure.reason)
        return _failure(request, failure.message, tenant=sso.tenant)
    next_url = _safe_next(request, data.get("next"))
    response = _finish_login(request, user, sso.tenant, next_url)
    return response or redirect(next_url)


def _finish_login(request: HttpRequest, user: Any, tenant: Tenant, next_url: str = "") -> HttpResponse | None:
    """Sign ``user`` in through ``tenant``'s IdP (twofactor.flow.complete_login: a user with a second factor goes
    through its code step first, and None means signed in). The session keeps the tenants an earlier SSO sign-in of
    the same person opened."""
    return complete_login(request, user, method="sso", sso_tenant=tenant.pk, next_url=next_url)


# -- just-in-time provisioning and group sync -----------------------------------------------------------------------


def provision(*, sso: TenantSSO, identity: oidc.Identity) -> Any:
    """The account ``identity`` signs in as: found by (tenant, issuer, subject), else linked or created (see the
    module), made a member of the tenant, its roles synced from its groups; audited. SignInFailed when refused.

    Two first sign-ins of the same person at once (two tabs, a double click) race on the identity's unique key:
    the loser starts again once and finds the winner's identity, instead of failing."""
    for attempt in (1, 2):
        try:
            user = _provision(sso, identity)
        except IntegrityError:
            if attempt == 2:
                raise oidc.SignInFailed(
                    "This sign-in collided with another one. Try again.", "integrity error"
                ) from None
            continue
        except DomainError as error:
            raise oidc.SignInFailed("Your roles could not be set up. Ask your administrator.", error.detail) from None
        except ValidationError as error:  # a mapped role not usable at its org (a custom role defined elsewhere)
            raise oidc.SignInFailed("Your roles could not be set up. Ask your administrator.", str(error)) from None
        policy.forget(user)
        return user
    raise AssertionError("unreachable")


def _provision(sso: TenantSSO, identity: oidc.Identity) -> Any:
    tenant = sso.tenant
    with transaction.atomic():
        external = (
            ExternalIdentity.objects.select_for_update()
            .select_related("user")
            .filter(tenant=tenant, issuer=identity.issuer, subject=identity.subject)
            .first()
        )
        created_account = False
        if external is None:
            user, created_account = _link_or_create(tenant, identity)
            external = ExternalIdentity.objects.create(
                user=user, tenant=tenant, issuer=identity.issuer, subject=identity.subject
            )
        user = external.user
        if not user.is_active:
            raise oidc.SignInFailed("This Canopy account is deactivated.", f"inactive user {user.pk}")
        new_member = not TenantMembership.objects.filter(tenant=tenant, user=user).exists()
        if new_member:
            add_tenant_member(actor=SYSTEM, tenant=tenant, user=user)
        changes = sync_roles(sso=sso, external=external, groups=identity.groups, new_member=new_member)
        external.email = identity.email[:254]
        if identity.groups is not None:
            external.groups = identity.groups
        external.last_login_at = timezone.now()
        external.save(update_fields=["email", "groups", "last_login_at"])
        if created_account or new_member:
            audit.record(
                actor=SYSTEM, action="sso.provisioned", tenant=tenant, target=user,
                target_name=user.get_username(),
                changes={"subject": identity.subject, "new_account": created_account, "roles": changes["added"]},
            )  # fmt: skip
        if any(changes.values()):
            audit.record(
                actor=SYSTEM, action="sso.roles_synced", tenant=tenant, target=user,
                target_name=user.get_username(), changes=changes,
            )  # fmt: skip
        audit.record(
            actor=user, action="sso.signin", tenant=tenant, target=external, target_name=user.get_username(),
            changes={"issuer": identity.issuer, "subject": identity.subject},
        )  # fmt: skip
    return user


def _address_trusted(tenant: Tenant, identity: oidc.Identity) -> bool:
    """Whether the tenant's IdP may vouch for this address: it says it verified it, and the address is in a domain
    the tenant proved it owns. An IdP is an authority on its own domains only: anything else it asserts would let
    one tenant claim (and lock everyone else out of) any address in Canopy."""
    domain = identity.email.rpartition("@")[2].strip().lower().rstrip(".")
    return (
        identity.email_verified
        and bool(domain)
        and Domain.objects.filter(tenant=tenant, domain__iexact=domain, verified_at__isnull=False).exists()
    )


def _link_or_create(tenant: Tenant, identity: oidc.Identity) -> tuple[Any, bool]:
    User = get_user_model()
    refused = (
        "A Canopy account with this e-mail address already exists and cannot be linked to your organization's "
        "sign-in automatically. Sign in with your password, or ask your administrator."
    )
    trusted = bool(identity.email) and _address_trusted(tenant, identity)
    if identity.email:
        matches = list(User.objects.filter(email__iexact=identity.email))
        if matches:
            linkable = [
                u
                for u in matches
                if u.email_verified and TenantMembership.objects.filter(tenant=tenant, user=u).exists()
            ]
            if trusted and len(matches) == 1 and linkable:
                return linkable[0], False
            raise oidc.SignInFailed(refused, f"e-mail {identity.email!r} matches an account that cannot be linked")
    user = User.objects.create_user(username=_free_username(identity), email=identity.email, password=None)
    if trusted:
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
    return user, True


def _free_username(identity: oidc.Identity) -> str:
    """A username from the e-mail's local part (or the preferred username), unique in any case."""
    User = get_user_model()
    preferred = identity.claims.get("preferred_username")
    base = identity.email.partition("@")[0] or (preferred if isinstance(preferred, str) else "") or "member"
    base = re.sub(r"[^\w.@+-]", "", base)[:140] or "member"
    candidate, n = base, 1
    while User.objects.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}{n}"
    return candidate


def _rank(role: Role) -> tuple[int, str]:
    """Which of two roles is higher: the one with more capabilities (admin > integrator > guest)."""
    return (len(role.capabilities), role.key)


def _desired_roles(sso: TenantSSO, groups: list[str] | None, *, new_member: bool) -> dict[UUID, tuple[Any, Role]]:
    """{org id: (org, role)}: the highest mapped role per org; the default role for a new member none maps to."""
    desired: dict[UUID, tuple[Any, Role]] = {}
    if groups:
        for mapping in GroupRole.objects.filter(sso=sso, group__in=groups).select_related("role", "org"):
            if mapping.org.tenant_id != sso.tenant_id or mapping.org.deleted_at is not None:
                continue
            current = desired.get(mapping.org_id)
            if current is None or _rank(mapping.role) > _rank(current[1]):
                desired[mapping.org_id] = (mapping.org, mapping.role)
    if not desired and new_member and sso.default_role is not None:
        org = sso.default_org or Organization.objects.get(tenant_id=sso.tenant_id, parent__isnull=True)
        desired[org.pk] = (org, sso.default_role)
    return desired


def sync_roles(
    *, sso: TenantSSO, external: ExternalIdentity, groups: list[str] | None, new_member: bool
) -> dict[str, list[str]]:
    """Bring the member's roles to what the groups map to (see the module). Returns what changed, for the audit."""
    user = external.user
    removing = sso.remove_unmapped_roles and groups is not None
    desired = _desired_roles(sso, groups, new_member=new_member)
    grants = {
        g.content_object_id: g
        for g in OrgUserGrant.objects.filter(user=user, content_object__tenant_id=sso.tenant_id).select_related(
            "role", "content_object"
        )
    }
    markers = {
        m.grant_id: m for m in SyncedGrant.objects.filter(identity=external).select_related("role", "previous_role")
    }
    changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
    for org_id, (org, role) in desired.items():
        grant = grants.get(org_id)
        if grant is None:
            given = cast(OrgUserGrant, grant_role(actor=SYSTEM, target=org, role=role, user=user))
            SyncedGrant.objects.create(identity=external, grant=given, role=role)
            changes["added"].append(f"{role.key} at {org.name}")
            continue
        marker = markers.get(grant.pk)
        if grant.role_id == role.pk:
            continue
        ours = marker if marker is not None and marker.role_id == grant.role_id else None
        if _rank(role) > _rank(grant.role):
            previous = grant.role
            change_grant(actor=SYSTEM, grant=grant, role=role)
            if ours is not None:
                ours.role = role
                ours.save(update_fields=["role"])
            else:
                SyncedGrant.objects.filter(grant=grant).delete()
                SyncedGrant.objects.create(identity=external, grant=grant, role=role, previous_role=previous)
            changes["changed"].append(f"{previous.key} → {role.key} at {org.name}")
        elif ours is not None and removing:
            # Lower what sync gave, never below what the member held by hand before sync raised it.
            by_hand = ours.previous_role if ours.previous_role_id is not None else None
            lowered = by_hand if by_hand is not None and _rank(by_hand) >= _rank(role) else role
            change_grant(actor=SYSTEM, grant=grant, role=lowered)
            if lowered == by_hand:
                ours.delete()
            else:
                ours.role = role
                ours.save(update_fields=["role"])
            changes["changed"].append(f"{grant.role.key} → {lowered.key} at {org.name}")
    if removing:
        for grant_id, marker in markers.items():
            grant = next((g for g in grants.values() if g.pk == grant_id), None)
            if grant is None or grant.content_object_id in desired:
                continue
            if grant.role_id == marker.role_id:  # still what sync gave: take it back
                if marker.previous_role is not None:
                    change_grant(actor=SYSTEM, grant=grant, role=marker.previous_role)
                    changes["changed"].append(
                        f"{grant.role.key} → {marker.previous_role.key} at {grant.content_object.name}"
                    )
                else:
                    revoke_grant(actor=SYSTEM, grant=grant)
                    changes["removed"].append(f"{grant.role.key} at {grant.content_object.name}")
            marker.delete()
    return changes


# -- the administrator's test sign-in -------------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def sso_test(request: HttpRequest) -> HttpResponse:
    """A tenant administrator (``?tenant=``) signs in at the IdP to prove the configuration works: enforcing needs
    it. Their own Canopy session is not touched; the result only marks the configuration as tested. (A GET is
    safe: it only leaves for the IdP; what counts is the callback, bound to this session's attempt.)"""
    if not request.user.is_authenticated:
        return redirect(f"{reverse('login')}?{urlencode({'next': request.get_full_path()})}")
    try:
        tenant_id = UUID(request.GET.get("tenant") or request.POST.get("tenant") or "")
    except ValueError:
        raise Http404 from None
    sso = TenantSSO.objects.filter(tenant_id=tenant_id).select_related("tenant").first()
    if sso is None or not policy.can(request.user, policy.TENANT_ADMIN, sso.tenant):
        raise Http404
    return begin(request, sso, next_url="", purpose="test")


def _finish_test(request: HttpRequest, sso: TenantSSO, identity: oidc.Identity, data: dict[str, Any]) -> HttpResponse:
    user = request.user
    if not user.is_authenticated or str(user.pk) != data.get("tester"):
        raise oidc.SignInFailed("Start the test sign-in again from the configuration page.", "tester changed")
    if not mark_tested(actor=user, tenant=sso.tenant, changed_at=datetime.fromisoformat(data["changed_at"])):
        raise oidc.SignInFailed(
            "The configuration changed during the test (or you no longer administer the tenant): test it again.",
            "configuration changed mid-test",
        )
    fresh = TenantSSO.objects.select_related("tenant").get(pk=sso.pk)
    roles = _desired_roles(fresh, identity.groups, new_member=True)
    return render(
        request,
        "identity/signin/tested.html",
        {
            "tenant": fresh.tenant,
            "identity": identity,
            "roles": [f"{role.name} at {org.name}" for org, role in roles.values()],
        },
    )


# -- break-glass: a tenant administrator's recovery code ------------------------------------------------------------


class RecoveryForm(forms.Form):
    username = forms.CharField(max_length=150)
    password = forms.CharField(widget=forms.PasswordInput, strip=False)
    code = forms.CharField(label="Recovery code", max_length=100)


RECOVERY_REFUSED = "These credentials do not open a tenant: check the username, the password and the recovery code."


@sensitive_post_parameters("password", "code")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_recovery(request: HttpRequest) -> HttpResponse:
    """Break-glass sign-in for a tenant administrator when the IdP is down: password plus a single-use recovery
    code, giving a session that counts as signed in through that tenant's IdP (method ``recovery``). Every failure
    looks the same, and a right password with a wrong code counts as a failed log-in (django-axes)."""
    form = RecoveryForm(request.POST if request.method == "POST" else None)
    if request.method == "GET" or not form.is_valid():
        return render(request, "identity/signin/recovery.html", {"form": form}, status=200 if not form.errors else 400)
    username, code = form.cleaned_data["username"], form.cleaned_data["code"]
    user = auth.authenticate(request, username=username, password=form.cleaned_data["password"])
    if getattr(request, "axes_locked_out", False):
        return render(request, "identity/signin/recovery.html", {"form": form}, status=429)  # AxesMiddleware answers
    recovery = RecoveryCode.objects.filter(code_hash=services.hash_recovery_code(code), used_at__isnull=True).first()
    tenant = recovery.tenant if recovery is not None else None
    if (
        user is None
        or tenant is None
        or not use_recovery_code(user, tenant, code)  # tenant administrators only: the service decides
    ):
        if user is not None:  # the password was right: the code counts as the failed credential
            user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)
        form.add_error(None, RECOVERY_REFUSED)
        return render(request, "identity/signin/recovery.html", {"form": form}, status=400)
    return _finish_recovery(request, user, tenant) or redirect(reverse(settings.LOGIN_REDIRECT_URL))


def _finish_recovery(request: HttpRequest, user: Any, tenant: Tenant) -> HttpResponse | None:
    """A session that counts as signed in through ``tenant``'s IdP, by break-glass: a code does not skip the second
    factor (twofactor.flow.complete_login)."""
    return complete_login(request, user, method="recovery", sso_tenant=tenant.pk)
