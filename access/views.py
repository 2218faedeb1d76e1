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
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from access import fences
from access.models import AccessToken
from access.services import accounts, issue_token, revoke_token
from access.services.invitations import (
    accept_invitation,
    account_problem,
    check_usable,
    find_invitation,
    invitation_by_id,
)
from config.console import ActionForm, Confirm, Write, console_view, dispatch, error_page
from config.errors import Conflict, DomainError, NotFound
from orgs import services as org_services
from twofactor.flow import complete_login

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


@console_view(login=False)
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.SIGNUP_ENABLED:
        # Not found, as if the page did not exist, but saying why: a person reading it needs to ask for an invitation.
        return render(request, "access/signup_disabled.html", status=404)

    def welcome(result: Any) -> str:
        login(request, result.user, backend="django.contrib.auth.backends.ModelBackend")
        return reverse("org", args=[result.org.pk])

    write = Write(
        run=lambda d: org_services.sign_up(**d), then=welcome, form=SignUpForm, form_key="form",
        done=lambda result: f"Welcome to Canopy: {result.tenant.name} is ready. We sent a link to "
        f"{result.user.email}: open it to verify your e-mail address.",
    )  # fmt: skip
    return dispatch(
        request, {"": write}, lambda context: render(request, "access/signup.html", {"form": SignUpForm()} | context)
    )


class LoginForm(AuthenticationForm):
    """Django's form; django-axes (the first authentication backend) refuses locked-out credentials."""


class LoginView(auth_views.LoginView):
    """Django's log-in page, whose password sign-in ends in the second-factor step (twofactor.flow): a user with a
    confirmed device is sent to the code page instead of being signed in."""

    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        user = form.get_user()
        backend = getattr(user, "backend", None) or "django.contrib.auth.backends.ModelBackend"
        step = complete_login(self.request, user, method="password", backend=backend, next_url=self.get_success_url())
        return step or redirect(self.get_success_url())


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="What the token is for, e.g. “CI deploy”.")
    days = forms.IntegerField(min_value=1, max_value=365, initial=30, label="Valid for (days)")


