"""Second factors in the admin: superusers only, read-only, never the secret; one action resets a user's devices
(account recovery, audited). django-otp's own admins (which let any superuser edit keys, and a staff user with
model permissions too) are replaced.

A tenant administrator sees none of this: removing someone's second factor is half of taking their account over,
and an account is not tenant property (docs/DESIGN.md §4.7).
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.exceptions import NotRegistered
from django.db.models import QuerySet
from django.http import HttpRequest
from django_otp.plugins.otp_static import admin as _otp_static_admin  # noqa: F401 - registered first, replaced here
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp import admin as _otp_totp_admin  # noqa: F401 - registered first, replaced here
from django_otp.plugins.otp_totp.models import TOTPDevice

from access import policy
from config.admin import ReadOnlyAdmin
from twofactor import services

for _model in (TOTPDevice, StaticDevice):
    with contextlib.suppress(NotRegistered):
        admin.site.unregister(_model)


class DeviceAdmin(ReadOnlyAdmin):
    tenant_path = "user__tenant_memberships__tenant"
    list_display = ["user", "name", "confirmed", "created_at", "last_used_at", "throttling_failure_count"]
    list_filter = ["confirmed"]
    search_fields = ["user__username", "user__email", "name"]
    fields = ("user", "name", "confirmed", "created_at", "last_used_at", "throttling_failure_count")  # never the key
    readonly_fields = fields
    actions = ["reset_users_devices"]

    def _superuser(self, request: HttpRequest) -> bool:
        return policy.access_for(request.user).is_superuser

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._superuser(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request).select_related("user")
        return queryset if self._superuser(request) else queryset.none()

    @admin.action(description="Reset every second factor of these devices' users (account recovery)")
    def reset_users_devices(self, request: HttpRequest, queryset: QuerySet) -> None:
        users = {device.user for device in queryset.select_related("user")}
        for user in users:
            services.reset_devices(actor=request.user, user=user)
        self.message_user(
            request, f"Reset the second factor of {len(users)} user(s): they sign in with the password alone.",
            messages.SUCCESS,
        )  # fmt: skip


@admin.register(TOTPDevice)
class TOTPDeviceAdmin(DeviceAdmin):
    pass


@admin.register(StaticDevice)
class StaticDeviceAdmin(DeviceAdmin):
    pass
