"""Admin pages of the access app, scoped to the staff user's tenants. Grants (guardian's direct-FK object-permission
rows), teams, roles and invitations are written through access.services, never saved directly.

Change forms carry the version they were opened at and save only what the user changed (config.admin.
VersionedModelForm): a save over someone else's newer change is refused, naming who made it and when."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from access import policy, vocabulary
from access.models import (
    AccessToken,
    AuditEvent,
    Invitation,
    OrgTeamGrant,
    OrgUserGrant,
    ProjectUserGrant,
    Role,
    Team,
    TenantMembership,
    User,
)
from access.roles import CAPABILITIES
from access.services.custom_roles import create_role, delete_role, update_role
from access.services.grants import grant_role, remove_tenant_member, set_tenant_admin
from access.services.invitations import revoke_invitation
from access.services.teams import add_team_member, create_team, delete_team, remove_team_member, rename_team
from config.admin import (
    ReadOnlyAdmin,
    ServiceAdmin,
    TenantScopedAdmin,
    VersionedModelForm,
    admin_tenant_ids,
    changed,
    loaded_version,
)
from config.errors import DomainError
from governance.impact.access_changes import apply_change, apply_removal
from orgs.models import Organization, Project

# -- users and tenant membership -----------------------------------------------------------------------------------


class MembershipInline(admin.TabularInline):
    model = TenantMembership
    extra = 0
    fields = ["tenant", "is_admin", "created_at"]
    readonly_fields = ["tenant", "is_admin", "created_at"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request).select_related("tenant")
        if policy.access_for(request.user).is_superuser:
            return queryset
        return queryset.filter(tenant__in=admin_tenant_ids(request))


@admin.register(User)
class UserAdmin(TenantScopedAdmin, DjangoUserAdmin):
    """Accounts. Superusers manage them whole. A tenant administrator sees the accounts of their tenants' members,
    read-only, with those memberships: an account's password, e-mail, active flag, staff bits and tokens are the
    account's own (or a superuser's) to change, never a tenant administrator's. Memberships are managed on their
    own page (make or unmake a tenant administrator, remove from the tenant)."""

    tenant_path = "tenant_memberships__tenant"
    inlines = [MembershipInline]
    list_display = ["username", "email", "email_verified", "is_active", "last_login"]
    search_fields = ["username", "email", "first_name", "last_name"]

    @admin.display(boolean=True, description="e-mail verified")
    def email_verified(self, user: User) -> bool:
        return user.email_verified_at is not None

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).distinct()

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if self._is_superuser(request):
            fieldsets = super().get_fieldsets(request, obj)
            if obj is not None:
                fieldsets = [*fieldsets, ("E-mail", {"fields": ["email_verified_at"]})]
            return fieldsets
        return [(None, {"fields": ["username", "email", "email_verified_at", "first_name", "last_name",
                                   "is_active", "last_login", "date_joined"]})]  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if self._is_superuser(request):
            return ["last_login", "date_joined", "email_verified_at"]
        return ["username", "email", "email_verified_at", "first_name", "last_name", "is_active", "last_login",
                "date_joined"]  # fmt: skip

    def _is_superuser(self, request: HttpRequest) -> bool:
        return policy.access_for(request.user).is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._is_superuser(request)  # others invite people (access.services.invitations)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Also guards the admin's password-change page of an account.
        return self._is_superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_superuser(request)


@admin.register(TenantMembership)
class TenantMembershipAdmin(ServiceAdmin):
    form = VersionedModelForm
    list_display = ["user", "tenant", "is_admin", "created_at"]
    list_filter = ["is_admin"]
    search_fields = ["user__username", "user__email"]
    fields = ["tenant", "user", "is_admin"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["tenant", "user"] if obj is not None else []

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # people join through invitations

    def save_model(self, request: HttpRequest, obj: TenantMembership, form: forms.Form, change: bool) -> None:
        set_tenant_admin(
            actor=request.user, tenant=obj.tenant, user=obj.user, is_admin=obj.is_admin, version=loaded_version(form)
        )

    def delete_model(self, request: HttpRequest, obj: TenantMembership) -> None:
        remove_tenant_member(actor=request.user, tenant=obj.tenant, user=obj.user)


# -- tokens and the audit log --------------------------------------------------------------------------------------


@admin.register(AccessToken)
class AccessTokenAdmin(ReadOnlyAdmin):
    """Personal access tokens belong to their account: superusers may list and revoke them here (an incident);
    tenant administrators do not see them. The hash is never shown and nobody adds one here."""

    tenant_path = "user__tenant_memberships__tenant"
    list_display = ["hint", "name", "user", "created_at", "expires_at", "last_used_at", "revoked_at"]
    fields = ["user", "name", "hint", "created_at", "expires_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke_selected"]

    def _is_tenant_admin(self, request: HttpRequest) -> bool:
        return policy.access_for(request.user).is_superuser

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("user").distinct()

    @admin.action(description="Revoke the selected tokens")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} token(s).")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if self._is_tenant_admin(request):
            actions["revoke_selected"] = (
                type(self).revoke_selected,
                "revoke_selected",
                "Revoke the selected tokens",
            )
        return actions


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Append-only: read, filter, search; nobody adds, changes or deletes an event here, superusers included."""

    list_display = ["created_at", "actor_name", "action", "target_type", "target_name", "org", "ip"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_name", "target_name", "action"]
    date_hierarchy = "created_at"
    list_select_related = ["org"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in AuditEvent._meta.fields]


# -- roles, teams, grants, invitations -----------------------------------------------------------------------------


class RoleForm(VersionedModelForm):
    capabilities = forms.MultipleChoiceField(
        choices=vocabulary.choices(CAPABILITIES),
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Role
        fields = ["org", "key", "name", "description"]


@admin.register(Role)
class RoleAdmin(ServiceAdmin):
    """Custom roles of the tenant (built-in ones are listed, read-only: their capabilities live in code)."""

    form = RoleForm
    list_display = ["name", "key", "org", "tenant"]
    search_fields = ["name", "key"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = Role.objects.select_related("org", "tenant")
        if policy.access_for(request.user).is_superuser:
            return queryset
        return queryset.filter(Q(tenant__isnull=True) | Q(tenant__in=admin_tenant_ids(request)))

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        if "org" in form.base_fields:  # read-only (so not on the form) once the role exists
            form.base_fields["org"].queryset = self.scoped_orgs(request)
        if obj is not None:
            form.base_fields["capabilities"].initial = sorted(obj.capabilities)
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["org", "key"] if obj is not None else []

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or not obj.is_builtin)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and (obj is None or not obj.is_builtin)

    def save_model(self, request: HttpRequest, obj: Role, form: forms.Form, change: bool) -> None:
        data = form.cleaned_data
        if change:
            update_role(
                actor=request.user,
                role=obj,
                version=loaded_version(form),
                **changed(form, ("name", "description", "capabilities")),
            )
        else:
            created = create_role(
                actor=request.user,
                org=data["org"],
                name=data["name"],
                key=data["key"],
                description=data["description"],
                capabilities=data["capabilities"],
            )
            obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Role) -> None:
        delete_role(actor=request.user, role=obj)


class TeamForm(VersionedModelForm):
    members = forms.ModelMultipleChoiceField(queryset=User.objects.none(), required=False)

    class Meta:
        model = Team
        fields = ["org", "name", "description"]


@admin.register(Team)
class TeamAdmin(ServiceAdmin):
    form = TeamForm
    tenant_path = "org__tenant"
    list_display = ["name", "org"]
    search_fields = ["name"]

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        if "org" in form.base_fields:  # read-only (so not on the form) once the team exists
            form.base_fields["org"].queryset = self.scoped_orgs(request)
        members = form.base_fields["members"]
        members.queryset = self.scoped_users(request)
        if obj is not None:
            members.initial = list(obj.group.user_set.values_list("pk", flat=True))
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["org"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Team, form: forms.Form, change: bool) -> None:
        data = form.cleaned_data
        if change:
            team = rename_team(
                actor=request.user, team=obj, version=loaded_version(form), **changed(form, ("name", "description"))
            )
        else:
            team = create_team(actor=request.user, org=data["org"], name=data["name"], description=data["description"])
            obj.pk = team.pk
        wanted = set(data["members"])
        current = set(team.group.user_set.all())
        for user in wanted - current:
            add_team_member(actor=request.user, team=team, user=user)
        for user in current - wanted:
            remove_team_member(actor=request.user, team=team, user=user)

    def delete_model(self, request: HttpRequest, obj: Team) -> None:
        delete_team(actor=request.user, team=obj)


class GrantAdmin(ServiceAdmin):
    """Guardian's direct-FK object-permission rows as role grants: every write through the grant services, and
    each decision (may this staff user grant here?) through the policy inside them."""

    form = VersionedModelForm
    list_display = ["holder", "role", "content_object", "expires_at", "granted_by", "created_at"]
    list_select_related = ["role", "content_object", "granted_by"]
    target_field = "content_object"

    def holder(self, grant: Any) -> str:
        user = getattr(grant, "user", None)
        return user.username if user is not None else f"team {grant.group.team.name}"

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        if obj is None:
            target = form.base_fields["content_object"]
            model = target.queryset.model
            target.queryset = (
                self.scoped_orgs(request)
                if model is Organization
                else Project.objects.filter(org__in=self.scoped_orgs(request)).select_related("org")
            )
            if "user" in form.base_fields:
                form.base_fields["user"].queryset = self.scoped_users(request)
            if "group" in form.base_fields:
                teams = Team.objects.filter(org__in=self.scoped_orgs(request))
                form.base_fields["group"].queryset = form.base_fields["group"].queryset.filter(team__in=teams)
        form.base_fields["role"].queryset = RoleAdmin.get_queryset(RoleAdmin(Role, self.admin_site), request)
        return form

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        holder = "user" if "user" in {f.name for f in self.model._meta.fields} else "group"
        return [holder, "content_object", "role", "expires_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*self.get_fields(request, obj)[:2]] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Any, form: forms.Form, change: bool) -> None:
        data = form.cleaned_data
        if change:  # the preview's summary (who loses or gains what, where) kept in the grant.update event
            apply_change(
                actor=request.user, grant=obj, version=loaded_version(form), **changed(form, ("role", "expires_at"))
            )
            return
        team = None
        if "group" in data:
            team = data["group"].team
        created = grant_role(
            actor=request.user,
            target=data["content_object"],
            role=data["role"],
            user=data.get("user"),
            team=team,
            expires_at=data["expires_at"],
        )
        obj.pk, obj.permission_id = created.pk, created.permission_id  # the admin logs and links to the new row

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        apply_removal(actor=request.user, grant=obj)  # the preview's summary kept in the grant.delete event


@admin.register(OrgUserGrant)
class OrgUserGrantAdmin(GrantAdmin):
    tenant_path = "content_object__tenant"
    search_fields = ["user__username", "content_object__name"]
    list_select_related = [*GrantAdmin.list_select_related, "user"]


@admin.register(OrgTeamGrant)
class OrgTeamGrantAdmin(GrantAdmin):
    tenant_path = "content_object__tenant"
    search_fields = ["group__team__name", "content_object__name"]
    list_select_related = [*GrantAdmin.list_select_related, "group__team"]


@admin.register(ProjectUserGrant)
class ProjectUserGrantAdmin(GrantAdmin):
    tenant_path = "content_object__org__tenant"
    search_fields = ["user__username", "content_object__name"]
    list_select_related = [*GrantAdmin.list_select_related, "user"]


@admin.register(Invitation)
class InvitationAdmin(ServiceAdmin):
    """Invitations are sent from the console or the API (they e-mail a token); here they are listed and revoked."""

    tenant_path = "org__tenant"
    list_display = ["email", "org", "role", "status", "expires_at", "invited_by"]
    list_select_related = ["org", "role", "invited_by"]
    search_fields = ["email"]
    readonly_fields = ["email", "org", "role", "invited_by", "created_at", "expires_at", "accepted_at", "revoked_at"]
    fields = readonly_fields
    actions = ["revoke_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if self._is_tenant_admin(request):
            actions["revoke_selected"] = (type(self).revoke_selected, "revoke_selected", "Revoke the selected")
        return actions

    @admin.action(description="Revoke the selected invitations")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for invitation in queryset.select_related("org"):
            try:
                revoke_invitation(actor=request.user, invitation=invitation)
            except DomainError as exc:
                self.message_user(request, f"{invitation.email}: {exc.detail}", level=messages.WARNING)