def _tokens_page(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    listed = AccessToken.objects.filter(user=request.user).order_by("-created_at")
    return render(request, "access/tokens.html", {"form": TokenForm(), "tokens": listed, "created": None} | context)


@never_cache  # the response that carries a new raw token must not be kept by any cache
@console_view
def tokens(request: HttpRequest) -> HttpResponse:
    """The user's personal API tokens; a new token's raw value is in this one response only (Canopy keeps a hash)."""
    write = Write(
        run=lambda d: issue_token(
            user=request.user, name=d["name"], lifetime=timedelta(days=d["days"]),
            # what the session proved goes into its tokens: a second factor (subtrees requiring one), SSO tenants
            otp_verified=fences.context_of(request.user).otp_verified,
            sso_tenants=fences.context_of(request.user).sso_tenants,
        ),
        then=lambda result: _tokens_page(request, {"created": result[1]}), form=TokenForm, form_key="form",
    )  # fmt: skip
    return dispatch(request, {"": write}, lambda context: _tokens_page(request, context))


@require_POST
@console_view
def token_revoke(request: HttpRequest, token_id: UUID) -> HttpResponse:
    token = AccessToken.objects.filter(pk=token_id, user=request.user).first()
    if token is None:
        raise NotFound()
    write = Write(
        run=lambda d: revoke_token(actor=request.user, token=token), done="The token was revoked.",
        then=lambda result: reverse("tokens"),
        confirm=lambda d: Confirm(
            title=f"Revoke the token {token.name or token.hint}?", button="Revoke", cancel=reverse("tokens"),
            goes_with=["every script or integration that uses it: its next call is refused"],
            note="This cannot be undone: create a new token and give it to them instead.",
        ),
    )  # fmt: skip
    return dispatch(request, {"": write}, lambda context: _tokens_page(request, context))


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
@console_view
def account(request: HttpRequest) -> HttpResponse:
    """The account's own page: its e-mail address (and whether it is verified), a new address, a new password.
    Only the account itself changes these (or a superuser in the admin); a tenant administrator never can."""
    user = request.user

    def new_password(d: dict[str, Any]) -> int:
        ended = accounts.change_password(
            user=user, current_password=d["current_password"], new_password=d["new_password"]
        )
        update_session_auth_hash(request, user)  # this session stays; every other one ends
        return ended

    here = reverse("account")
    writes = {
        "verify": Write(
            run=lambda d: accounts.send_email_verification(user=user), then=lambda result: here,
            done=lambda result: f"We sent a link to {user.email}: open it to verify the address.",
        ),
        "email": Write(
            run=lambda d: accounts.change_email(user=user, email=d["email"], current_password=d["current_password"]),
            then=lambda result: here, form=lambda *a: EmailForm(*a, prefix="email"), form_key="email_form",
            done=lambda result: f"Your e-mail address is now {user.email}. Open the link we sent there to verify it.",
        ),
        "password": Write(
            run=new_password, then=lambda result: here, form=lambda *a: PasswordForm(*a, prefix="password"),
            form_key="password_form",
            done=lambda ended: "Your password was changed. Your other sessions ended"
            + (f" and your {ended} API token(s) were revoked." if ended else "."),
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        forms_ = {"email_form": EmailForm(prefix="email"), "password_form": PasswordForm(prefix="password")}
        return render(request, "access/account.html", forms_ | context)

    return dispatch(request, writes, show)


class CodeForm(forms.Form):
    code = _code_field("Code")


@never_cache
@console_view(login=False)
def email_verify(request: HttpRequest) -> HttpResponse:
    """Confirm an e-mail address with the code of the link sent there (no sign-in needed: the code proves it)."""
    write = Write(
        run=lambda d: accounts.verify_email(code=d["code"]), done=lambda user: f"{user.email} is verified.",
        then=lambda user: reverse("account" if request.user.is_authenticated else "login"), form=CodeForm,
        form_key="form",
    )  # fmt: skip
    return dispatch(
        request,
        {"": write},
        lambda context: render(request, "access/email_verify.html", {"form": CodeForm()} | context),
    )


class ResetRequestForm(forms.Form):
    email = forms.EmailField(label="Your account's e-mail address")


@never_cache
@console_view(login=False)
def password_reset(request: HttpRequest) -> HttpResponse:
    """Ask for a reset link; the answer is the same whether the address has an account or not."""
    write = Write(
        run=lambda d: accounts.request_password_reset(email=d["email"]), then=lambda result: reverse("login"),
        done="If an account has this verified e-mail address, a link to choose a new password is on its way.",
        form=ResetRequestForm, form_key="form",
    )  # fmt: skip
    return dispatch(
        request,
        {"": write},
        lambda context: render(request, "access/password_reset.html", {"form": ResetRequestForm()} | context),
    )


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
@console_view(login=False)
def password_reset_confirm(request: HttpRequest) -> HttpResponse:
    write = Write(
        run=lambda d: accounts.reset_password(code=d["code"], new_password=d["password"]),
        then=lambda user: reverse("login"), form=ResetForm, form_key="form", rename={"token": "code"},
        done="Your password was changed: every session and API token of your account has ended. Log in.",
    )  # fmt: skip
    return dispatch(
        request,
        {"": write},
        lambda context: render(request, "access/password_reset_confirm.html", {"form": ResetForm()} | context),
    )


# -- invitations ---------------------------------------------------------------------------------------------------


class InvitationCodeForm(forms.Form):
    code = _code_field("Invitation code")


class AcceptForm(forms.Form):
    username = forms.CharField(max_length=150)
    password = forms.CharField(widget=forms.PasswordInput, strip=False)


def _open_invitation(request: HttpRequest, code: str) -> str:
    """Exchange an invitation's code for its id in the session; an unknown code is the code field's error."""
    try:
        invitation = find_invitation(code)
    except NotFound as exc:
        raise ValidationError({"code": [exc.detail]}) from None
    request.session[INVITATION_SESSION_KEY] = str(invitation.pk)
    return reverse("invitation-accept")


@never_cache
@sensitive_post_parameters("code", "password")
@console_view(login=False)
def invitation_accept(request: HttpRequest) -> HttpResponse:
    """Open an invitation with its code (kept in the session as the invitation's id), then accept it: signed in
    with the account whose verified address it was sent to, or by creating an account with that address."""
    if request.method == "POST" and "code" in request.POST:
        write = Write(
            run=lambda d: _open_invitation(request, d["code"]), then=lambda url: url, form=InvitationCodeForm,
            form_key="form",
        )  # fmt: skip
        return dispatch(request, {"": write}, lambda context: render(request, "access/invitation_code.html", context))
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
    signed_in = request.user.is_authenticated

    def accept(d: dict[str, Any]) -> Any:
        if problem is not None:
            raise problem
        if signed_in:
            user, _ = accept_invitation(invitation=invitation, user=request.user)
        else:
            user, _ = accept_invitation(invitation=invitation, username=d["username"], password=d["password"])
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        request.session.pop(INVITATION_SESSION_KEY, None)
        return user

    write = Write(
        run=accept, then=lambda user: reverse("org", args=[invitation.org_id]),
        done=f"You joined {invitation.org.name} as {invitation.role.name}.",
        form=ActionForm if signed_in else AcceptForm, form_key="" if signed_in else "form",
    )  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        shown = context.get("error") or (problem.detail if problem else None)
        page = {
            "invitation": invitation,
            "problem": shown,
            "form": context.get("form", None if signed_in else AcceptForm()),
        }
        status = problem.status if problem and request.method != "POST" else 200
        return render(request, "access/invitation.html", page, status=status)

    return dispatch(request, {"accept": write}, show)


def invitation_legacy_link(request: HttpRequest, token: str) -> HttpResponse:
    """Links e-mailed before the code moved to the fragment (/invitations/<code>/): open the invitation for this
    browser and carry on without the code in any further URL."""
    try:
        invitation = find_invitation(token)
    except NotFound:
        return error_page(request, NotFound("This invitation does not exist."))
    request.session[INVITATION_SESSION_KEY] = str(invitation.pk)
    return redirect("invitation-accept")
