"""The console's two-factor pages: the account's second factors (enroll with a QR code or the key typed in, confirm,
remove, backup codes), the sign-in's code step (``twofactor-verify``), and the page an org requiring two-factor
authentication sends a user to (``twofactor-required``, reached through the fence redirect of config/console.py).

Secrets are shown in the one response that creates them (the enrollment's key and QR code, the backup codes), never
again: those responses are not cached. Everything works without JavaScript.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from access import fences, policy
from config.console import Confirm, Write, console_view, dispatch, parse_uuid
from orgs.models import Organization
from twofactor import flow, services
from twofactor.requirement import requirement_at


def _removing(user: Any, device_id: Any, here: str) -> Confirm:
    """What removing one of the user's own devices asks first (NotFound for anyone else's)."""
    device = services.own_device(user, device_id)
    return Confirm(
        title=f"Remove the authenticator app {device.name}?", button="Remove", cancel=here,
        goes_with=["its codes: they no longer sign you in",
                   "if it is your last app: two-factor sign-in and your backup codes"],
        note="This cannot be undone: set the app up again to use it. The code you typed is checked when you confirm; "
        "if it has expired meanwhile, you are asked for a new one.",
    )  # fmt: skip


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}),
        help_text="The 6 digits your authenticator app shows, or one of your backup codes.",
    )
    next = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)


class EnrollForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=64, required=False, help_text="To tell your devices apart, e.g. “phone”."
    )
    next = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)


class ConfirmForm(forms.Form):
    device = forms.UUIDField(widget=forms.HiddenInput)
    code = forms.CharField(
        label="Code from the app",
        max_length=10,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    next = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)


class RemoveForm(forms.Form):
    device = forms.UUIDField(widget=forms.HiddenInput)
    code = forms.CharField(
        label="Current code",
        max_length=40,
        required=False,
        help_text="A code from your app or a backup code: a second factor is removed only by whoever holds it.",
    )


class BackupForm(forms.Form):
    code = forms.CharField(label="Current code", max_length=40, help_text="A code from your app or a backup code.")


@never_cache
@sensitive_post_parameters("code")
@console_view
def devices(request: HttpRequest) -> HttpResponse:
    """The account's second factors."""
    user = request.user
    here = reverse("twofactor")

    def page(context: dict[str, Any]) -> HttpResponse:
        return render(
            request,
            "twofactor/devices.html",
            {
                "devices": list(services.devices_of(user)),
                "backup_left": services.backup_codes_left(user),
                "verified": fences.session_context(request).otp_verified,
                "enroll_form": EnrollForm(initial={"next": request.GET.get("next", "")}),
                "backup_form": BackupForm(prefix="backup"),
            }
            | context,
        )

    def enrolled(enrollment: services.Enrollment, next_url: str) -> HttpResponse:
        form = ConfirmForm(initial={"device": enrollment.device.public_id, "next": next_url})
        return render(request, "twofactor/enroll.html", {"enrollment": enrollment, "form": form})

    def confirmed(d: dict[str, Any]) -> Any:
        device = services.own_device(user, d["device"])
        codes = services.confirm(actor=user, device=device, code=d["code"])
        flow.mark_verified(request)  # the first code proved the device: this session holds the second factor
        return codes

    def after_confirm(codes: list[str]) -> HttpResponse | str:
        target = flow.safe_next(request, next_posted, here)
        if codes:
            return render(request, "twofactor/backup_codes.html", {"codes": codes, "next": target})
        return target

    def removed(d: dict[str, Any]) -> None:
        services.remove(actor=user, device=services.own_device(user, d["device"]), code=d["code"])

    def confirm_again(context: dict[str, Any]) -> HttpResponse:
        form = context.get("confirm_form")
        if form is None:
            return page(context)
        return render(request, "twofactor/enroll.html", {"enrollment": None, "form": form} | context)

    # Where enrollment returns to (the twofactor-required page's "set up"): kept only when it stays on this site.
    next_posted = flow.safe_next(request, request.POST.get("next"), here) if request.POST.get("next") else ""
    writes = {
        "enroll": Write(
            run=lambda d: services.enroll(actor=user, name=d["name"]),
            then=lambda enrollment: enrolled(enrollment, next_posted), form=EnrollForm, form_key="enroll_form",
        ),
        "confirm": Write(
            run=confirmed, then=after_confirm, form=ConfirmForm,
            form_key="confirm_form", done="Two-factor authentication is on: every sign-in now asks for a code.",
        ),
        "remove": Write(
            run=removed, then=lambda result: here, form=RemoveForm, form_key="remove_form",
            done="The device was removed.", confirm=lambda d: _removing(user, d["device"], here),
        ),
        "backup": Write(
            run=lambda d: services.regenerate_backup_codes(actor=user, code=d["code"]),
            then=lambda codes: render(request, "twofactor/backup_codes.html", {"codes": codes, "next": ""}),
            form=lambda data, files: BackupForm(data, files, prefix="backup"), form_key="backup_form",
        ),
    }  # fmt: skip
    show = confirm_again if request.POST.get("action") == "confirm" else page
    return dispatch(request, writes, show)


