"""The console's account pages: sign-up, log-in, the account itself (e-mail, password), password reset, e-mail
verification, personal API tokens, and accepting an invitation.

Links e-mailed by Canopy carry their code in the URL fragment (``/account/password-reset/confirm/#<code>``): the
browser never sends it, so no access log holds it. static/js/link-code.js moves it into the page's form; without
JavaScript the person pastes the code printed in the e-mail. An invitation's code is exchanged once for its id,
kept in the session: the page that follows holds no secret either.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from access.models import AccessToken
from access.services import accounts, issue_token, revoke_token
from access.services.invitations import (
    accept_invitation,
    account_problem,
    check_usable,
    find_invitation,
    invitation_by_id,
)
from config.errors import Conflict, DomainError, NotFound
from orgs import services as org_services
from orgs.views import apply_errors

# The session keeps the id of the invitation whose code this browser gave (never the code itself).
INVITATION_SESSION_KEY = "canopy_invitation"


def _code_field(label: str) -> forms.CharField:
    """The field a link's code lands in (filled from the URL fragment by static/js/link-code.js)."""
    return forms.CharField(
        label=label,
        max_length=500,
        strip=True,
        widget=forms.TextInput(attrs={"data-link-code": "", "autocomplete": "off", "spellcheck": "false"}),
        help_text="Filled in from the link in the e-mail; without JavaScript, paste the code printed there.",
    )


class SignUpForm(forms.Form):
    tenant_name = forms.CharField(label="Company or team name", max_length=200)
    username = forms.CharField(max_length=150)
    email = forms.EmailField()
    password = forms.CharField(widget=forms.PasswordInput, strip=False)


def signup(request: HttpRequest) -> HttpResponse:
    if not settings.SIGNUP_ENABLED:
        # Not found, as if the page did not exist, but saying why: a person reading it needs to ask for an invitation.
        return render(request, "access/signup_disabled.html", status=404)
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            result = org_services.sign_up(**form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        except DomainError as exc:
            form.add_error("username" if exc.code == "username_taken" else None, exc.detail)
        else:
            login(request, result.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request,
                f"Welcome to Canopy: {result.tenant.name} is ready. We sent a link to {result.user.email}: "
                "open it to verify your e-mail address.",
            )
            return redirect("org", org_id=result.org.pk)
    return render(request, "access/signup.html", {"form": form}, status=400 if form.errors else 200)


class LoginForm(AuthenticationForm):
    """Django's form; django-axes (the first authentication backend) refuses locked-out credentials."""


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="What the token is for, e.g. “CI deploy”.")
    days = forms.IntegerField(min_value=1, max_value=365, initial=30, label="Valid for (days)")


