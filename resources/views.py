"""The console's shared-resource pages (/o/<org-uuid>/…): credentials, lookup tables, environment variables,
components, the effective configuration, and the tasks and runs of projects.

Like every console view: fetch and authorize through config.console (404 when the org or object is not visible,
403 when it is visible but the capability is missing), write through resources.services only with
config.console.dispatch, which answers every refusal the same way (field errors 400, Conflict and Stale 409, …).
Edit forms and delete buttons carry the version they were opened at. A refused request changes nothing.
Secret values are never rendered: secret inputs are empty, even on a re-display.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from uuid import UUID

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters

from access import policy, selectors
from config import hostile
from config.console import (
    EditForm,
    Write,
    console_view,
    dispatch,
    fetch,
    fetch_org,
    fetch_project,
    opened,
    parse_uuid,
    render_org_page,
    require,
)
from config.errors import Forbidden, NotFound
from orgs.models import Organization
from resources import services
from resources.inheritance import effective
from resources.models import (
    Component,
    Credential,
    EnvVar,
    Hidden,
    LookupRow,
    LookupTable,
    OrgSetting,
    Run,
    Task,
)
from resources.services.declarations import MANAGE_CAPABILITY, MODEL_OF_KIND
from resources.services.resources import CREDENTIAL_KINDS
from resources.services.tasks import SHARE_PERMISSIONS
from resources.settings_registry import REGISTRY, effective_settings

VIEW_CAPABILITY_OF_KIND = {
    kind: policy.VIEW_CAPABILITY[model._meta.label_lower] for kind, model in MODEL_OF_KIND.items()
}
MAX_ROWS_SHOWN = 1000

# -- form pieces ---------------------------------------------------------------------------------------------------


class SecretTextarea(forms.Textarea):
    """A textarea for secret values: masked like a password input and never filled, not even on a re-display."""

    def __init__(self) -> None:
        super().__init__(
            attrs={
                "rows": 3,
                "autocomplete": "off",
                "spellcheck": "false",
                "class": "secret-input",
                "style": "-webkit-text-security: disc; text-security: disc;",
            }
        )

    def format_value(self, value: Any) -> None:
        return None


class PairsField(forms.CharField):
    """``name=value`` lines → a dict. Error messages name the line, never a value (it may be a secret)."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3}))
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> dict[str, str]:
        text = super().to_python(value) or ""
        pairs: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, val = line.partition("=")
            name = name.strip()
            if not sep or not name:
                raise forms.ValidationError(f"Line {number}: write name=value.")
            if name in pairs:
                raise forms.ValidationError(f"Line {number}: “{name[:50]}” appears twice.")
            pairs[name] = val.strip()
        return pairs


def pairs_text(values: dict[str, Any]) -> str:
    return "\n".join(f"{name}={value}" for name, value in values.items())