@never_cache
@sensitive_post_parameters("code")
@console_view(login=False)
def verify(request: HttpRequest) -> HttpResponse:
    """The sign-in's code step (a pending sign-in of this session), or a signed-in user verifying their session."""
    found = flow.pending(request)
    signed_in = request.user.is_authenticated
    if found is None and not signed_in:
        return redirect("login")
    if found is None and not services.has_device(request.user):
        # Nothing to verify with yet: set a device up (its first code verifies the session), then back.
        target = flow.safe_next(request, request.GET.get("next") or request.POST.get("next"))
        return redirect(f"{reverse('twofactor')}?{urlencode({'next': target})}")
    next_url = found[1]["next"] if found is not None else flow.safe_next(request, request.GET.get("next") or
                                                                         request.POST.get("next"))  # fmt: skip
    form = CodeForm(request.POST or None, initial={"next": next_url})
    status = 200
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]
        result = flow.finish_pending(request, code) if found is not None else flow.verify_session(request, code)
        if result.ok:
            return redirect(next_url)
        status = 429 if result.throttled else 400
        if found is not None and flow.pending(request) is None:
            return redirect(f"{reverse('login')}?{urlencode({'next': next_url})}")  # too many wrong codes
        form.add_error(
            "code",
            "Too many wrong codes: wait a minute, then try again."
            if result.throttled
            else "This code is not valid (a code is accepted only once).",
        )
    elif request.method == "POST":
        status = 400
    context = {"form": form, "pending": found is not None, "who": found[0] if found is not None else request.user}
    return render(request, "twofactor/verify.html", context, status=status)


@never_cache
@console_view
def required(request: HttpRequest) -> HttpResponse:
    """Where a 2FA-fenced page sends the user: which org requires it and since when, and the way through (verify
    this session with a code, or set up a device first). Names the org only to a user whose roles see it."""
    next_url = flow.safe_next(request, request.GET.get("next"))
    org_id = parse_uuid(request.GET.get("org"))
    org = Organization.objects.alive().filter(pk=org_id).first() if org_id is not None else None
    fence = policy.access_for(request.user).blocking_fence(org) if org is not None else None
    context = fences.context_of(request.user)
    if context.otp_verified:
        return redirect(next_url)
    requirement = requirement_at(org) if fence is not None and org is not None else None
    source = None
    if requirement is not None and requirement.source is not None:
        source = Organization.objects.filter(pk=requirement.source).values_list("name", flat=True).first()
    has_device = services.has_device(request.user)
    return render(
        request,
        "twofactor/required.html",
        {
            "fence": fence,
            "requirement": requirement,
            "source_name": source or (fence.org_name if fence is not None else ""),
            "has_device": has_device,
            "form": CodeForm(initial={"next": next_url}),
            "setup_url": f"{reverse('twofactor')}?{urlencode({'next': next_url})}",
            "next": next_url,
        },
    )