@never_cache  # the response that carries a new raw token must not be kept by any cache
@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    """The user's personal API tokens; a new token's raw value is in this one response only (Canopy keeps a hash)."""
    form = TokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            _, created = issue_token(
                user=request.user, name=form.cleaned_data["name"], lifetime=timedelta(days=form.cleaned_data["days"])
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form = TokenForm()
    listed = AccessToken.objects.filter(user=request.user).order_by("-created_at")
    context: dict[str, Any] = {"form": form, "tokens": listed, "created": created}
    return render(request, "access/tokens.html", context, status=400 if form.errors else 200)


@require_POST
@login_required
def token_revoke(request: HttpRequest, token_id: UUID) -> HttpResponse:
    token = AccessToken.objects.filter(pk=token_id, user=request.user).first()
    if token is None:
        raise Http404
    revoke_token(actor=request.user, token=token)
    messages.success(request, "The token was revoked.")
    return redirect("tokens")


# -- the account itself ----------------------------------------------------------------------------------------


class EmailForm(forms.Form):
    email = forms.EmailField(label="New e-mail address")
    current_password = forms.CharField(label="Your current password", widget=forms.PasswordInput, strip=False)


class PasswordForm(forms.Form):
    current_password = forms.CharField(label="Your current password", widget=forms.PasswordInput, strip=False)
    new_password = forms.CharField(label="New password", widget=forms.PasswordInput, strip=False)
    new_password_again = forms.CharField(label="New password, again", widget=forms.PasswordInput, strip=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("new_password") and data.get("new_password") != data.get("new_password_again"):
            self.add_error("new_password_again", "The two new passwords differ.")
        return data


@never_cache
@sensitive_post_parameters("current_password", "new_password", "new_password_again")
@login_required
def account(request: HttpRequest) -> HttpResponse:
    """The account's own page: its e-mail address (and whether it is verified), a new address, a new password.
    Only the account itself changes these (or a superuser in the admin); a tenant administrator never can."""
    action = request.POST.get("action") if request.method == "POST" else None
    email_form = EmailForm(request.POST if action == "email" else None, prefix="email")
    password_form = PasswordForm(request.POST if action == "password" else None, prefix="password")
    user = request.user
    if action == "verify":
        accounts.send_email_verification(user=user)
        messages.success(request, f"We sent a link to {user.email}: open it to verify the address.")
        return redirect("account")
    if action == "email" and email_form.is_valid():
        try:
            accounts.change_email(user=user, **email_form.cleaned_data)
        except (ValidationError, DomainError) as exc:
            apply_errors(email_form, exc)
        else:
            messages.success(
                request, f"Your e-mail address is now {user.email}. Open the link we sent there to verify it."
            )
            return redirect("account")
    if action == "password" and password_form.is_valid():
        data = password_form.cleaned_data
        try:
            ended = accounts.change_password(
                user=user, current_password=data["current_password"], new_password=data["new_password"]
            )
        except ValidationError as exc:
            apply_errors(password_form, exc)
        else:
            update_session_auth_hash(request, user)  # this session stays; every other one ends
            messages.success(
                request,
                "Your password was changed. Your other sessions ended"
                + (f" and your {ended} API token(s) were revoked." if ended else "."),
            )
            return redirect("account")
    failed = email_form.errors or password_form.errors
    context = {"email_form": email_form, "password_form": password_form}
    return render(request, "access/account.html", context, status=400 if failed else 200)


class CodeForm(forms.Form):
    code = _code_field("Code")


@never_cache
def email_verify(request: HttpRequest) -> HttpResponse:
    """Confirm an e-mail address with the code of the link sent there (no sign-in needed: the code proves it)."""
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = accounts.verify_email(code=form.cleaned_data["code"])
        except (ValidationError, DomainError) as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"{user.email} is verified.")
            return redirect("account" if request.user.is_authenticated else "login")
    return render(request, "access/email_verify.html", {"form": form}, status=400 if form.errors else 200)


class ResetRequestForm(forms.Form):
    email = forms.EmailField(label="Your account's e-mail address")


@never_cache
def password_reset(request: HttpRequest) -> HttpResponse:
    """Ask for a reset link; the answer is the same whether the address has an account or not."""
    form = ResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        accounts.request_password_reset(email=form.cleaned_data["email"])
        messages.success(
            request,
            "If an account has this verified e-mail address, a link to choose a new password is on its way.",
        )
        return redirect("login")
    return render(request, "access/password_reset.html", {"form": form}, status=400 if form.errors else 200)


class ResetForm(forms.Form):
    code = _code_field("Code")
    password = forms.CharField(label="New password", widget=forms.PasswordInput, strip=False)
    password_again = forms.CharField(label="New password, again", widget=forms.PasswordInput, strip=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


@never_cache
@sensitive_post_parameters("code", "password", "password_again")
def password_reset_confirm(request: HttpRequest) -> HttpResponse:
    form = ResetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            accounts.reset_password(code=form.cleaned_data["code"], new_password=form.cleaned_data["password"])
        except ValidationError as exc:
            apply_errors(form, exc)
            if "token" in getattr(exc, "message_dict", {}):
                form.add_error("code", exc.message_dict["token"])
        else:
            messages.success(
                request, "Your password was changed: every session and API token of your account has ended. Log in."
            )
            return redirect("login")
    return render(request, "access/password_reset_confirm.html", {"form": form}, status=400 if form.errors else 200)


# -- invitations ---------------------------------------------------------------------------------------------------


class InvitationCodeForm(forms.Form):
    code = _code_field("Invitation code")


class AcceptForm(forms.Form):
    username = forms.CharField(max_length=150)
    password = forms.CharField(widget=forms.PasswordInput, strip=False)


@never_cache
@sensitive_post_parameters("code", "password")
def invitation_accept(request: HttpRequest) -> HttpResponse:
    """Open an invitation with its code (kept in the session as the invitation's id), then accept it: signed in
    with the account whose verified address it was sent to, or by creating an account with that address."""
    if request.method == "POST" and "code" in request.POST:
        code_form = InvitationCodeForm(request.POST)
        if code_form.is_valid():
            try:
                invitation = find_invitation(code_form.cleaned_data["code"])
            except NotFound as exc:
                code_form.add_error("code", exc.detail)
            else:
                request.session[INVITATION_SESSION_KEY] = str(invitation.pk)
                return redirect("invitation-accept")
        return render(request, "access/invitation_code.html", {"form": code_form}, status=400)
    invitation = None
    if invitation_id := request.session.get(INVITATION_SESSION_KEY):
        try:
            invitation = invitation_by_id(invitation_id)
        except NotFound:
            request.session.pop(INVITATION_SESSION_KEY, None)
    if invitation is None:
        return render(request, "access/invitation_code.html", {"form": InvitationCodeForm()})
    problem: DomainError | None = None
    try:
        check_usable(invitation)
    except Conflict as exc:
        problem = exc
    if problem is None and request.user.is_authenticated:
        problem = account_problem(invitation, request.user)
    form = AcceptForm(request.POST or None) if not request.user.is_authenticated else None
    if request.method == "POST" and problem is None:
        try:
            if request.user.is_authenticated:
                user, _ = accept_invitation(invitation=invitation, user=request.user)
            elif form is not None and form.is_valid():
                user, _ = accept_invitation(invitation=invitation, **form.cleaned_data)
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            else:
                user = None
        except ValidationError as exc:
            if form is not None:
                apply_errors(form, exc)
            else:
                problem = Conflict("; ".join(exc.messages))
            user = None
        except DomainError as exc:
            if form is not None and exc.code in ("username_taken", "email_taken"):
                form.add_error("username" if exc.code == "username_taken" else None, exc.detail)
            else:
                problem = exc
            user = None
        if user is not None:
            request.session.pop(INVITATION_SESSION_KEY, None)
            messages.success(request, f"You joined {invitation.org.name} as {invitation.role.name}.")
            return redirect("org", org_id=invitation.org_id)
    status = problem.status if problem else (400 if form is not None and form.errors else 200)
    context = {"invitation": invitation, "problem": problem.detail if problem else None, "form": form}
    return render(request, "access/invitation.html", context, status=status)


def invitation_legacy_link(request: HttpRequest, token: str) -> HttpResponse:
    """Links e-mailed before the code moved to the fragment (/invitations/<code>/): open the invitation for this
    browser and carry on without the code in any further URL."""
    try:
        invitation = find_invitation(token)
    except NotFound:
        raise Http404("This invitation does not exist.") from None
    request.session[INVITATION_SESSION_KEY] = str(invitation.pk)
    return redirect("invitation-accept")