class RowsField(forms.CharField):
    """CSV lines ``key,value`` → a list of {"key", "value"} rows (the services check them)."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}))
        kwargs.setdefault("help_text", "One row per line: key,value (CSV: quote values that hold commas).")
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[dict[str, str]]:
        text = super().to_python(value) or ""
        rows = []
        try:
            for number, record in enumerate(csv.reader(io.StringIO(text)), start=1):
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                if len(record) != 2:
                    raise forms.ValidationError(f"Line {number}: give exactly two columns, key and value.")
                rows.append({"key": record[0], "value": record[1]})
        except csv.Error as exc:
            raise forms.ValidationError(f"Not valid CSV: {exc}.") from None
        return rows


def rows_text(table: LookupTable) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for key, value in table.rows.values_list("key", "value"):
        writer.writerow([key, value])
    return out.getvalue()


def _textarea(rows: int = 2) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows})


LOCKED_HELP = "Descendant organizations may neither override nor hide it."


class CredentialForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=Credential.Kind.choices)
    description = forms.CharField(required=False, max_length=2000, widget=_textarea())
    field_values = PairsField(label="Fields", help_text="Non-secret fields, one name=value per line.")
    secret = PairsField(
        label="Secret fields",
        widget=SecretTextarea(),
        help_text="One name=value per line. Stored encrypted and never shown again.",
    )
    locked = forms.BooleanField(required=False, help_text=LOCKED_HELP)


class CredentialEditForm(EditForm):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000, widget=_textarea())
    field_values = PairsField(label="Fields", help_text="Non-secret fields, one name=value per line.")
    new_secret = PairsField(
        label="Add secret fields",
        widget=SecretTextarea(),
        help_text="Optional: more secret fields, one name=value per line.",
    )
    locked = forms.BooleanField(required=False, help_text=LOCKED_HELP)

    def __init__(self, *args: Any, secret_names: list[str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.secret_names = list(secret_names)
        for name in self.secret_names:
            self.fields[f"set__{name}"] = forms.CharField(
                required=False,
                strip=False,
                label=f"Set a new value for {name}",
                help_text="Leave empty to keep the current value.",
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
            )
            self.fields[f"remove__{name}"] = forms.BooleanField(required=False, label=f"Remove {name}")

    def secret_changes(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        changes: dict[str, Any] = dict(data.get("new_secret") or {})
        for name in self.secret_names:
            if data.get(f"remove__{name}"):
                changes[name] = None
            elif data.get(f"set__{name}"):
                changes[name] = data[f"set__{name}"]
        return changes or None


class LookupTableForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000, widget=_textarea())
    rows = RowsField()
    locked = forms.BooleanField(required=False, help_text=LOCKED_HELP)


class LookupTableEditForm(LookupTableForm, EditForm):
    """LookupTableForm with the version the table had when the form was opened."""


class ImportForm(EditForm):
    file = forms.FileField(
        label="CSV file", help_text="Two columns, key and value; a first line key,value is a header."
    )
    mode = forms.ChoiceField(
        choices=[("replace", "Replace every row"), ("merge", "Merge (same key: new value)")], initial="replace"
    )


class EnvVarForm(forms.Form):
    key = forms.CharField(max_length=100)
    value = forms.CharField(required=False, strip=False, max_length=10_000, widget=_textarea())
    secret = forms.BooleanField(required=False, help_text="Stored encrypted; its value is never shown again.")
    locked = forms.BooleanField(required=False, help_text=LOCKED_HELP)

    def __init__(self, *args: Any, stored_secret: bool = False, component: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if stored_secret or (self.is_bound and self.data.get("secret") in ("on", "true", "1", "True")):
            # Never echo a secret value back, not even after a refusal.
            self.fields["value"].widget = SecretTextarea()
        if stored_secret:
            self.fields["value"].label = "Set a new value"
            self.fields["value"].help_text = "Leave empty to keep the secret value."
        if component:
            del self.fields["locked"]


class EnvVarEditForm(EnvVarForm, EditForm):
    """EnvVarForm with the version the variable had when the form was opened."""


class ComponentForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000, widget=_textarea())
    repository_url = forms.CharField(required=False, max_length=500, label="Repository URL")
    locked = forms.BooleanField(required=False, help_text=LOCKED_HELP)


class ComponentEditForm(ComponentForm, EditForm):
    """ComponentForm with the version the component had when the form was opened."""


class UsernameForm(forms.Form):
    username = forms.CharField(max_length=150, label="Username")


class VersionForm(forms.Form):
    version = forms.CharField(max_length=50, help_text="e.g. 1.4.0: a published version never changes.")
    source = forms.CharField(widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}), max_length=200_000)


class SettingForm(forms.Form):
    key = forms.ChoiceField(choices=[(key, spec.label) for key, spec in REGISTRY.items()], label="Setting")
    value = forms.CharField(
        required=False, max_length=13_000, help_text="true/false, a number, a text, or domains separated by commas."
    )
    locked = forms.BooleanField(required=False, help_text="Organizations below may not change it.")
    # The form sets any key, so it carries the version of every setting declared here when it was opened
    # ("key:version,…"); a key missing from it was not set here (version 0 for the service): saving a key that was
    # changed, set or reset meanwhile is refused as stale.
    versions = forms.CharField(required=False, max_length=5000, widget=forms.HiddenInput)

    @staticmethod
    def versions_of(org: Organization) -> str:
        return ",".join(f"{key}:{version}" for key, version in OrgSetting.objects.filter(org=org).values_list(
            "key", "version"))  # fmt: skip

    def clean_versions(self) -> dict[str, int]:
        versions: dict[str, int] = {}
        for item in filter(None, self.cleaned_data.get("versions", "").split(",")):
            key, _, number = item.partition(":")
            if not number.isdigit() or len(number) > 9:
                raise forms.ValidationError("Reload the page: the versions it was opened at are unreadable.")
            versions[key] = int(number)
        return versions


class HideForm(forms.Form):
    type = forms.ChoiceField(choices=Hidden.Kind.choices)
    name = forms.CharField(max_length=100)

    def __init__(self, *args: Any, kinds: list[str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = [(k, label) for k, label in Hidden.Kind.choices if k in kinds]


class TaskForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000, widget=_textarea())
    steps = hostile.JSONFormField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text='A JSON list of steps, e.g. [{"type": "log", "message": "hello"}].',
    )


class TaskEditForm(TaskForm, EditForm):
    """TaskForm with the version the task had when the form was opened."""


class ShareForm(forms.Form):
    username = forms.CharField(required=False, max_length=150, label="User (username)")
    team = forms.ModelChoiceField(queryset=selectors.Team.objects.none(), required=False)
    permission = forms.ChoiceField(choices=[(p, p) for p in SHARE_PERMISSIONS])

    def __init__(self, *args: Any, org: Organization, viewer: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = selectors.teams_in(org, viewer=viewer)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if bool(data.get("username")) == bool(data.get("team")):
            raise forms.ValidationError("Give either a username or a team.")
        return data


def _page(request: HttpRequest, template: str, org: Organization, context: dict[str, Any], **defaults: Any) -> Any:
    """An org page: the page's own forms (``defaults``) replaced by the bound ones a refusal shows again."""
    return render_org_page(request, template, org, **(defaults | context))


