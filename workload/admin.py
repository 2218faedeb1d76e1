"""Admin pages of workload identity: the signing keys, for superusers only (read-only, never the private key, with a
"Rotate the keys now" button, POST with CSRF), and the tokens issued to runs, read-only and scoped like every
tenant's row (a tenant administrator sees the tokens of their tenants' runs: audiences and expiries, never a token).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse

from access import policy
from config.admin import ReadOnlyAdmin
from config.errors import DomainError
from workload import keys
from workload.models import IssuedToken, SigningKey

KEY_FIELDS = ("kid", "alg", "state", "public_jwk", "created_at", "activated_at", "retired_at", "signed_until")


def _is_superuser(request: HttpRequest) -> bool:
    return policy.access_for(request.user).is_superuser


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyAdmin):
    """The platform's keys: no tenant owns them, so tenant administrators do not see them at all."""

    list_display = ["kid", "alg", "state", "created_at", "activated_at", "retired_at", "signed_until"]
    list_filter = ["state", "alg"]
    fields = readonly_fields = KEY_FIELDS
    change_list_template = "admin/workload/signingkey/change_list.html"

    def get_queryset(self, request: HttpRequest) -> Any:
        queryset = SigningKey.objects.defer("private_key")
        return queryset if _is_superuser(request) else queryset.none()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_superuser(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_superuser(request)

    def get_urls(self) -> list[URLPattern]:
        rotate = path("rotate/", self.admin_site.admin_view(self.rotate_view), name="workload_signingkey_rotate")
        return [rotate, *super().get_urls()]

    def rotate_view(self, request: HttpRequest) -> HttpResponse:
        """One rotation (workload.keys.rotate), by the superuser: a POST from the list's button (CSRF checked by
        the admin site's view wrapper)."""
        if not _is_superuser(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            rotation = keys.rotate(actor=request.user, force=request.POST.get("force") == "1")
        except DomainError as error:
            self.message_user(request, error.detail, level=messages.ERROR)
        else:
            self.message_user(
                request,
                f"Rotated: {rotation.active.kid} signs now, {rotation.next.kid} is published as the next key."
                + (f" Deleted {len(rotation.deleted)} expired key(s)." if rotation.deleted else ""),
                level=messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:workload_signingkey_changelist"))


@admin.register(IssuedToken)
class IssuedTokenAdmin(ReadOnlyAdmin):
    tenant_path = "run__task__project__org__tenant"
    list_display = ["jti", "audience", "run", "kid", "issued_at", "expires_at"]
    list_select_related = ["run__task"]
    search_fields = ["=jti", "audience"]
    fields = readonly_fields = ("jti", "run", "audience", "kid", "issued_at", "expires_at")
