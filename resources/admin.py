"""Admin pages of the shared resources, scoped to the staff user's tenants (superusers see everything).

Every write goes through resources.services with ``actor=request.user`` (policy, inheritance rules, audit); a
service's refusal (a 409 such as a name locked above, a field error) becomes an error message on the form page
through the base's changeform, and nothing is saved. Secrets are write-only here: a credential's secret fields and
a secret variable's value are typed into never-prefilled password inputs and never shown, listed or logged.
Another tenant's object by URL answers 404.

A declared kind's admin subclasses ``DeclarationAdmin`` with only its fields (``kind_fields``): the tenant scope, the
stale-form version and the writes through the kind's services come with it; credentials, lookup tables, env vars and
components add their secrets, rows and teams on top.

No lost updates (docs/DESIGN.md §4.9): every change form carries, in a hidden field, the version of the object it was
opened at (``VersionedForm``) and passes it to the service; a save from a form opened before someone else's change
is refused with a message naming who changed it and when, and the page reloads with the current values instead of
overwriting them.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from config import hostile
from config.admin import ServiceAdmin
from config.errors import DomainError
from governance.impact.settings_changes import apply_setting
from orgs.models import Project
from resources import services
from resources.models import (
    Component,
    ComponentMember,
    ComponentVersion,
    Credential,
    EnvVar,
    Hidden,
    LookupRow,
    LookupTable,
    OrgSetting,
    Run,
    RunLogLine,
    Task,
)
from resources.settings_registry import REGISTRY

SECRET_MASK = "•••••• (secret: never shown)"


def write_only(**attrs: Any) -> forms.PasswordInput:
    """A password input that never renders a value (not even after a form error) and that browsers do not fill."""
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", **attrs})


class ResourceAdmin(ServiceAdmin):
    """Base of this module: tenant scope, live orgs only, choice fields limited to the admin's tenants, and 404
    (not a redirect) for an object outside the scope."""

    tenant_path = "org__tenant"
    alive_path = "org__deleted_at__isnull"
    related = ("org",)
    # JSON columns (a credential's fields, a task's steps) refuse NUL and lone surrogates with a field error.
    formfield_overrides = {models.JSONField: {"form_class": hostile.JSONFormField}}

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(**{self.alive_path: True}).select_related(*self.related)

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str) -> Any:
        raise Http404(f"No {opts.verbose_name} with ID “{object_id}” here.")

    def scoped_projects(self, request: HttpRequest) -> QuerySet:
        return Project.objects.filter(org__in=self.scoped_orgs(request)).select_related("org").order_by("name")

    def scoped_components(self, request: HttpRequest) -> QuerySet:
        return Component.objects.filter(org__in=self.scoped_orgs(request)).select_related("org").order_by("name")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "org":
            kwargs["queryset"] = self.scoped_orgs(request)
        elif db_field.name == "project":
            kwargs["queryset"] = self.scoped_projects(request)
        elif db_field.name == "component":
            kwargs["queryset"] = self.scoped_components(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def construct_change_message(self, request: HttpRequest, form: forms.Form, formsets: Any, add: bool = False) -> Any:
        # The inlines are read-only and the services saved everything (save_related saves nothing), so the
        # formsets have no saved objects to report: the message lists the changed form fields' labels, no values.
        return super().construct_change_message(request, form, None, add)

    @staticmethod
    def changed(form: forms.Form, *names: str) -> dict[str, Any]:
        """The cleaned values of the fields among ``names`` that the form changed."""
        return {name: form.cleaned_data[name] for name in names if name in form.changed_data}


class VersionedForm(forms.ModelForm):
    """A change form that remembers the version of the object it was opened at (a hidden field, posted back), so
    the service refuses the save (Stale) when the object changed since. Empty on the add form."""

    # Not named "version": a model form may not name the model's own non-editable column.
    opened_version = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["opened_version"] = self.instance.version

    def version(self) -> int | None:
        """The version the form was opened at, as posted (None: not known, nothing is checked)."""
        return self.cleaned_data.get("opened_version")


class ReadOnlyInline(admin.TabularInline):
    """Shown to whoever sees the parent (the parent admin decided that); never added, changed or deleted here."""

    extra = 0
    can_delete = False
    show_change_link = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return list(self.fields)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeclarationAdmin(ResourceAdmin):
    """Base of a declared kind's admin: scoped to the admin's tenants (ResourceAdmin), the change form carrying the
    version it was opened at (VersionedForm: a save over a newer change is refused, naming who made it and when),
    every write through the kind's services (config.kinds.kind_services, else the default declaration services:
    policy, inheritance rules, audit). A kind's registration names only its own fields::

        @admin.register(Runtime)
        class RuntimeAdmin(DeclarationAdmin):
            kind_fields = ("name", "description", "region")

    The list shows the name, org, lock and last change, searchable by name and org; the org is fixed once created.
    Kinds whose writes take more (secrets, rows, a team) override ``write`` or ``save_model`` around it."""

    form = VersionedForm
    kind_fields: tuple[str, ...] = ("name", "description")  # the editable fields besides org and lock
    meta_fields: tuple[str, ...] = ("created_by", "created_at", "updated_at")

    def __init__(self, model: type[models.Model], admin_site: Any) -> None:
        super().__init__(model, admin_site)
        name = str(getattr(model, "NAME_FIELD", "name"))  # the registry fills later (admin autodiscovers first)
        if tuple(self.list_display) == ("__str__",):
            self.list_display = [name, "org", "locked", "updated_at"]
        if not self.list_filter:
            self.list_filter = ["locked"]
        if not self.search_fields:
            self.search_fields = [name, "org__name"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        extra = [f for f in self.get_form_class_fields() if f not in ("opened_version", *self.kind_fields)]
        if obj is None:
            return ["org", *self.kind_fields, *extra, "locked"]
        return ["org", *self.kind_fields, *extra, "locked", *self.meta_fields, "opened_version"]

    def get_form_class_fields(self) -> list[str]:
        """The form's own (non-model) fields, shown after the kind's fields (e.g. a component's team)."""
        return [name for name in self.form.declared_fields if name not in ("org", "locked")]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["org", *self.meta_fields] if obj is not None else []

    def write(self, request: HttpRequest, obj: Any, form: forms.Form, change: bool) -> Any:
        """Create, or change what the form changed, through the kind's services; the saved (fresh) row."""
        writes = services.services_for(self.model)
        data = form.cleaned_data
        if change:
            item = self.model._default_manager.select_related("org").get(pk=obj.pk)
            if fields := self.changed(form, *self.kind_fields, "locked"):
                item = writes.update(actor=request.user, item=item, version=form.version(), **fields)
            return item
        given = {name: data[name] for name in (*self.kind_fields, "locked") if name in data}
        item = writes.create(actor=request.user, org=data["org"], **given)
        obj.pk = item.pk
        return item

    def save_model(self, request: HttpRequest, obj: Any, form: forms.Form, change: bool) -> None:
        self.write(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.services_for(self.model).delete(actor=request.user, item=obj)


# -- credentials ---------------------------------------------------------------------------------------------------


class CredentialForm(VersionedForm):
    set_secret = forms.CharField(
        required=False,
        strip=False,
        widget=write_only(),
        label="Set secret",
        help_text='A JSON object of secret field names to values, e.g. {"password": "…"}; a null value removes '
        "a field. Never shown again. Leave empty to keep the stored secret.",
    )

    class Meta:
        model = Credential
        fields = ["org", "name", "kind", "description", "fields", "locked"]

    def clean_set_secret(self) -> dict[str, Any] | None:
        raw = self.cleaned_data.get("set_secret") or ""
        if not raw.strip():
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            value = None  # never echo the text: it is a secret
        if not isinstance(value, dict):
            raise ValidationError('Give a JSON object of secret field names to text values, e.g. {"key": "…"}.')
        hostile.check_text(value)  # names the key, never the value
        return value


@admin.register(Credential)
class CredentialAdmin(DeclarationAdmin):
    form = CredentialForm

    @method_decorator(sensitive_post_parameters("set_secret"))
    def changeform_view(self, *args: Any, **kwargs: Any) -> Any:  # secrets out of error reports
        return super().changeform_view(*args, **kwargs)

    list_display = ["name", "kind", "source", "org", "locked", "secret_fields", "updated_at"]
    list_filter = ["kind", "source", "locked"]
    search_fields = ["name", "org__name"]

    @admin.display(description="secret fields set")
    def secret_fields(self, credential: Credential) -> str:
        return ", ".join(credential.secret_names) or "—"  # names only, never values

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["org", "name", "kind", "description", "fields", "set_secret", "locked"]
        return ["org", "name", "kind", "source", "description", "fields", "secret_fields", "set_secret", "locked",
                "created_by", "created_at", "updated_at", "opened_version"]  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return ["org", "kind", "source", "secret_fields", "created_by", "created_at", "updated_at"]

    def save_model(self, request: HttpRequest, obj: Credential, form: forms.Form, change: bool) -> None:
        data = form.cleaned_data
        if change:
            services.update_credential(
                actor=request.user,
                credential=Credential.objects.select_related("org").get(pk=obj.pk),
                secret=data.get("set_secret"),
                version=form.version(),
                **self.changed(form, "name", "description", "fields", "locked"),
            )
            return
        created = services.create_credential(
            actor=request.user, org=data["org"], name=data["name"], kind=data["kind"], fields=data.get("fields") or {},
            secret=data.get("set_secret"), description=data.get("description", ""), locked=data.get("locked", False),
        )  # fmt: skip
        obj.pk = created.pk


# -- lookup tables -------------------------------------------------------------------------------------------------


class LookupRowInline(ReadOnlyInline):
    model = LookupRow
    fields = ["key", "value"]


class LookupTableForm(VersionedForm):
    replace_rows = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        label="Replace rows (CSV)",
        help_text="One “key,value” line per row (a first line “key,value” is a header): replaces every row. "
        "Leave empty to keep the rows.",
    )

    class Meta:
        model = LookupTable
        fields = ["org", "name", "description", "locked"]


@admin.register(LookupTable)
class LookupTableAdmin(DeclarationAdmin):
    form = LookupTableForm
    inlines = [LookupRowInline]
    meta_fields = ()

    def save_model(self, request: HttpRequest, obj: LookupTable, form: forms.Form, change: bool) -> None:
        version = form.version()
        table = self.write(request, obj, form, change)
        if version is not None and self.changed(form, *self.kind_fields, "locked"):
            version = table.version  # the rows below follow this form's own change
        if form.cleaned_data.get("replace_rows", "").strip():
            content = form.cleaned_data["replace_rows"]
            services.import_lookup_csv(actor=request.user, table=table, content=content, version=version)


# -- environment variables -----------------------------------------------------------------------------------------


class EnvVarForm(VersionedForm):
    new_value = forms.CharField(
        required=False,
        strip=False,
        widget=write_only(),
        label="New value",
        help_text="Write-only. Leave empty to keep the current value (a new variable then has an empty value).",
    )

    class Meta:
        model = EnvVar
        fields = ["org", "component", "key", "secret", "locked"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "org" in self.fields:  # the add form: a component's variable goes with the component's org
            component = data.get("component")
            if component is not None:
                data["org"] = component.org
            elif data.get("org") is None:
                self.add_error("org", "Choose an organization, or a component.")
        return data


@admin.register(EnvVar)
class EnvVarAdmin(DeclarationAdmin):
    form = EnvVarForm

    @method_decorator(sensitive_post_parameters("new_value"))
    def changeform_view(self, *args: Any, **kwargs: Any) -> Any:  # secrets out of error reports
        return super().changeform_view(*args, **kwargs)

    related = ("org", "component")
    list_display = ["key", "org", "component", "shown_value", "secret", "locked", "updated_at"]
    list_filter = ["secret", "locked"]
    search_fields = ["key", "org__name"]

    @admin.display(description="value")
    def shown_value(self, variable: EnvVar) -> str:
        if variable.secret:
            return SECRET_MASK
        return variable.value if len(variable.value) <= 80 else variable.value[:79] + "…"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["org", "component", "key", "new_value", "secret", "locked"]
        return ["org", "component", "key", "shown_value", "new_value", "secret", "locked", "created_by",
                "created_at", "updated_at", "opened_version"]  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return ["org", "component", "shown_value", "created_by", "created_at", "updated_at"]

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        if obj is None:
            form.base_fields["org"].required = False
        return form

    def save_model(self, request: HttpRequest, obj: EnvVar, form: forms.Form, change: bool) -> None:
        data = form.cleaned_data
        new_value = data.get("new_value") or None
        if change:
            fields = self.changed(form, "key", "locked")
            services.update_env_var(
                actor=request.user,
                variable=EnvVar.objects.select_related("org", "component").get(pk=obj.pk),
                secret=data.get("secret", False),
                version=form.version(),
                **fields,
                **({"value": new_value} if new_value is not None else {}),
            )
            return
        component = data.get("component")
        created = services.create_env_var(
            actor=request.user, org=None if component else data["org"], component=component, key=data["key"],
            value=new_value or "", secret=data.get("secret", False), locked=data.get("locked", False),
        )  # fmt: skip
        obj.pk = created.pk


# -- private components --------------------------------------------------------------------------------------------


class ComponentMemberInline(ReadOnlyInline):
    model = ComponentMember
    fk_name = "component"
    fields = ["user", "added_by", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("user", "added_by")


class ComponentVersionInline(ReadOnlyInline):
    model = ComponentVersion
    fields = ["version", "published_by", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("published_by")


class ComponentForm(VersionedForm):
    # Plain text: the service takes https://, ssh:// and git:// addresses, which a form URLField would refuse.
    repository_url = forms.CharField(required=False, max_length=500, label="Repository URL")
    development_team = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        help_text="Users of the tenant who may publish versions (they need no org role).",
    )

    class Meta:
        model = Component
        fields = ["org", "name", "description", "repository_url", "locked"]


@admin.register(Component)
class ComponentAdmin(DeclarationAdmin):
    form = ComponentForm
    kind_fields = ("name", "description", "repository_url")
    inlines = [ComponentMemberInline, ComponentVersionInline]
    list_display = ["name", "org", "repository_url", "locked", "updated_at"]

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        team = form.base_fields["development_team"]
        users = self.scoped_users(request)
        if obj is not None:
            users = users.filter(tenant_memberships__tenant=obj.org.tenant_id)
            team.initial = list(obj.members.values_list("user_id", flat=True))
        team.queryset = users
        return form

    def save_model(self, request: HttpRequest, obj: Component, form: forms.Form, change: bool) -> None:
        data = form.cleaned_data
        version = form.version()
        component = self.write(request, obj, form, change)
        if version is not None and self.changed(form, *self.kind_fields, "locked"):
            version = component.version  # the team follows this form's own change
        # The team is part of the component: each change checks the version this form's previous step left (the
        # opened one first), so a team edited by someone else since the form was opened is refused, not undone.
        # (The admin's change view is one transaction: a refusal at any step leaves nothing saved.)
        wanted = set(data.get("development_team") or ())
        current = {m.user for m in component.members.select_related("user")}
        for user in sorted(wanted - current, key=lambda u: u.username):
            member = services.add_component_member(actor=request.user, component=component, user=user, version=version)
            component = member.component
            version = component.version if version is not None else None
        for user in sorted(current - wanted, key=lambda u: u.username):
            component = services.remove_component_member(
                actor=request.user, component=component, user=user, version=version
            )
            version = component.version if version is not None else None


# -- settings and hides --------------------------------------------------------------------------------------------


def _setting_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):  # require_2fa: JSON, which its cleaner reads back
        return json.dumps(value)
    return str(value)


class OrgSettingForm(VersionedForm):
    key = forms.ChoiceField(choices=[(key, f"{spec.label} ({key})") for key, spec in REGISTRY.items()])
    value = forms.CharField(
        required=False, help_text="true or false, a whole number or a text, as the setting takes (empty: none)."
    )

    class Meta:
        model = OrgSetting
        fields = ["org", "key", "value", "locked"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["value"] = _setting_text(self.instance.value)


@admin.register(OrgSetting)
class OrgSettingAdmin(ResourceAdmin):
    form = OrgSettingForm
    list_display = ["key", "org", "shown_value", "locked", "updated_at"]
    list_filter = ["key", "locked"]
    search_fields = ["key", "org__name"]

    @admin.display(description="value")
    def shown_value(self, setting: OrgSetting) -> str:
        return _setting_text(setting.value) or "—"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["org", "key"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: OrgSetting, form: forms.Form, change: bool) -> None:
        data = form.cleaned_data
        if change:
            current = OrgSetting.objects.select_related("org").get(pk=obj.pk)
            org, key = current.org, current.key
        else:
            org, key = data["org"], data["key"]
        saved, _ = apply_setting(  # the preview's summary (values from → to, locks) kept in the setting.set event
            actor=request.user, org=org, key=key, value=data.get("value", ""), locked=data.get("locked", False),
            version=form.version() if change else None,
        )  # fmt: skip
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: OrgSetting) -> None:
        services.reset_setting(actor=request.user, org=obj.org, key=obj.key)


@admin.register(Hidden)
class HiddenAdmin(ResourceAdmin):
    """Hides are added and removed, never changed."""

    list_display = ["name", "kind", "org", "created_by", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "org__name"]
    fields = ["org", "kind", "name"]
    related = ("org", "created_by")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Hidden, form: forms.Form, change: bool) -> None:
        data = form.cleaned_data
        obj.pk = services.hide(actor=request.user, org=data["org"], kind=data["kind"], name=data["name"]).pk

    def delete_model(self, request: HttpRequest, obj: Hidden) -> None:
        services.unhide(actor=request.user, hidden=obj)


# -- tasks and runs ------------------------------------------------------------------------------------------------


@admin.register(Task)
class TaskAdmin(ResourceAdmin):
    tenant_path = "project__org__tenant"
    alive_path = "project__org__deleted_at__isnull"
    related = ("project__org",)
    list_display = ["name", "project", "org", "step_count", "updated_at"]
    search_fields = ["name", "project__name"]
    actions = ["run_selected"]

    @admin.display(description="organization")
    def org(self, task: Task) -> Any:
        return task.project.org

    @admin.display(description="steps")
    def step_count(self, task: Task) -> int:
        return len(task.steps or [])

    form = VersionedForm

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["project", "name", "description", "steps"]
        return ["project", "name", "description", "steps", "runtime", "created_by", "created_at", "updated_at",
                "opened_version"]  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["project", "runtime", "created_by", "created_at", "updated_at"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Task, form: forms.Form, change: bool) -> None:
        data = form.cleaned_data
        if change:
            if fields := self.changed(form, "name", "description", "steps"):
                task = Task.objects.select_related("project__org").get(pk=obj.pk)
                services.update_task(actor=request.user, task=task, version=form.version(), **fields)
            return
        created = services.create_task(
            actor=request.user, project=data["project"], name=data["name"], description=data.get("description", ""),
            steps=data.get("steps") or [],
        )  # fmt: skip
        obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Task) -> None:
        services.delete_task(actor=request.user, task=obj)

    @admin.action(description="Run the selected tasks")
    def run_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        queued = 0
        for task in queryset:
            try:
                services.run_task(actor=request.user, task=task)
                queued += 1
            except (DomainError, ValidationError) as exc:
                self.report(request, exc)
        if queued:
            self.message_user(request, f"Queued {queued} run(s).")