def _on_path(model: Any, org: Organization, queryset: Any = None) -> Any:
    """The declarations of ``org``'s path (the ones that can be seen from it): the only ones its URLs open."""
    qs = queryset if queryset is not None else model.objects.all()
    return qs.filter(
        org__tree_id=org.tree_id, org__lft__lte=org.lft, org__rght__gte=org.rght, org__deleted_at__isnull=True
    ).select_related("org__tenant")


def _fetch_item(
    request: HttpRequest, org: Organization, model: Any, item_id: UUID, capability: str, qs: Any = None
) -> Any:
    return fetch(request, capability, _on_path(model, org, qs), pk=item_id)


def _overridden(model: Any, items: list[Any]) -> dict[Any, Any]:
    """The declarations the effective items shadow (one query), by id, with their org."""
    ids = [e.overrides for e in items if e.overrides]
    if not ids:
        return {}
    return {d.pk: d for d in model.objects.filter(pk__in=ids).select_related("org")}


def _effective_rows(request: HttpRequest, model: Any, org: Organization, capability: str, qs: Any = None) -> list:
    qs = qs if qs is not None else model.objects.all()
    items = effective(model, org, policy.visible(request.user, capability, qs))
    shadowed = _overridden(model, items)
    return [{"e": e, "item": e.item, "overrides": shadowed.get(e.overrides)} for e in items]


# -- credentials ---------------------------------------------------------------------------------------------------


