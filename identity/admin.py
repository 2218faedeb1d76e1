"""The Django admin of single sign-on, scoped to the tenants the staff user administers (all for superusers).

Every write goes through identity.services (validation, audit, the enforcement cache). The client secret is
write-only here too: the form has an empty password field (blank keeps the stored secret) and no page shows it;
recovery codes show no hash. A superuser verifies a domain with the list's action, without DNS."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from access import policy
from access.models import Role
from config.admin import ReadOnlyAdmin, ServiceAdmin, VersionedModelForm, admin_tenant_ids, loaded_version
from config.errors import DomainError
from identity import services
from identity.models import Domain, ExternalIdentity, RecoveryCode, TenantSSO
from orgs.models import Tenant


class TenantSSOForm(VersionedModelForm):
    issuer = forms.CharField(max_length=500, help_text="The IdP's issuer URL (https; the service checks it).")
    client_secret = forms.CharField(
        required=False, strip=True, widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: leave blank to keep the stored secret (required for a new configuration).",
    )  # fmt: skip

    class Meta:
        model = TenantSSO
        fields = ["tenant", "issuer", "client_id", "scopes", "groups_claim", "default_role", "default_org",
                  "remove_unmapped_roles"]  # fmt: skip


@admin.register(TenantSSO)
class TenantSSOAdmin(ServiceAdmin):
    """Group mappings and enforcement are edited on the console's SSO page (and the API), where the test sign-in
    and the list of members without a linked identity are."""

    form = TenantSSOForm
    list_display = ["tenant", "issuer", "enforced", "changed_at", "tested_at"]
    readonly_fields = ["enforced", "changed_at", "tested_at", "tested_by"]
    search_fields = ["tenant__name", "issuer"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("tenant")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*self.readonly_fields, "tenant"] if obj is not None else list(self.readonly_fields)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "tenant":
            kwargs["queryset"] = policy.visible(request.user, policy.TENANT_ADMIN, Tenant.objects.all())
        if db_field.name == "default_org":
            kwargs["queryset"] = self.scoped_orgs(request)
        if db_field.name == "default_role":  # built-in roles and the custom roles of the user's tenants
            kwargs["queryset"] = Role.objects.filter(Q(tenant__isnull=True) | Q(tenant__in=admin_tenant_ids(request)))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: TenantSSO, form: forms.Form, change: bool) -> None:
        d = form.cleaned_data
        tenant = obj.tenant if change else d["tenant"]
        current = services.sso_of(tenant) if change else None
        data = {
            "issuer": d["issuer"], "client_id": d["client_id"], "client_secret": d.get("client_secret") or None,
            "scopes": d["scopes"], "groups_claim": d["groups_claim"],
            "default_role": d["default_role"], "default_org": d["default_org"].pk if d["default_org"] else None,
            "remove_unmapped_roles": d["remove_unmapped_roles"],
            # the mappings are kept as they are: this form does not edit them
            "group_roles": [{"group": g.group, "role": g.role, "org": g.org_id}
                            for g in (current.group_roles.all() if current else [])],
        }  # fmt: skip
        saved = services.put_sso(actor=request.user, tenant=tenant, data=data, version=loaded_version(form))
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: TenantSSO) -> None:
        services.delete_sso(actor=request.user, tenant=obj.tenant)


class DomainForm(forms.ModelForm):
    class Meta:
        model = Domain
        fields = ["tenant", "domain"]


@admin.register(Domain)
class DomainAdmin(ServiceAdmin):
    form = DomainForm
    list_display = ["domain", "tenant", "verified_at", "txt_record"]
    list_filter = ["verified_at"]
    search_fields = ["domain", "tenant__name"]
    readonly_fields = ["txt_record", "verified_at", "verified_by"]
    actions = ["verify_selected"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("tenant")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*self.readonly_fields, "tenant", "domain"] if obj is not None else list(self.readonly_fields)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a domain is claimed, verified or deleted, never edited

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "tenant":
            kwargs["queryset"] = policy.visible(request.user, policy.TENANT_ADMIN, Tenant.objects.all())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not policy.access_for(request.user).is_superuser:
            actions.pop("verify_selected", None)
        return actions

    @admin.action(description="Verify the selected domains (superuser, without DNS)")
    def verify_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        if not policy.access_for(request.user).is_superuser:
            self.message_user(request, "Only a superuser verifies without DNS.", level=messages.ERROR)
            return
        done = 0
        for domain in queryset.select_related("tenant"):
            try:
                services.verify_domain(actor=request.user, domain=domain)
                done += 1
            except (DomainError, ValidationError) as exc:
                self.report(request, exc)
        self.message_user(request, f"{done} domain(s) verified.")

    def save_model(self, request: HttpRequest, obj: Domain, form: forms.Form, change: bool) -> None:
        claimed = services.claim_domain(actor=request.user, tenant=form.cleaned_data["tenant"],
                                        domain=form.cleaned_data["domain"])  # fmt: skip
        obj.pk = claimed.pk

    def delete_model(self, request: HttpRequest, obj: Domain) -> None:
        services.delete_domain(actor=request.user, domain=obj)


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(ReadOnlyAdmin):
    list_display = ["subject", "issuer", "user", "tenant", "email", "last_login_at"]
    search_fields = ["subject", "email", "user__username"]
    readonly_fields = ["user", "tenant", "issuer", "subject", "email", "groups", "created_at", "last_login_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("user", "tenant")


@admin.register(RecoveryCode)
class RecoveryCodeAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "created_at", "created_by", "used_at", "used_by"]
    fields = ["tenant", "created_at", "created_by", "used_at", "used_by"]  # never the hash
    readonly_fields = ["tenant", "created_at", "created_by", "used_at", "used_by"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("tenant", "created_by", "used_by")
