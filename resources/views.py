"""The console's shared-resource pages (/o/<org-uuid>/…): credentials, lookup tables, environment variables,
components, the effective configuration, and the tasks and runs of projects.

Like every console view: fetch and authorize through the policy (404 when the org or object is not visible, 403
when it is visible but the capability is missing), write through resources.services only, and show a service's
refusal on the page: a ValidationError as form errors with status 400, a Conflict as a message with status 409.
A refused request changes nothing. Secret values are never rendered: secret inputs are empty, even on a re-display.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters

from access import policy, selectors
from config import hostile
from config.errors import DomainError, Forbidden, NotFound
from orgs.models import Organization
from orgs.views import _authorized, fetch_org, fetch_project, render_org_page
from resources import services
from resources.inheritance import effective
from resources.models import (
    Component,
    Credential,
    EnvVar,
    Hidden,
    LookupRow,
    LookupTable,
    Run,
    Task,
)
from resources.services.declarations import MANAGE_CAPABILITY, MODEL_OF_KIND
from resources.services.resources import CREDENTIAL_KINDS
from resources.services.tasks import SHARE_PERMISSIONS
from resources.settings_registry import REGISTRY, effective_settings

DENIED = "You do not have permission to do this here."
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


class CredentialEditForm(forms.Form):
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


class ImportForm(forms.Form):
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


class ComponentForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000, widget=_textarea())
    repository_url = forms.CharField(required=False, max_length=500, label="Repository URL")
    locked = forms.BooleanField(required=False, help_text=LOCKED_HELP)


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


# -- the one way a page handles its actions ------------------------------------------------------------------------


@dataclass
class Action:
    """A POST with ``action=<name>``: allowed when ``capability`` holds on ``obj`` (checked before anything else),
    then ``form`` (if any) is validated and ``run`` calls the service."""

    capability: str
    obj: Any
    run: Callable[[dict[str, Any]], Any]
    done: str
    success: Callable[[Any], str]
    form: Callable[..., forms.Form] | None = None
    form_key: str = ""
    rename: dict[str, str] | None = None  # service error field → form field


def _apply(form: forms.Form, exc: ValidationError, rename: dict[str, str] | None) -> None:
    for field, errors in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
        field = (rename or {}).get(field, field)
        form.add_error(field if field in form.fields else None, errors)


def _handle(
    request: HttpRequest,
    actions: dict[str, Action],
    show: Callable[[dict[str, Any]], HttpResponse],
) -> HttpResponse:
    """GET shows the page. POST runs one action; a refusal re-shows the page with the error and the status."""
    if request.method != "POST":
        return show({})
    action = actions.get(request.POST.get("action", ""))
    if action is None:
        return HttpResponseBadRequest("Unknown action.")
    if not policy.can(request.user, action.capability, action.obj):
        raise PermissionDenied(DENIED)
    form = action.form(request.POST, request.FILES) if action.form else None
    error, status = "", 400
    if form is None or form.is_valid():
        try:
            result = action.run(form.cleaned_data if form is not None else {})
        except NotFound:
            raise Http404 from None
        except ValidationError as exc:
            if form is not None:
                _apply(form, exc, action.rename)
            else:
                error = " ".join(exc.messages)
        except DomainError as exc:  # Conflict → 409, Forbidden (e.g. a setting turns a feature off) → 403
            error, status = exc.detail, exc.status
        else:
            messages.success(request, action.done)
            return redirect(action.success(result))
    context: dict[str, Any] = {"error": error, "failed_action": request.POST.get("action")}
    if form is not None and action.form_key:
        context[action.form_key] = form
    response = show(context)
    response.status_code = status
    return response


def _page(request: HttpRequest, template: str, org: Organization, context: dict[str, Any], **defaults: Any) -> Any:
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
    return _authorized(request.user, capability, _on_path(model, org, qs), pk=item_id)


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
@login_required
def credentials(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "credential.view")
    user = request.user
    actions = {
        "create": Action(
            "credential.manage",
            org,
            lambda d: services.create_credential(
                actor=user, org=org, name=d["name"], kind=d["kind"], description=d["description"],
                fields=d["field_values"], secret=d["secret"], locked=d["locked"],
            ),
            "The credential was created.",
            lambda c: reverse("credential", args=[org.pk, c.pk]),
            form=CredentialForm,
            form_key="form",
            rename={"fields": "field_values"},
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        return _page(
            request, "resources/credentials.html", org, context,
            rows=_effective_rows(request, Credential, org, "credential.view"),
            can_manage=policy.can(user, "credential.manage", org),
            form=CredentialForm(), kinds=CREDENTIAL_KINDS,
        )  # fmt: skip

    return _handle(request, actions, show)


@sensitive_post_parameters("secret", "new_secret", "value")
@login_required
def credential_detail(request: HttpRequest, org_id: UUID, item_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "credential.view")
    credential = _fetch_item(request, org, Credential, item_id, "credential.view")
    user = request.user
    back = reverse("credentials", args=[org.pk])

    bound: dict[str, CredentialEditForm] = {}

    def edit_form(*args: Any, **kwargs: Any) -> CredentialEditForm:
        bound["form"] = CredentialEditForm(*args, secret_names=credential.secret_names, **kwargs)
        return bound["form"]

    def update(d: dict[str, Any]) -> Any:
        return services.update_credential(
            actor=user, credential=credential, secret=bound["form"].secret_changes(), name=d["name"],
            description=d["description"], fields=d["field_values"], locked=d["locked"],
        )  # fmt: skip

    actions = {
        "edit": Action(
            "credential.manage", credential, update, "Your changes were saved.",
            lambda c: reverse("credential", args=[org.pk, c.pk]), form=edit_form, form_key="edit_form",
            rename={"fields": "field_values", "secret": "new_secret"},
        ),
        "delete": Action(
            "credential.manage", credential,
            lambda d: services.delete_credential(actor=user, credential=credential),
            f"Credential {credential.name} was deleted.", lambda r: back,
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        initial = {
            "name": credential.name, "description": credential.description,
            "field_values": pairs_text(credential.fields), "locked": credential.locked,
        }  # fmt: skip
        return _page(
            request, "resources/credential.html", org, context,
            item=credential, inherited=credential.org_id != org.pk,
            can_manage=policy.can(user, "credential.manage", credential),
            edit_form=CredentialEditForm(initial=initial, secret_names=credential.secret_names),
        )  # fmt: skip

    return _handle(request, actions, show)


# -- lookup tables -------------------------------------------------------------------------------------------------


def _row_counts(qs: Any) -> Any:
    count = LookupRow.objects.filter(table=OuterRef("pk")).values("table").annotate(n=Count("pk")).values("n")
    return qs.annotate(row_count=Subquery(count))


@login_required
def lookup_tables(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "lookup.view")
    user = request.user
    actions = {
        "create": Action(
            "lookup.manage", org,
            lambda d: services.create_lookup_table(actor=user, org=org, **d),
            "The lookup table was created.", lambda t: reverse("lookup-table", args=[org.pk, t.pk]),
            form=LookupTableForm, form_key="form",
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        return _page(
            request, "resources/lookup_tables.html", org, context,
            rows=_effective_rows(request, LookupTable, org, "lookup.view", _row_counts(LookupTable.objects.all())),
            can_manage=policy.can(user, "lookup.manage", org), form=LookupTableForm(),
        )  # fmt: skip

    return _handle(request, actions, show)


def _table_edit(table: LookupTable, d: dict[str, Any]) -> dict[str, Any]:
    """A table too large to edit on the page keeps its rows when the (then empty) rows box is left empty."""
    if not d["rows"] and table.rows.count() > MAX_ROWS_SHOWN:
        return {k: v for k, v in d.items() if k != "rows"}
    return d


@login_required
def lookup_table_detail(request: HttpRequest, org_id: UUID, item_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "lookup.view")
    table = _fetch_item(request, org, LookupTable, item_id, "lookup.view")
    user = request.user
    here = reverse("lookup-table", args=[org.pk, table.pk])
    actions = {
        "edit": Action(
            "lookup.manage", table,
            lambda d: services.update_lookup_table(actor=user, table=table, **_table_edit(table, d)),
            "Your changes were saved.", lambda t: here, form=LookupTableForm, form_key="edit_form",
        ),
        "import": Action(
            "lookup.manage", table,
            lambda d: services.import_lookup_csv(
                actor=user, table=table, content=d["file"].read(), replace=d["mode"] == "replace"
            ),
            "The file was imported.", lambda n: here, form=ImportForm, form_key="import_form",
        ),
        "delete": Action(
            "lookup.manage", table, lambda d: services.delete_lookup_table(actor=user, table=table),
            f"Lookup table {table.name} was deleted.", lambda r: reverse("lookup-tables", args=[org.pk]),
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        total = table.rows.count()
        initial = {
            "name": table.name, "description": table.description, "locked": table.locked,
            "rows": rows_text(table) if total <= MAX_ROWS_SHOWN else "",
        }  # fmt: skip
        return _page(
            request, "resources/lookup_table.html", org, context,
            item=table, inherited=table.org_id != org.pk, table_rows=list(table.rows.all()[:MAX_ROWS_SHOWN]),
            total=total, max_shown=MAX_ROWS_SHOWN, can_manage=policy.can(user, "lookup.manage", table),
            edit_form=LookupTableForm(initial=initial), import_form=ImportForm(),
        )  # fmt: skip

    return _handle(request, actions, show)


@login_required
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
@login_required
def env_vars(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "envvar.view")
    user = request.user
    actions = {
        "create": Action(
            "envvar.manage", org, lambda d: _env_create(user, org, None, d), "The variable was created.",
            lambda v: reverse("env-vars", args=[org.pk]), form=EnvVarForm, form_key="form",
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        return _page(
            request, "resources/env_vars.html", org, context,
            rows=_effective_rows(request, EnvVar, org, "envvar.view", EnvVar.objects.filter(component__isnull=True)),
            can_manage=policy.can(user, "envvar.manage", org), form=EnvVarForm(),
        )  # fmt: skip

    return _handle(request, actions, show)


@sensitive_post_parameters("secret", "new_secret", "value")
@login_required
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
        return services.update_env_var(actor=user, variable=variable, **fields)

    actions = {
        "edit": Action(
            "envvar.manage", variable.org, update, "Your changes were saved.",
            lambda v: reverse("env-var", args=[org.pk, variable.pk]),
            form=lambda *a: EnvVarForm(*a, stored_secret=variable.secret, component=component), form_key="edit_form",
        ),
        "delete": Action(
            "envvar.manage", variable.org, lambda d: services.delete_env_var(actor=user, variable=variable),
            f"Variable {variable.key} was deleted.", lambda r: back,
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        initial = {"key": variable.key, "value": "" if variable.secret else variable.value,
                   "secret": variable.secret, "locked": variable.locked}  # fmt: skip
        return _page(
            request, "resources/env_var.html", org, context,
            item=variable, inherited=variable.org_id != org.pk, back=back,
            can_manage=policy.can(user, "envvar.manage", variable.org),
            edit_form=EnvVarForm(initial=initial, stored_secret=variable.secret, component=component),
        )  # fmt: skip

    return _handle(request, actions, show)


# -- components ----------------------------------------------------------------------------------------------------


@login_required
def components(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "component.view")
    user = request.user
    actions = {
        "create": Action(
            "component.manage", org, lambda d: services.create_component(actor=user, org=org, **d),
            "The component was created.", lambda c: reverse("component", args=[org.pk, c.pk]),
            form=ComponentForm, form_key="form",
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        return _page(
            request, "resources/components.html", org, context,
            rows=_effective_rows(request, Component, org, "component.view"),
            can_manage=policy.can(user, "component.manage", org), form=ComponentForm(),
        )  # fmt: skip

    return _handle(request, actions, show)


@sensitive_post_parameters("secret", "new_secret", "value")
@login_required
def component_detail(request: HttpRequest, org_id: UUID, item_id: UUID) -> HttpResponse:
    try:
        org = fetch_org(request, org_id, "component.view")
        component = _fetch_item(request, org, Component, item_id, "component.view")
    except (Http404, PermissionDenied):
        # A development-team member without a role here (a contractor) opens their component under its own org.
        component = _authorized(
            request.user,
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
        member = component.members.filter(pk=request.POST.get("member")).select_related("user").first()
        if member is None:
            raise NotFound()
        services.remove_component_member(actor=user, component=component, user=member.user)

    actions = {
        "edit": Action(
            "component.manage", component, lambda d: services.update_component(actor=user, component=component, **d),
            "Your changes were saved.", lambda c: here, form=ComponentForm, form_key="edit_form",
        ),
        "delete": Action(
            "component.manage", component, lambda d: services.delete_component(actor=user, component=component),
            f"Component {component.name} was deleted.", lambda r: reverse("components", args=[org.pk]),
        ),
        "add_member": Action(
            "component.manage", component,
            lambda d: services.add_component_member(actor=user, component=component, user=member_of(d)),
            "Added to the development team.", lambda m: here, form=UsernameForm, form_key="member_form",
            rename={"user": "username"},
        ),
        "remove_member": Action(
            "component.manage", component, remove, "Removed from the development team.", lambda r: here,
        ),
        "add_env": Action(
            "envvar.manage", component.org, lambda d: _env_create(user, None, component, d),
            "The variable was created.", lambda v: here,
            form=lambda *a: EnvVarForm(*a, component=True), form_key="env_form",
        ),
        "publish": Action(
            policy.COMPONENT_PUSH, component,
            lambda d: services.publish_version(actor=user, component=component, **d),
            "The version was published.", lambda v: here, form=VersionForm, form_key="version_form",
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        initial = {"name": component.name, "description": component.description,
                   "repository_url": component.repository_url, "locked": component.locked}  # fmt: skip
        return _page(
            request, "resources/component.html", org, context,
            item=component, inherited=component.org_id != org.pk,
            members=list(component.members.select_related("user")),
            versions=list(component.versions.select_related("published_by").defer("source")),
            variables=list(policy.visible(user, "envvar.view", component.env_vars.select_related("org"))),
            can_manage=policy.can(user, "component.manage", component),
            can_manage_env=policy.can(user, "envvar.manage", component.org),
            can_publish=policy.can(user, policy.COMPONENT_PUSH, component),
            edit_form=ComponentForm(initial=initial), member_form=UsernameForm(), version_form=VersionForm(),
            env_form=EnvVarForm(component=True),
        )  # fmt: skip

    return _handle(request, actions, show)


# -- the effective configuration -----------------------------------------------------------------------------------

SECTIONS = [
    (Hidden.Kind.CREDENTIAL, Credential, "Credentials", "credential"),
    (Hidden.Kind.LOOKUP_TABLE, LookupTable, "Lookup tables", "lookup-table"),
    (Hidden.Kind.ENV_VAR, EnvVar, "Environment variables", "env-var"),
    (Hidden.Kind.COMPONENT, Component, "Components", "component"),
]


@login_required
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
        hidden = Hidden.objects.filter(org=org, pk=_uuid(request.POST.get("hidden"))).select_related("org").first()
        if hidden is None:
            raise NotFound()
        if not policy.can(user, MANAGE_CAPABILITY[hidden.kind], org):
            raise Forbidden(DENIED)
        services.unhide(actor=user, hidden=hidden)

    actions = {
        "set": Action(
            "policy.manage", org,
            lambda d: services.set_setting(actor=user, org=org, key=d["key"], value=d["value"], locked=d["locked"]),
            "The setting was saved.", lambda s: here, form=SettingForm, form_key="setting_form",
        ),
        "reset": Action(
            "policy.manage", org,
            lambda d: services.reset_setting(actor=user, org=org, key=request.POST.get("key", "")),
            "The setting was reset: the inherited value applies.", lambda r: here,
        ),
        "hide": Action(
            hide_cap, org, lambda d: services.hide(actor=user, org=org, kind=d["type"], name=d["name"]),
            "The inherited item is hidden here.", lambda h: here,
            form=lambda *a: HideForm(*a, kinds=manages), form_key="hide_form",
        ),
        "unhide": Action(
            "org.view", org, unhide, "The item is inherited here again.", lambda r: here,
        ),
    }  # fmt: skip
    if request.method == "POST" and request.POST.get("action") == "unhide" and not manages:
        raise PermissionDenied(DENIED)

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
            setting_form=SettingForm(), hide_form=HideForm(kinds=manages),
        )  # fmt: skip

    return _handle(request, actions, show)


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value))
    except (TypeError, ValueError):
        return None


# -- tasks and runs ------------------------------------------------------------------------------------------------


def _task_kwargs(d: dict[str, Any]) -> dict[str, Any]:
    return {"name": d["name"], "description": d["description"], "steps": d["steps"] if d["steps"] is not None else []}


@login_required
def tasks(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    project = fetch_project(request, org_id, project_id, "task.view")
    user = request.user
    actions = {
        "create": Action(
            "task.create", project,
            lambda d: services.create_task(actor=user, project=project, **_task_kwargs(d)),
            "The task was created.", lambda t: reverse("task", args=[org_id, t.pk]),
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

    return _handle(request, actions, show)


def _fetch_task(request: HttpRequest, org_id: UUID, task_id: UUID) -> Task:
    queryset = Task.objects.filter(project__org_id=org_id, project__org__deleted_at__isnull=True).select_related(
        "project__org__tenant", "created_by"
    )
    return _authorized(request.user, "task.view", queryset, pk=task_id)


@login_required
def shared_with_me(request: HttpRequest) -> HttpResponse:
    """Tasks shared with the user or a team of theirs, wherever they live (one query for the list)."""
    from django.shortcuts import render

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


@login_required
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

    actions = {
        "edit": Action(
            "task.edit", task, lambda d: services.update_task(actor=user, task=task, **_task_kwargs(d)),
            "Your changes were saved.", lambda t: here, form=TaskForm, form_key="edit_form",
        ),
        "delete": Action(
            "task.delete", task, lambda d: services.delete_task(actor=user, task=task),
            f"Task {task.name} was deleted.", lambda r: reverse("tasks", args=[org.pk, project.pk]),
        ),
        "run": Action(
            "task.run", task, lambda d: services.run_task(actor=user, task=task),
            "The run is queued.", lambda r: reverse("run", args=[org.pk, r.pk]),
        ),
        "share": Action(
            "task.share", task, share, "The task was shared.", lambda s: here,
            form=lambda *a: ShareForm(*a, org=org, viewer=user), form_key="share_form", rename={"user": "username"},
        ),
        "unshare": Action(
            "task.share", task,
            lambda d: services.unshare_task(actor=user, task=task, share_id=_uuid(request.POST.get("share"))),
            "The share was removed.", lambda r: here,
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        caps = policy.capabilities(user, task)
        initial = {"name": task.name, "description": task.description, "steps": task.steps}
        return _page(
            request, "resources/task.html", org, context,
            task=task, project=project, task_caps=caps,
            steps_json=json.dumps(task.steps, indent=2),
            runs=list(task.runs.select_related("requested_by")[:50]),
            shares=services.shares_of(task) if "task.share" in caps else [],
            edit_form=TaskForm(initial=initial), share_form=ShareForm(org=org, viewer=user), active=Run.ACTIVE,
        )  # fmt: skip

    return _handle(request, actions, show)


@login_required
def run_detail(request: HttpRequest, org_id: UUID, run_id: UUID) -> HttpResponse:
    queryset = Run.objects.filter(
        task__project__org_id=org_id, task__project__org__deleted_at__isnull=True
    ).select_related("task__project__org__tenant", "requested_by", "stopped_by")
    run = _authorized(request.user, "task.view", queryset, pk=run_id)
    org, user = run.task.project.org, request.user
    here = reverse("run", args=[org.pk, run.pk])
    actions = {
        "stop": Action(
            "task.run",
            run,
            lambda d: services.stop_run(actor=user, run=run),
            "The run was stopped.",
            lambda r: here,
        ),
    }

    def show(context: dict[str, Any]) -> HttpResponse:
        return _page(
            request, "resources/run.html", org, context,
            run=run, task=run.task, lines=list(run.log_lines.all()[:5000]),
            can_run=policy.can(user, "task.run", run), is_active=run.status in Run.ACTIVE,
        )  # fmt: skip

    return _handle(request, actions, show)