class RunLogLineInline(ReadOnlyInline):
    model = RunLogLine
    fields = ["seq", "at", "level", "message"]


@admin.register(Run)
class RunAdmin(ResourceAdmin):
    """Runs are started from tasks: read-only here, except the stop action (through the service)."""

    tenant_path = "task__project__org__tenant"
    alive_path = "task__project__org__deleted_at__isnull"
    related = ("task__project__org", "requested_by")
    inlines = [RunLogLineInline]
    list_display = ["task", "project", "status", "requested_by", "created_at", "started_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["task__name", "task__project__name"]
    date_hierarchy = "created_at"
    fields = ["task", "status", "requested_by", "stopped_by", "steps", "error", "created_at", "started_at",
              "finished_at"]  # fmt: skip
    readonly_fields = fields
    actions = ["stop_selected"]

    @admin.display(description="project")
    def project(self, run: Run) -> Any:
        return run.task.project

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if self._is_tenant_admin(request):
            actions["stop_selected"] = (type(self).stop_selected, "stop_selected", "Stop the selected runs")
        return actions

    @admin.action(description="Stop the selected runs")
    def stop_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        stopped = 0
        for run in queryset.filter(status__in=Run.ACTIVE):
            try:
                services.stop_run(actor=request.user, run=run)
                stopped += 1
            except (DomainError, ValidationError) as exc:
                self.report(request, exc)
        self.message_user(request, f"Stopped {stopped} run(s).", level=messages.SUCCESS if stopped else messages.INFO)
