"""The Django admin site of Canopy: open to superusers and to tenant administrators (scoped to their tenants by
every model admin), decided by the policy rather than by Django's ``is_staff`` flag.

An account's staff and superuser flags are the account's own business and a superuser's (docs/DESIGN.md §4.7): making
someone a tenant administrator changes a membership, never a flag on their account.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from access import policy


def may_use_admin(user: Any) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    access = policy.access_for(user)
    return access.is_superuser or bool(access.admin_tenant_ids)


class CanopyAdminAuthenticationForm(AdminAuthenticationForm):
    def confirm_login_allowed(self, user: Any) -> None:
        if not user.is_active or not may_use_admin(user):
            raise ValidationError(
                "This page is for superusers and tenant administrators. Log in with such an account.",
                code="invalid_login",
            )


class CanopyAdminSite(admin.AdminSite):
    site_header = "Canopy administration"
    site_title = "Canopy admin"
    index_title = "Your tenants"
    login_form = CanopyAdminAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        return may_use_admin(request.user)