@sensitive_post_parameters("secret", "new_secret", "value")
@console_view
def credentials(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "credential.view")
    user = request.user
    writes = {
        "create": Write(
            capability="credential.manage", on=org,
            run=lambda d: services.create_credential(
                actor=user, org=org, name=d["name"], kind=d["kind"], description=d["description"],
                fields=d["field_values"], secret=d["secret"], locked=d["locked"],
            ),
            done="The credential was created.", then=lambda c: reverse("credential", args=[org.pk, c.pk]),
            form=CredentialForm, form_key="form", rename={"fields": "field_values"},
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        return _page(
            request, "resources/credentials.html", org, context,
            rows=_effective_rows(request, Credential, org, "credential.view"),
            can_manage=policy.can(user, "credential.manage", org),
            form=CredentialForm(), kinds=CREDENTIAL_KINDS,
        )  # fmt: skip

    return dispatch(request, writes, show)


@sensitive_post_parameters("secret", "new_secret", "value")
@console_view
def credential_detail(request: HttpRequest, org_id: UUID, item_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "credential.view")
    credential = _fetch_item(request, org, Credential, item_id, "credential.view")
    user = request.user
    back = reverse("credentials", args=[org.pk])

    bound: dict[str, CredentialEditForm] = {}

    def edit_form(*args: Any) -> CredentialEditForm:
        bound["form"] = CredentialEditForm(*args, secret_names=credential.secret_names)
        return bound["form"]

    def update(d: dict[str, Any]) -> Any:
        return services.update_credential(
            actor=user, credential=credential, secret=bound["form"].secret_changes(), name=d["name"],
            description=d["description"], fields=d["field_values"], locked=d["locked"], version=d["version"],
        )  # fmt: skip

    writes = {
        "edit": Write(
            capability="credential.manage", on=credential, run=update, done="Your changes were saved.",
            then=lambda c: reverse("credential", args=[org.pk, c.pk]), form=edit_form, form_key="edit_form",
            rename={"fields": "field_values", "secret": "new_secret"},
        ),
        "delete": Write(
            capability="credential.manage", on=credential,
            run=lambda d: services.delete_credential(actor=user, credential=credential, version=d["version"]),
            done=f"Credential {credential.name} was deleted.", then=lambda r: back,
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        initial = opened(
            credential, name=credential.name, description=credential.description,
            field_values=pairs_text(credential.fields), locked=credential.locked,
        )  # fmt: skip
        return _page(
            request, "resources/credential.html", org, context,
            item=credential, inherited=credential.org_id != org.pk,
            can_manage=policy.can(user, "credential.manage", credential),
            edit_form=CredentialEditForm(initial=initial, secret_names=credential.secret_names),
        )  # fmt: skip

    return dispatch(request, writes, show)


# -- lookup tables -------------------------------------------------------------------------------------------------


def _row_counts(qs: Any) -> Any:
    count = LookupRow.objects.filter(table=OuterRef("pk")).values("table").annotate(n=Count("pk")).values("n")
    return qs.annotate(row_count=Subquery(count))


@console_view
def lookup_tables(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "lookup.view")
    user = request.user
    writes = {
        "create": Write(
            capability="lookup.manage", on=org,
            run=lambda d: services.create_lookup_table(actor=user, org=org, **d),
            done="The lookup table was created.", then=lambda t: reverse("lookup-table", args=[org.pk, t.pk]),
            form=LookupTableForm, form_key="form",
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        return _page(
            request, "resources/lookup_tables.html", org, context,
            rows=_effective_rows(request, LookupTable, org, "lookup.view", _row_counts(LookupTable.objects.all())),
            can_manage=policy.can(user, "lookup.manage", org), form=LookupTableForm(),
        )  # fmt: skip

    return dispatch(request, writes, show)


def _table_edit(table: LookupTable, d: dict[str, Any]) -> dict[str, Any]:
    """A table too large to edit on the page keeps its rows when the (then empty) rows box is left empty."""
    if not d["rows"] and table.rows.count() > MAX_ROWS_SHOWN:
        return {k: v for k, v in d.items() if k != "rows"}
    return d


@console_view
def lookup_table_detail(request: HttpRequest, org_id: UUID, item_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "lookup.view")
    table = _fetch_item(request, org, LookupTable, item_id, "lookup.view")
    user = request.user
    here = reverse("lookup-table", args=[org.pk, table.pk])
    writes = {
        "edit": Write(
            capability="lookup.manage", on=table,
            run=lambda d: services.update_lookup_table(actor=user, table=table, **_table_edit(table, d)),
            done="Your changes were saved.", then=lambda t: here, form=LookupTableEditForm, form_key="edit_form",
        ),
        "import": Write(
            capability="lookup.manage", on=table,
            run=lambda d: services.import_lookup_csv(
                actor=user, table=table, content=d["file"].read(), replace=d["mode"] == "replace",
                version=d["version"],
            ),
            done="The file was imported.", then=lambda n: here, form=ImportForm, form_key="import_form",
        ),
        "delete": Write(
            capability="lookup.manage", on=table,
            run=lambda d: services.delete_lookup_table(actor=user, table=table, version=d["version"]),
            done=f"Lookup table {table.name} was deleted.", then=lambda r: reverse("lookup-tables", args=[org.pk]),
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        total = table.rows.count()
        initial = opened(
            table, name=table.name, description=table.description, locked=table.locked,
            rows=rows_text(table) if total <= MAX_ROWS_SHOWN else "",
        )  # fmt: skip
        return _page(
            request, "resources/lookup_table.html", org, context,
            item=table, inherited=table.org_id != org.pk, table_rows=list(table.rows.all()[:MAX_ROWS_SHOWN]),
            total=total, max_shown=MAX_ROWS_SHOWN, can_manage=policy.can(user, "lookup.manage", table),
            edit_form=LookupTableEditForm(initial=initial), import_form=ImportForm(initial=opened(table)),
        )  # fmt: skip

    return dispatch(request, writes, show)


@console_view
def lookup_table_export(request: HttpRequest, org_id: UUID, item_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "lookup.view")
    table = _fetch_item(request, org, LookupTable, item_id, "lookup.view")
    response = HttpResponse(services.export_lookup_csv(table), content_type="text/csv; charset=utf-8")
    filename = "".join(c if c.isalnum() or c in "._-" else "_" for c in table.name)
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


# -- environment variables -----------------------------------------------------------------------------------------


def _env_create(user: Any, org: Organization | None, component: Component | None, d: dict[str, Any]) -> EnvVar:
    return services.create_env_var(
        actor=user, org=org, component=component, key=d["key"], value=d["value"], secret=d["secret"],
        locked=d.get("locked", False),
    )  # fmt: skip


@sensitive_post_parameters("secret", "new_secret", "value")
@console_view
def env_vars(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "envvar.view")
    user = request.user
    writes = {
        "create": Write(
            capability="envvar.manage", on=org, run=lambda d: _env_create(user, org, None, d),
            done="The variable was created.", then=lambda v: reverse("env-vars", args=[org.pk]),
            form=EnvVarForm, form_key="form",
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        return _page(
            request, "resources/env_vars.html", org, context,
            rows=_effective_rows(request, EnvVar, org, "envvar.view", EnvVar.objects.filter(component__isnull=True)),
            can_manage=policy.can(user, "envvar.manage", org), form=EnvVarForm(),
        )  # fmt: skip

    return dispatch(request, writes, show)


@sensitive_post_parameters("secret", "new_secret", "value")
@console_view
def env_var_detail(request: HttpRequest, org_id: UUID, item_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "envvar.view")
    variable = _fetch_item(request, org, EnvVar, item_id, "envvar.view", EnvVar.objects.select_related("component"))
    user = request.user
    back = (
        reverse("component", args=[org.pk, variable.component_id])
        if variable.component_id
        else reverse("env-vars", args=[org.pk])
    )
    component = variable.component_id is not None

    def update(d: dict[str, Any]) -> EnvVar:
        fields: dict[str, Any] = {"key": d["key"], "secret": d["secret"]}
        if not component:
            fields["locked"] = d["locked"]
        if d["value"] or not (variable.secret or d["secret"]):
            fields["value"] = d["value"]
        return services.update_env_var(actor=user, variable=variable, version=d["version"], **fields)

    writes = {
        "edit": Write(
            capability="envvar.manage", on=variable.org, run=update, done="Your changes were saved.",
            then=lambda v: reverse("env-var", args=[org.pk, variable.pk]),
            form=lambda *a: EnvVarEditForm(*a, stored_secret=variable.secret, component=component),
            form_key="edit_form",
        ),
        "delete": Write(
            capability="envvar.manage", on=variable.org,
            run=lambda d: services.delete_env_var(actor=user, variable=variable, version=d["version"]),
            done=f"Variable {variable.key} was deleted.", then=lambda r: back,
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        initial = opened(variable, key=variable.key, value="" if variable.secret else variable.value,
                         secret=variable.secret, locked=variable.locked)  # fmt: skip
        return _page(
            request, "resources/env_var.html", org, context,
            item=variable, inherited=variable.org_id != org.pk, back=back,
            can_manage=policy.can(user, "envvar.manage", variable.org),
            edit_form=EnvVarEditForm(initial=initial, stored_secret=variable.secret, component=component),
        )  # fmt: skip

    return dispatch(request, writes, show)


# -- components ----------------------------------------------------------------------------------------------------


@console_view
def components(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "component.view")
    user = request.user
    writes = {
        "create": Write(
            capability="component.manage", on=org,
            run=lambda d: services.create_component(actor=user, org=org, **d),
            done="The component was created.", then=lambda c: reverse("component", args=[org.pk, c.pk]),
            form=ComponentForm, form_key="form",
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        return _page(
            request, "resources/components.html", org, context,
            rows=_effective_rows(request, Component, org, "component.view"),
            can_manage=policy.can(user, "component.manage", org), form=ComponentForm(),
        )  # fmt: skip

    return dispatch(request, writes, show)


@sensitive_post_parameters("secret", "new_secret", "value")
@console_view
def component_detail(request: HttpRequest, org_id: UUID, item_id: UUID) -> HttpResponse:
    try:
        org = fetch_org(request, org_id, "component.view")
        component = _fetch_item(request, org, Component, item_id, "component.view")
    except (NotFound, Forbidden):
        # A development-team member without a role here (a contractor) opens their component under its own org.
        component = fetch(
            request,
            "component.view",
            Component.objects.select_related("org__tenant").filter(org_id=org_id, org__deleted_at__isnull=True),
            pk=item_id,
        )
        org = component.org
    user = request.user
    here = reverse("component", args=[org.pk, component.pk])
    users = get_user_model().objects

    def member_of(d: dict[str, Any]) -> Any:
        return users.filter(username=d["username"]).first()

    def remove(d: dict[str, Any]) -> None:
        member = component.members.filter(pk=parse_uuid(request.POST.get("member"))).select_related("user").first()
        if member is None:
            raise NotFound()
        services.remove_component_member(actor=user, component=component, user=member.user)

    def update(d: dict[str, Any]) -> Component:
        fields = {k: d[k] for k in ("name", "description", "repository_url", "locked")}
        return services.update_component(actor=user, component=component, version=d["version"], **fields)

    writes = {
        "edit": Write(
            capability="component.manage", on=component, run=update,
            done="Your changes were saved.", then=lambda c: here, form=ComponentEditForm, form_key="edit_form",
        ),
        "delete": Write(
            capability="component.manage", on=component,
            run=lambda d: services.delete_component(actor=user, component=component, version=d["version"]),
            done=f"Component {component.name} was deleted.", then=lambda r: reverse("components", args=[org.pk]),
        ),
        "add_member": Write(
            capability="component.manage", on=component,
            run=lambda d: services.add_component_member(actor=user, component=component, user=member_of(d)),
            done="Added to the development team.", then=lambda m: here, form=UsernameForm, form_key="member_form",
            rename={"user": "username"},
        ),
        "remove_member": Write(
            capability="component.manage", on=component, run=remove,
            done="Removed from the development team.", then=lambda r: here,
        ),
        "add_env": Write(
            capability="envvar.manage", on=component.org, run=lambda d: _env_create(user, None, component, d),
            done="The variable was created.", then=lambda v: here,
            form=lambda *a: EnvVarForm(*a, component=True), form_key="env_form",
        ),
        "publish": Write(
            capability=policy.COMPONENT_PUSH, on=component,
            run=lambda d: services.publish_version(
                actor=user, component=component, version=d["version"], source=d["source"]
            ),
            done="The version was published.", then=lambda v: here, form=VersionForm, form_key="version_form",
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        initial = opened(component, name=component.name, description=component.description,
                         repository_url=component.repository_url, locked=component.locked)  # fmt: skip
        return _page(
            request, "resources/component.html", org, context,
            item=component, inherited=component.org_id != org.pk,
            members=list(component.members.select_related("user")),
            versions=list(component.versions.select_related("published_by").defer("source")),
            variables=list(policy.visible(user, "envvar.view", component.env_vars.select_related("org"))),
            can_manage=policy.can(user, "component.manage", component),
            can_manage_env=policy.can(user, "envvar.manage", component.org),
            can_publish=policy.can(user, policy.COMPONENT_PUSH, component),
            edit_form=ComponentEditForm(initial=initial), member_form=UsernameForm(), version_form=VersionForm(),
            env_form=EnvVarForm(component=True),
        )  # fmt: skip

    return dispatch(request, writes, show)


# -- the effective configuration -----------------------------------------------------------------------------------

SECTIONS = [
    (Hidden.Kind.CREDENTIAL, Credential, "Credentials", "credential"),
    (Hidden.Kind.LOOKUP_TABLE, LookupTable, "Lookup tables", "lookup-table"),
    (Hidden.Kind.ENV_VAR, EnvVar, "Environment variables", "env-var"),
    (Hidden.Kind.COMPONENT, Component, "Components", "component"),
]


@console_view
def org_settings(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id)
    user = request.user
    here = reverse("org-settings", args=[org.pk])
    manages = [kind for kind, cap in MANAGE_CAPABILITY.items() if policy.can(user, cap, org)]
    # Hides: checked per kind (the policy's capability for that kind).
    # (a type the form will refuse: checked with one the user holds, so the refusal is the form's 400)
    fallback = MANAGE_CAPABILITY[manages[0]] if manages else "policy.manage"
    hide_cap = MANAGE_CAPABILITY.get(request.POST.get("type", ""), fallback)

    def unhide(d: dict[str, Any]) -> None:
        hidden = Hidden.objects.filter(org=org, pk=parse_uuid(request.POST.get("hidden"))).select_related("org").first()
        if hidden is None:
            raise NotFound()
        require(request, MANAGE_CAPABILITY[hidden.kind], org)
        services.unhide(actor=user, hidden=hidden)

    def set_setting(d: dict[str, Any]) -> Any:
        return services.set_setting(
            actor=user, org=org, key=d["key"], value=d["value"], locked=d["locked"],
            version=d["versions"].get(d["key"], 0),
        )  # fmt: skip

    writes = {
        "set": Write(
            capability="policy.manage", on=org, run=set_setting, done="The setting was saved.", then=lambda s: here,
            form=SettingForm, form_key="setting_form",
        ),
        "reset": Write(
            capability="policy.manage", on=org,
            run=lambda d: services.reset_setting(actor=user, org=org, key=request.POST.get("key", ""),
                                                 version=d["version"]),
            done="The setting was reset: the inherited value applies.", then=lambda r: here,
        ),
        "hide": Write(
            capability=hide_cap, on=org,
            run=lambda d: services.hide(actor=user, org=org, kind=d["type"], name=d["name"]),
            done="The inherited item is hidden here.", then=lambda h: here,
            form=lambda *a: HideForm(*a, kinds=manages), form_key="hide_form",
        ),
        "unhide": Write(
            capability=fallback, on=org, run=unhide,
            done="The item is inherited here again.", then=lambda r: here,
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        sections = []
        hidden = services.hidden_here(org)
        for kind, model, title, url_name in SECTIONS:
            view_cap = VIEW_CAPABILITY_OF_KIND[kind]
            if not policy.can(user, view_cap, org):
                continue
            qs = model.objects.filter(component__isnull=True) if model is EnvVar else None
            sections.append({
                "kind": kind, "title": title, "url_name": url_name,
                "rows": _effective_rows(request, model, org, view_cap, qs),
                "hidden": [h for h in hidden if h.kind == kind],
                "can_manage": kind in manages,
            })  # fmt: skip
        return _page(
            request, "resources/settings.html", org, context,
            settings_rows=effective_settings(org), sections=sections,
            can_manage=policy.can(user, "policy.manage", org), manages=manages,
            setting_form=SettingForm(initial={"versions": SettingForm.versions_of(org)}),
            hide_form=HideForm(kinds=manages),
        )  # fmt: skip

    return dispatch(request, writes, show)


# -- tasks and runs ------------------------------------------------------------------------------------------------


def _task_kwargs(d: dict[str, Any]) -> dict[str, Any]:
    return {"name": d["name"], "description": d["description"], "steps": d["steps"] if d["steps"] is not None else []}


@console_view
def tasks(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    project = fetch_project(request, org_id, project_id, "task.view")
    user = request.user
    writes = {
        "create": Write(
            capability="task.create", on=project,
            run=lambda d: services.create_task(actor=user, project=project, **_task_kwargs(d)),
            done="The task was created.", then=lambda t: reverse("task", args=[org_id, t.pk]),
            form=TaskForm, form_key="form",
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        visible = policy.visible(user, "task.view", Task.objects.filter(project=project)).select_related("created_by")
        return _page(
            request, "resources/tasks.html", project.org, context,
            project=project, tasks=list(visible.order_by("name")),
            can_create=policy.can(user, "task.create", project), form=TaskForm(),
        )  # fmt: skip

    return dispatch(request, writes, show)


def _fetch_task(request: HttpRequest, org_id: UUID, task_id: UUID) -> Task:
    queryset = Task.objects.filter(project__org_id=org_id, project__org__deleted_at__isnull=True).select_related(
        "project__org__tenant", "created_by"
    )
    return fetch(request, "task.view", queryset, pk=task_id)


@console_view
def shared_with_me(request: HttpRequest) -> HttpResponse:
    """Tasks shared with the user or a team of theirs, wherever they live (one query for the list)."""
    access = policy.access_for(request.user)
    shared = [task_id for task_id, caps in access.shares.items() if "task.view" in caps]
    tasks = (
        Task.objects.filter(pk__in=shared, project__org__deleted_at__isnull=True)
        .select_related("project__org")
        .order_by("name")[:200]
    )
    levels = {task_id: _share_level(caps) for task_id, caps in access.shares.items()}
    rows = [{"task": task, "level": levels.get(task.pk, "view")} for task in tasks]
    return render(request, "resources/shared.html", {"rows": rows})


def _share_level(capabilities: frozenset[str]) -> str:
    return "edit" if "task.edit" in capabilities else "run" if "task.run" in capabilities else "view"


@console_view
def task_detail(request: HttpRequest, org_id: UUID, task_id: UUID) -> HttpResponse:
    task = _fetch_task(request, org_id, task_id)
    project, org, user = task.project, task.project.org, request.user
    here = reverse("task", args=[org.pk, task.pk])

    def share(d: dict[str, Any]) -> Any:
        target = None
        if d.get("username"):
            target = get_user_model().objects.filter(username=d["username"]).first()
            if target is None:
                raise ValidationError({"username": ["No such user in this tenant."]})
        return services.share_task(actor=user, task=task, permission=d["permission"], user=target, team=d.get("team"))

    writes = {
        "edit": Write(
            capability="task.edit", on=task,
            run=lambda d: services.update_task(actor=user, task=task, version=d["version"], **_task_kwargs(d)),
            done="Your changes were saved.", then=lambda t: here, form=TaskEditForm, form_key="edit_form",
        ),
        "delete": Write(
            capability="task.delete", on=task,
            run=lambda d: services.delete_task(actor=user, task=task, version=d["version"]),
            done=f"Task {task.name} was deleted.", then=lambda r: reverse("tasks", args=[org.pk, project.pk]),
        ),
        "run": Write(
            capability="task.run", on=task, run=lambda d: services.run_task(actor=user, task=task),
            done="The run is queued.", then=lambda r: reverse("run", args=[org.pk, r.pk]),
        ),
        "share": Write(
            capability="task.share", on=task, run=share, done="The task was shared.", then=lambda s: here,
            form=lambda *a: ShareForm(*a, org=org, viewer=user), form_key="share_form", rename={"user": "username"},
        ),
        "unshare": Write(
            capability="task.share", on=task,
            run=lambda d: services.unshare_task(actor=user, task=task, share_id=parse_uuid(request.POST.get("share"))),
            done="The share was removed.", then=lambda r: here,
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        caps = policy.capabilities(user, task)
        initial = opened(task, name=task.name, description=task.description, steps=task.steps)
        return _page(
            request, "resources/task.html", org, context,
            task=task, project=project, task_caps=caps,
            steps_json=json.dumps(task.steps, indent=2),
            runs=list(task.runs.select_related("requested_by")[:50]),
            shares=services.shares_of(task) if "task.share" in caps else [],
            edit_form=TaskEditForm(initial=initial), share_form=ShareForm(org=org, viewer=user), active=Run.ACTIVE,
        )  # fmt: skip

    return dispatch(request, writes, show)


@console_view
def run_detail(request: HttpRequest, org_id: UUID, run_id: UUID) -> HttpResponse:
    queryset = Run.objects.filter(
        task__project__org_id=org_id, task__project__org__deleted_at__isnull=True
    ).select_related("task__project__org__tenant", "requested_by", "stopped_by")
    run = fetch(request, "task.view", queryset, pk=run_id)
    org, user = run.task.project.org, request.user
    here = reverse("run", args=[org.pk, run.pk])
    writes = {
        "stop": Write(
            capability="task.run", on=run, run=lambda d: services.stop_run(actor=user, run=run),
            done="The run was stopped.", then=lambda r: here,
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        return _page(
            request, "resources/run.html", org, context,
            run=run, task=run.task, lines=list(run.log_lines.all()[:5000]),
            can_run=policy.can(user, "task.run", run), is_active=run.status in Run.ACTIVE,
        )  # fmt: skip

    return dispatch(request, writes, show)
