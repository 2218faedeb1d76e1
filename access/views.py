"""The console's account pages: sign-up, log-in, personal API tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from access.models import AccessToken
from access.services import issue_token, revoke_token
from config.errors import DomainError
from orgs import services as org_services


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
            messages.success(request, f"Welcome to Canopy: {result.tenant.name} is ready.")
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


class AcceptForm(forms.Form):
    username = forms.CharField(max_length=150)
    password = forms.CharField(widget=forms.PasswordInput, strip=False)


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Accept an invitation: the signed-in user joins, or a new account is created from the form."""
    from access.services.invitations import accept_invitation, check_usable, find_invitation
    from config.errors import Conflict, NotFound

    try:
        invitation = find_invitation(token)
    except NotFound:
        raise Http404("This invitation does not exist.") from None
    problem = None
    try:
        check_usable(invitation)
    except Conflict as exc:
        problem = exc.detail
    form = AcceptForm(request.POST or None) if not request.user.is_authenticated else None
    if request.method == "POST" and problem is None:
        try:
            if request.user.is_authenticated:
                user, _ = accept_invitation(raw_token=token, user=request.user)
            elif form is not None and form.is_valid():
                user, _ = accept_invitation(raw_token=token, **form.cleaned_data)
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            else:
                user = None
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                if form is not None:
                    form.add_error(field if field in form.fields else None, errors)
                else:
                    problem = "; ".join(errors)
            user = None
        except DomainError as exc:
            if form is not None and exc.code == "username_taken":
                form.add_error("username", exc.detail)
            else:
                problem = exc.detail
            user = None
        if user is not None:
            messages.success(request, f"You joined {invitation.org.name} as {invitation.role.name}.")
            return redirect("org", org_id=invitation.org_id)
    status = 409 if problem else (400 if form is not None and form.errors else 200)
    return render(
        request, "access/invitation.html", {"invitation": invitation, "problem": problem, "form": form}, status=status
    )
