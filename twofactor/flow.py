"""The sign-in's second step: every primary sign-in (password, SSO) ends in ``complete_login``.

A user with a confirmed device is not signed in yet: the session keeps a pending sign-in (who, how, where to go
next; for five minutes and five wrong codes) and the browser goes to the code page (``twofactor-verify``), which
signs the user in with the context the primary sign-in earned plus ``otp_verified``. Anyone else is signed in at
once. Nothing here trusts the browser: the pending sign-in lives in the server-side session, and a new session key
is issued when the user is finally signed in (``django.contrib.auth.login``).
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from access import fences
from twofactor import services

PENDING_KEY = "canopy_2fa_pending"
PENDING_SECONDS = 300
MAX_ATTEMPTS = 5
DEFAULT_BACKEND = "django.contrib.auth.backends.ModelBackend"


def safe_next(request: HttpRequest, target: Any, default: str = "") -> str:
    """``target`` when it stays on this site, else ``default`` (or the landing page)."""
    text = str(target or "")
    if text and url_has_allowed_host_and_scheme(
        text, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return text
    return default or reverse(settings.LOGIN_REDIRECT_URL)


def complete_login(
    request: HttpRequest,
    user: Any,
    *,
    method: str = "password",
    sso_tenant: UUID | None = None,
    backend: str = DEFAULT_BACKEND,
    next_url: str | None = None,
) -> HttpResponse | None:
    """Finish a primary sign-in of ``user`` (``method`` "password" or "sso"; ``sso_tenant``: the tenant whose IdP
    authenticated them). With a confirmed device: the pending sign-in is stored and the redirect to the code page
    returned. Otherwise the user is signed in with that context and None returned (the caller redirects on).
    ``next_url`` (default: the request's ``next`` parameter) is where the code page sends the user afterwards."""
    target = next_url if next_url is not None else (request.POST.get("next") or request.GET.get("next") or "")
    if services.has_device(user):
        request.session[PENDING_KEY] = {
            "user": str(user.pk),
            "method": method,
            "sso_tenant": str(sso_tenant) if sso_tenant else None,
            "backend": backend,
            "next": safe_next(request, target),
            "at": time.time(),
            "failures": 0,
        }
        return redirect(reverse("twofactor-verify"))
    _sign_in(request, user, method=method, sso_tenant=sso_tenant, backend=backend, otp_verified=False)
    return None


def _sign_in(
    request: HttpRequest, user: Any, *, method: str, sso_tenant: UUID | None, backend: str, otp_verified: bool
) -> None:
    # A second SSO sign-in of the same user in the same session adds its tenant to those already proved.
    current = getattr(request, "user", None)
    same = current is not None and current.is_authenticated and current.pk == user.pk
    earlier = fences.session_context(request).sso_tenants if same else frozenset()
    request.session.pop(PENDING_KEY, None)
    login(request, user, backend=backend)
    tenants = set(earlier) | ({sso_tenant} if sso_tenant else set())
    fences.update_session_context(request, method=method, sso_tenants=tenants, otp_verified=otp_verified)


def pending(request: HttpRequest) -> tuple[Any, dict[str, Any]] | None:
    """The pending sign-in of this session and its user, if it is still good (not expired, user still active)."""
    data = request.session.get(PENDING_KEY)
    if not isinstance(data, dict):
        return None
    if time.time() - float(data.get("at") or 0) > PENDING_SECONDS or int(data.get("failures") or 0) >= MAX_ATTEMPTS:
        request.session.pop(PENDING_KEY, None)
        return None
    user = get_user_model().objects.filter(pk=str(data.get("user") or ""), is_active=True).first()
    if user is None:
        request.session.pop(PENDING_KEY, None)
        return None
    return user, data


def finish_pending(request: HttpRequest, code: Any) -> services.Check:
    """Check the code of the pending sign-in; on success sign the user in (verified) and drop the pending state.
    A wrong code counts against the pending sign-in (after ``MAX_ATTEMPTS`` it is gone: sign in again)."""
    found = pending(request)
    if found is None:
        return services.Check()
    user, data = found
    result = services.check_code(user, code)
    if not result.ok:
        if not result.throttled:
            data["failures"] = int(data.get("failures") or 0) + 1
            request.session[PENDING_KEY] = data
        return result
    sso_tenant = UUID(data["sso_tenant"]) if data.get("sso_tenant") else None
    _sign_in(request, user, method=data["method"], sso_tenant=sso_tenant, backend=data["backend"], otp_verified=True)
    return result


def verify_session(request: HttpRequest, code: Any) -> services.Check:
    """A signed-in user whose session was not verified (a device set up since, or a sign-in that skipped it)
    proves a second factor now: the session becomes ``otp_verified`` under a new key."""
    result = services.check_code(request.user, code)
    if result.ok:
        request.session.cycle_key()
        fences.update_session_context(request, otp_verified=True)
    return result


def mark_verified(request: HttpRequest) -> None:
    """The session just proved a second factor another way (confirming a new device with its first code)."""
    request.session.cycle_key()
    fences.update_session_context(request, otp_verified=True)
