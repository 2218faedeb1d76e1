"""The Django admin site of Canopy: open to superusers and to tenant administrators (scoped to their tenants by
every model admin), decided by the policy rather than by Django's ``is_staff`` flag; and the base classes every
app's model admins build on (the one public place for them: ``TenantScopedAdmin``, ``ServiceAdmin``,
``VersionedModelForm`` and its helpers).

No lost updates (docs/DESIGN.md §4.9): a change form carries, hidden, the version of the row it was opened at
(``VersionedModelForm``) and saves only the fields the user changed. A save after someone else's is refused with
the services' Stale message (who changed it and when): by the form itself when the row had moved on before the
POST (the page comes back with what the user typed), by the service under its lock when it moved on meanwhile.

An account's staff and superuser flags are the account's own business and a superuser's (docs/DESIGN.md §4.7): making
someone a tenant administrator changes a membership, never a flag on their account.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from access import policy
from access.models import User
from config.concurrency import Versioned, stale
from config.errors import DomainError
from orgs.models import Organization, Tenant


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


# -- base classes of the model admins -------------------------------------------------------------------------------


def admin_tenant_ids(request: HttpRequest) -> Any:
    """The tenants the staff user administers (all of them for superusers), as a queryset of ids."""
    return policy.visible(request.user, policy.TENANT_ADMIN, Tenant.objects.all()).values("pk")


VERSION_FIELD = "loaded_version"


class VersionedModelForm(forms.ModelForm):
    """A change form that remembers the version of the row it was opened at, in a hidden field, and refuses to
    save over a newer one. The version is not the model's own field (``version`` is not editable): the admin
    re-reads the row when the form is posted, so ``instance.version`` is the row's version now."""

    loaded_version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if VERSION_FIELD in self.fields and self._versioned():
            self.fields[VERSION_FIELD].initial = self.instance.version

    def _versioned(self) -> bool:
        return isinstance(self.instance, Versioned) and not self.instance._state.adding

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or self.cleaned_data
        loaded = cleaned.get(VERSION_FIELD)
        if loaded is not None and self._versioned() and loaded != self.instance.version:
            raise ValidationError(stale(self.instance).detail, code="stale")
        return cleaned


def loaded_version(form: forms.Form) -> int | None:
    """The version a change form was opened at (None when it did not say: the save then applies to the row as
    it is, changing only what the user changed)."""
    return getattr(form, "cleaned_data", {}).get(VERSION_FIELD)


def changed(form: forms.Form, names: tuple[str, ...]) -> dict[str, Any]:
    """The fields among ``names`` that the user changed on the form, with their new values."""
    return {name: form.cleaned_data[name] for name in names if name in form.changed_data}


class TenantScopedAdmin(admin.ModelAdmin):
    """Base for every Canopy model admin: a staff user who administers no tenant sees nothing. Change forms built
    on VersionedModelForm get its hidden version field on the page."""

    tenant_path = "tenant"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_fields(request, obj))
        if (
            obj is not None
            and VERSION_FIELD in getattr(self.form, "declared_fields", {})
            and VERSION_FIELD not in fields
        ):
            fields.append(VERSION_FIELD)
        return fields

    def _is_tenant_admin(self, request: HttpRequest) -> bool:
        access = policy.access_for(request.user)
        return access.is_superuser or bool(access.admin_tenant_ids)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if policy.access_for(request.user).is_superuser:
            return queryset
        return queryset.filter(**{f"{self.tenant_path}__in": admin_tenant_ids(request)})

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_tenant_admin(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_tenant_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_tenant_admin(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._is_tenant_admin(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_tenant_admin(request)

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """A service's refusal (409, plan limit, field error) becomes a message; nothing was saved."""
        try:
            return super().changeform_view(request, *args, **kwargs)
        except (DomainError, ValidationError) as exc:
            self.report(request, exc)
            return HttpResponse(status=303, headers={"Location": request.path})

    def report(self, request: HttpRequest, exc: Exception) -> None:
        text = exc.detail if isinstance(exc, DomainError) else "; ".join(getattr(exc, "messages", [str(exc)]))
        self.message_user(request, text, level=messages.ERROR)


class ReadOnlyAdmin(TenantScopedAdmin):
    """A tenant-scoped admin that only reads: nobody adds, changes or deletes a row here, superusers included (an
    append-only log, tokens, what agents report). Actions a subclass declares remain its own."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ServiceAdmin(TenantScopedAdmin):
    """Turns the refusals of services into admin messages and keeps the form on the page."""

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except (DomainError, ValidationError) as exc:
            self.report(request, exc)
            return HttpResponse(status=303, headers={"Location": "../../"})

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset:
            try:
                self.delete_model(request, obj)
            except (DomainError, ValidationError) as exc:
                self.report(request, exc)

    def save_related(self, request: HttpRequest, form: forms.Form, formsets: Any, change: bool) -> None:
        pass  # services saved everything

    def scoped_orgs(self, request: HttpRequest) -> QuerySet:
        orgs = Organization.objects.alive()
        if not policy.access_for(request.user).is_superuser:
            orgs = orgs.filter(tenant__in=admin_tenant_ids(request))
        return orgs.order_by("tree_id", "lft")

    def scoped_users(self, request: HttpRequest) -> QuerySet:
        users = User.objects.all()
        if not policy.access_for(request.user).is_superuser:
            users = users.filter(tenant_memberships__tenant__in=admin_tenant_ids(request)).distinct()
        return users.order_by("username")
