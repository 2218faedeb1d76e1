"""The Django admin for tenant administrators, scoped to their tenants; superusers see everything.

Querysets and permissions come from the policy; every write goes through orgs.services (locking, plan and cycle
rules, audit), drag-and-drop moves included. Another tenant's object by URL answers 404 (it is not in the queryset).

No lost updates (docs/DESIGN.md §4.9): a change form carries, hidden, the version of the row it was opened at
(``VersionedModelForm``) and saves only the fields the user changed. A save after someone else's is refused with
the services' Stale message (who changed it and when): by the form itself when the row had moved on before the
POST (the page comes back with what the user typed), by the service under its lock when it moved on meanwhile.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from mptt.admin import DraggableMPTTAdmin

from access import policy
from config.admin import TenantScopedAdmin, VersionedModelForm, admin_tenant_ids, changed, loaded_version
from config.errors import DomainError
from governance.impact import org_changes
from orgs import services
from orgs.models import Organization, Project, Tenant


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    form = VersionedModelForm
    tenant_path = "pk"
    list_display = ["name", "plan", "created_at"]
    search_fields = ["name"]
    list_filter = ["plan"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if policy.access_for(request.user).is_superuser else ["plan"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tenants come from sign-up (one transaction with their root and administrator)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Tenant, form: forms.Form, change: bool) -> None:
        services.update_tenant(
            actor=request.user, tenant=obj, version=loaded_version(form), **changed(form, ("name", "plan"))
        )


class OrganizationForm(VersionedModelForm):
    class Meta:
        model = Organization
        fields = ["parent", "name", "description", "access_inheritance"]


@admin.register(Organization)
class OrganizationAdmin(TenantScopedAdmin, DraggableMPTTAdmin):
    form = OrganizationForm
    list_display = ["tree_actions", "indented_title", "tenant", "access_inheritance"]
    list_display_links = ["indented_title"]
    search_fields = ["name"]
    actions = ["restore_selected"]
    expand_tree_by_default = True

    class Media:
        css = {"all": ["css/admin-tree.css"]}

    @admin.display(description="title")
    def indented_title(self, item: Organization) -> SafeString:
        # mptt indents with a style attribute, which the Content-Security-Policy (style-src 'self') refuses: the
        # level goes in a data attribute and css/admin-tree.css indents by it (mptt_level_indent, 20px a level).
        return format_html('<div class="tree-title" data-level="{}">{}</div>', item.level, item)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request).select_related("tenant")
        if request.GET.get("deleted") == "1" or getattr(request, "_canopy_deleted", False):
            return queryset.deleted()
        return queryset.alive()

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return [DeletedFilter, "tenant"] if policy.access_for(request.user).is_superuser else [DeletedFilter]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "parent":
            kwargs["queryset"] = self.get_queryset(request).order_by("tree_id", "lft")
            kwargs["required"] = False
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["parent"] if obj is not None and obj.is_root else []

    def save_model(self, request: HttpRequest, obj: Organization, form: forms.Form, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            if data.get("parent") is None:
                raise ValidationError("Choose a parent: new tenants (and their root) come from sign-up.")
            created = services.create_org(
                actor=request.user, parent=data["parent"], name=data["name"], description=data["description"]
            )
            obj.pk, obj.tree_id = created.pk, created.tree_id  # the admin redirects to the saved object
            return
        fields = changed(form, ("name", "description", "access_inheritance"))
        stored = Organization.objects.get(pk=obj.pk)  # the form wrote its values on ``obj``: compare with the row's
        if org_changes.is_structural(stored, fields):
            # Its impact (who gains and who loses access) is kept in the org.update audit event.
            version = loaded_version(form)
            current = org_changes.apply_update(actor=request.user, org=stored, version=version, **fields)[0]
        else:
            current = services.update_org(actor=request.user, org=obj, version=loaded_version(form), **fields)
        if "parent" in form.changed_data and data.get("parent") is not None:
            # The row as the update left it: its version is the one this same save produced. The move's impact is
            # kept in its org.move audit event.
            org_changes.apply_move(actor=request.user, org=current, parent=data["parent"], version=current.version)

    def save_related(self, request: HttpRequest, form: forms.Form, formsets: Any, change: bool) -> None:
        pass  # nothing related is edited here; the service saved everything

    def delete_model(self, request: HttpRequest, obj: Organization) -> None:
        services.delete_org(actor=request.user, org=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for org in queryset.order_by("-level"):
            try:
                services.delete_org(actor=request.user, org=org)
            except DomainError as exc:
                self.report(request, exc)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as exc:
            self.report(request, exc)
            return HttpResponse(status=303, headers={"Location": "../../"})

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[list[Any], dict[str, int], set, list]:
        # A soft delete removes nothing for good: list what goes to the restore bin, and ask no model permission.
        to_delete = [f"{o} (and its sub-organizations; restorable)" for o in objs]
        return to_delete, {"organizations": len(to_delete)}, set(), []

    @admin.action(description="Restore the selected deleted organizations")
    def restore_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        restored = 0
        for org in queryset.filter(deleted_at__isnull=False):
            try:
                services.restore_org(actor=request.user, org=org)
                restored += 1
            except DomainError as exc:
                self.report(request, exc)
        if restored:
            self.message_user(request, f"Restored {restored} organization(s).")

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if request.method == "POST" and request.POST.get("action") == "restore_selected":
            request._canopy_deleted = True  # the selected rows are deleted ones
        return super().changelist_view(request, extra_context)

    def _move_node(self, request: HttpRequest) -> HttpResponse:
        """Drag and drop: every move goes through the move service (tree lock, cycle and tenant rules, audit).
        Dropping before/after a node makes it that node's sibling; siblings are ordered by name."""
        position = request.POST.get("position")
        queryset = self.get_queryset(request)
        try:
            node = queryset.get(pk=request.POST.get("cut_item"))
            target = queryset.get(pk=request.POST.get("pasted_on"))
        except (Organization.DoesNotExist, ValidationError, TypeError, ValueError):
            self.message_user(request, "Those organizations are gone: reload and try again.", level=messages.ERROR)
            return HttpResponse("FAIL, invalid objects.")
        if position == "last-child":
            parent = target
        elif position in ("left", "right"):
            parent = target.parent
            if parent is None:
                self.message_user(request, "There is one root organization per tenant.", level=messages.ERROR)
                return HttpResponse("FAIL, invalid move.")
        else:
            self.message_user(request, "Did not understand moving instruction.", level=messages.ERROR)
            return HttpResponse("FAIL, unknown instruction.")
        try:
            org_changes.apply_move(actor=request.user, org=node, parent=parent)
        except (DomainError, ValidationError) as exc:
            self.report(request, exc)
            return HttpResponse("FAIL, invalid move.")
        self.message_user(request, f"{node} has been moved under {parent}.")
        return HttpResponse("OK, moved.")


class DeletedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "deleted"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("1", "Deleted (restorable)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset  # get_queryset already switched to deleted rows


@admin.register(Project)
class ProjectAdmin(TenantScopedAdmin):
    form = VersionedModelForm
    tenant_path = "org__tenant"
    list_display = ["name", "org", "created_at"]
    search_fields = ["name", "org__name"]
    fields = ["org", "name", "description"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("org").filter(org__deleted_at__isnull=True)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "org":
            orgs = Organization.objects.alive()
            if not policy.access_for(request.user).is_superuser:
                orgs = orgs.filter(tenant__in=admin_tenant_ids(request))
            kwargs["queryset"] = orgs.order_by("tree_id", "lft")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["org"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Project, form: forms.Form, change: bool) -> None:
        data = form.cleaned_data
        if change:
            services.update_project(
                actor=request.user,
                project=obj,
                version=loaded_version(form),
                **changed(form, ("name", "description")),
            )
        else:
            created = services.create_project(
                actor=request.user, org=data["org"], name=data["name"], description=data["description"]
            )
            obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Project) -> None:
        services.delete_project(actor=request.user, project=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for project in queryset:
            services.delete_project(actor=request.user, project=project)
