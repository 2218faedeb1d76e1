"""The console's shared-resource pages (/o/<org-uuid>/…): the declared kinds (credentials, lookup tables,
environment variables, components, and any kind registered later), the effective configuration, and the tasks and
runs of projects.

The declared kinds share one list view and one detail view (``declared_list``, ``declared_detail``) and two
templates (resources/declared_list.html, declared_detail.html), driven by the kind's registry entry (labels, URL
names, view and manage capabilities: config/kinds.py) and its console form (``Faces.form``, resources/forms.py);
resources/urls.py generates their URL patterns from the registry. What a kind adds (secret fields, rows and CSV, a
development team and versions, a secret value) is its ``Extras``: hooks, extra writes and templates that extend the
generic ones. Writes go through ``resources.services.declarations.services_for``: the kind's registered services (its
faces), else the default declaration services.

Like every console view: fetch and authorize through config.console (404 when the org or object is not visible,
403 when it is visible but the capability is missing), write through resources.services only with
config.console.dispatch, which answers every refusal the same way (field errors 400, Conflict and Stale 409, …).
Edit forms and delete buttons carry the version they were opened at. A refused request changes nothing.
Secret values are never rendered: secret inputs are empty, even on a re-display.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
from config import kinds
from config.console import (
    STAGED_FOR,
    Confirm,
    Extras,
    Undo,
    Write,
    console_view,
    dispatch,
    error_page,
    extras_of,
    fetch,
    fetch_org,
    fetch_project,
    goes_with,
    opened,
    parse_uuid,
    register_extras,
    render_org_page,
    require,
    stage,
    take_staged,
    without_version,
)
from config.errors import Forbidden, NotFound
from config.kinds import Kind
from config.listing import Listing, paginate, search, search_rows, search_term
from governance.impact.settings_changes import apply_setting, is_new_lock, preview_setting
from orgs.models import Organization
from resources import services, step_editor
from resources.forms import (
    CredentialEditForm,
    EnvVarForm,
    ImportForm,
    UsernameForm,
    VersionForm,
    edit_form_of,
    pairs_text,
    rows_text,
)
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
    hideable_kinds,
)
from resources.services.declarations import services_for
from resources.services.resources import CREDENTIAL_KINDS, MAX_CSV_BYTES
from resources.services.tasks import SHARE_PERMISSIONS
from resources.settings_registry import REGISTRY, effective_settings
from resources.task_form import TaskEditForm, TaskForm

MAX_ROWS_SHOWN = 1000

# -- forms of the pages that are not declared kinds -------------------------------------------------------------


class SettingForm(forms.Form):
    key = forms.ChoiceField(choices=[(key, spec.label) for key, spec in REGISTRY.items()], label="Setting")
    value = forms.CharField(
        required=False,
        max_length=13_000,
        help_text="true/false, a number, a text, domains separated by commas, or for require_2fa "
        "“true, 24” (required after 24 hours of grace).",
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
        labels = dict(hideable_kinds())  # every registered hideable kind, not only this app's
        self.fields["type"].choices = [(k, labels[k]) for k in kinds if k in labels]


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


# -- the declared kinds: one list view and one detail view, driven by the registry ---------------------------------
#
# A declared kind (config/kinds.py, Rule.DECLARED) with console URL names and a console form (Faces.form, from its
# faces.py) gets both pages from here: resources/urls.py generates their URL patterns from the registry. The list is
# the org's effective list (source, inherited, locked, overrides) with the create form; the detail page edits (with
# the version the form was opened at) and deletes (with the version). What a kind adds beyond its form (a
# credential's secret fields, a table's rows and CSV import, a component's team and versions, a variable's secret
# value) is its ``Extras`` below; a plain kind needs none.


def _create_form(kind: Kind) -> Callable[..., forms.Form]:
    form = kinds.faces_of(kind.model).form
    if form is None:
        raise TypeError(f"{kind.key} has no console form (kinds.console_form).")
    return form


def _initial(form: Callable[..., forms.Form], item: Any) -> dict[str, Any]:
    """The edit form opened on ``item``: each of the form's fields that the object has, as the object has it."""
    names = getattr(form, "base_fields", {})
    return opened(item, **{name: getattr(item, name) for name in names if name != "version" and hasattr(item, name)})


def declared_list(request: HttpRequest, org_id: UUID, *, kind: Kind) -> HttpResponse:
    """The org's effective list of ``kind`` (declared here or inherited, nearest wins, hides applied) and, for who
    manages it here, the create form."""
    extras = extras_of(kind.model)
    org = fetch_org(request, org_id, kind.view)
    user = request.user
    form = _create_form(kind)

    def create(d: dict[str, Any]) -> Any:
        return services_for(kind.model).create(actor=user, org=org, **extras.create_fields(d))

    def then(item: Any) -> str:
        if extras.created_then == "list":
            return reverse(kind.console_list, args=[org.pk])
        return reverse(kind.console_detail, args=[org.pk, item.pk])

    writes = {
        "create": Write(
            capability=kind.manage, on=org, run=create, done=f"The {_noun(kind, extras).lower()} was created.",
            then=then, form=form, form_key="form", rename=extras.create_rename,
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        queryset = extras.list_queryset(kind) if extras.list_queryset else kind.inheritable_queryset()
        listing = _listed(request, _effective_rows(request, kind.model, org, kind.view, queryset))
        return _page(
            request, extras.list_template, org, context,
            kind=kind, rows=listing.page, listing=listing,
            can_manage=policy.can(user, kind.manage, org), form=form(),
            **(extras.list_context() if extras.list_context else {}),
        )  # fmt: skip

    return dispatch(request, writes, show)


def _listed(request: HttpRequest, rows: list[dict[str, Any]]) -> Listing:
    """A page of an effective list, searched by ``?q=`` in the name and where it is declared."""
    found = search_rows(rows, search_term(request), lambda row: (row["item"].declared_name, row["item"].org.name))
    return paginate(request, found)


def _noun(kind: Kind, extras: Extras) -> str:
    return extras.noun or kind.label.capitalize()


def declared_detail(request: HttpRequest, org_id: UUID, item_id: UUID, *, kind: Kind) -> HttpResponse:
    """One object of ``kind`` seen from the org: edit (the hidden version refuses a stale form) and delete (with the
    version), and the kind's own writes."""
    extras = extras_of(kind.model)
    if extras.fetch is not None:
        org, item = extras.fetch(request, org_id, item_id, kind)
    else:
        org = fetch_org(request, org_id, kind.view)
        queryset = extras.detail_queryset(kind) if extras.detail_queryset else None
        item = _fetch_item(request, org, kind.model, item_id, kind.view, queryset)
    user = request.user
    here = reverse(kind.console_detail, args=[org.pk, item.pk])
    back = extras.back(org, item) if extras.back else reverse(kind.console_list, args=[org.pk])
    edit_form = extras.edit_form(item) if extras.edit_form else edit_form_of(_create_form(kind))
    bound: dict[str, forms.Form] = {}

    def edit_factory(*args: Any) -> forms.Form:
        bound["form"] = edit_form(*args)
        return bound["form"]

    def update(d: dict[str, Any]) -> Any:
        fields = extras.update_fields(item, d, bound["form"]) if extras.update_fields else without_version(d)
        return services_for(kind.model).update(actor=user, item=item, version=d["version"], **fields)

    writes = {
        "edit": Write(
            capability=kind.manage, on=extras.manage_on(item), run=update, done="Your changes were saved.",
            then=lambda changed: reverse(kind.console_detail, args=[org.pk, changed.pk]), form=edit_factory,
            form_key="edit_form", rename=extras.edit_rename,
        ),
        "delete": Write(
            capability=kind.manage, on=extras.manage_on(item),
            run=lambda d: services_for(kind.model).delete(actor=user, item=item, version=d["version"]),
            done=f"{_noun(kind, extras)} {item.declared_name} was deleted.", then=lambda r: back,
            confirm=lambda d: Confirm(
                title=f"Delete the {_noun(kind, extras).lower()} {item.declared_name}?", goes_with=goes_with(item),
                button=f"Delete {_noun(kind, extras).lower()}", cancel=here,
                note="This cannot be undone. What uses it by name (tasks, components below) no longer finds it, "
                "or finds the one an org above declares.",
            ),
        ),
        **(extras.detail_writes(request, org, item, here) if extras.detail_writes else {}),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        initial = extras.initial(item) if extras.initial else _initial(edit_form, item)
        return _page(
            request, extras.detail_template, org, context,
            kind=kind, item=item, inherited=item.org_id != org.pk, back=back,
            can_manage=policy.can(user, kind.manage, extras.manage_on(item)), edit_form=edit_form(initial=initial),
            **(extras.detail_context(request, org, item) if extras.detail_context else {}),
        )  # fmt: skip

    return dispatch(request, writes, show)


SENSITIVE = ("secret", "new_secret", "value")  # never in an error report, whatever kind posts them
_VIEWS: dict[type, tuple[Kind, Callable[..., HttpResponse], Callable[..., HttpResponse]]] = {}


def declared_views(kind: Kind) -> tuple[Callable[..., HttpResponse], Callable[..., HttpResponse]]:
    """The list and detail views of ``kind`` (made once per entry, so the URL patterns and the names below are the
    same functions), each a console view whose secret-bearing POST parameters stay out of error reports."""
    made = _VIEWS.get(kind.model)
    if made is None or made[0] is not kind:  # (a kind registered again, in tests, gets views of its new entry)

        def list_view(request: HttpRequest, org_id: UUID) -> HttpResponse:
            return declared_list(request, org_id, kind=kind)

        def detail_view(request: HttpRequest, org_id: UUID, item_id: UUID) -> HttpResponse:
            return declared_detail(request, org_id, item_id, kind=kind)

        list_view.__name__ = list_view.__qualname__ = kind.console_list.replace("-", "_")
        detail_view.__name__ = detail_view.__qualname__ = kind.console_detail.replace("-", "_") + "_detail"
        made = (
            kind,
            sensitive_post_parameters(*SENSITIVE)(console_view(list_view)),
            sensitive_post_parameters(*SENSITIVE)(console_view(detail_view)),
        )
        _VIEWS[kind.model] = made
    return made[1], made[2]


def console_kinds() -> list[Kind]:
    """The declared kinds that have console pages: URL names for both and a console form."""
    return [
        kind
        for kind in kinds.registry.declared()
        if kind.console_list and kind.console_detail and kinds.faces_of(kind.model).form is not None
    ]


# -- credentials: secret fields, and the fields each credential kind takes -----------------------------------------


def _credential_edit_form(credential: Credential) -> Callable[..., forms.Form]:
    return lambda *args, **kwargs: CredentialEditForm(*args, secret_names=credential.secret_names, **kwargs)


def _credential_update(credential: Credential, d: dict[str, Any], form: forms.Form) -> dict[str, Any]:
    """The edit's fields, and the secret fields it sets or removes (None: no change to the secret)."""
    assert isinstance(form, CredentialEditForm)
    changes = {"secret": form.secret_changes(), "name": d["name"], "description": d["description"],
               "fields": d["field_values"], "locked": d["locked"]}  # fmt: skip
    if d.get("source"):  # a form posted without it keeps the credential's source
        changes["source"] = d["source"]
    return changes


register_extras(Credential, Extras(
    list_template="resources/credentials.html", detail_template="resources/credential.html",
    list_context=lambda: {"kinds": CREDENTIAL_KINDS},
    create_fields=lambda d: {"name": d["name"], "kind": d["kind"], "description": d["description"],
                             "fields": d["field_values"], "secret": d["secret"], "locked": d["locked"],
                             "source": d.get("source") or Credential.Source.CANOPY},
    create_rename={"fields": "field_values"},
    edit_form=_credential_edit_form,
    update_fields=_credential_update,
    edit_rename={"fields": "field_values", "secret": "new_secret"},
    initial=lambda c: opened(c, name=c.name, description=c.description, field_values=pairs_text(c.fields),
                             locked=c.locked, source=c.source),
))  # fmt: skip


# -- lookup tables: rows as CSV lines, an import and an export ----------------------------------------------------


def _row_counts(kind: Kind) -> Any:
    count = LookupRow.objects.filter(table=OuterRef("pk")).values("table").annotate(n=Count("pk")).values("n")
    return kind.inheritable_queryset().annotate(row_count=Subquery(count))


def _table_edit(table: LookupTable, d: dict[str, Any], form: forms.Form) -> dict[str, Any]:
    """A table too large to edit on the page keeps its rows when the (then empty) rows box is left empty."""
    if not d["rows"] and table.rows.count() > MAX_ROWS_SHOWN:
        return {k: v for k, v in d.items() if k not in ("rows", "version")}
    return without_version(d)


def _table_initial(table: LookupTable) -> dict[str, Any]:
    total = table.rows.count()
    return opened(table, name=table.name, description=table.description, locked=table.locked,
                  rows=rows_text(table) if total <= MAX_ROWS_SHOWN else "")  # fmt: skip


def _table_writes(request: HttpRequest, org: Organization, table: LookupTable, here: str) -> dict[str, Write]:
    """The CSV import. Merging only adds and changes rows: done at once. Replacing every row asks first (#11 §2):
    the file is checked as the import would check it, held server-side (config.console.stage) and the question names
    what it does; the confirmed POST carries the held file's token, taken once, and the version it was counted at."""
    bound_to = f"lookup-import:{table.pk}"

    def ask(d: dict[str, Any]) -> Confirm | None:
        if d["mode"] != "replace":
            return None
        content = _upload(d["file"])
        plan = services.plan_lookup_import(
            actor=request.user, table=table, content=content, replace=True, version=d["version"]
        )
        token = stage(request, bound_to, {"content": content, "version": plan.version})
        return Confirm(
            title=f"Replace every row of the lookup table {table.name}?",
            goes_with=[
                f"the {_count(plan.rows_now, 'row')} it has now, replaced by the {_count(plan.rows_in_file, 'row')} "
                f"of {d['file'].name}",
                f"{_count(plan.added, 'key')} added, {_count(plan.changed, 'key')} with a new value, "
                f"{_count(plan.removed, 'key')} removed",
            ],
            note=f"This cannot be undone: export the CSV first to keep a copy. The file is held for "
            f"{STAGED_FOR // 60} minutes.",
            button="Replace rows", cancel=here,
            fields=[("action", "import"), ("mode", "replace"), ("version", plan.version), ("staged", token)],
        )  # fmt: skip

    def run(d: dict[str, Any]) -> int:
        if d["file"] is None:  # the confirmed replace of the held file (the form requires one otherwise)
            held = take_staged(request, bound_to, d["staged"])
            return services.import_lookup_csv(
                actor=request.user, table=table, content=held["content"], replace=True, version=held["version"]
            )
        return services.import_lookup_csv(
            actor=request.user, table=table, content=_upload(d["file"]), replace=d["mode"] == "replace",
            version=d["version"],
        )  # fmt: skip

    return {
        "import": Write(
            capability="lookup.manage", on=table, run=run, confirm=ask,
            done="The file was imported.", then=lambda n: here, form=ImportForm, form_key="import_form",
        ),
    }  # fmt: skip


def _upload(file: Any) -> bytes:
    """An uploaded file's content, one byte past the import's limit at most (the service refuses it then)."""
    file.seek(0)
    return file.read(MAX_CSV_BYTES + 1)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _table_context(request: HttpRequest, org: Organization, table: LookupTable) -> dict[str, Any]:
    return {
        "table_rows": list(table.rows.all()[:MAX_ROWS_SHOWN]), "total": table.rows.count(),
        "max_shown": MAX_ROWS_SHOWN, "import_form": ImportForm(initial=opened(table)),
    }  # fmt: skip


register_extras(LookupTable, Extras(
    list_template="resources/lookup_tables.html", detail_template="resources/lookup_table.html",
    list_queryset=_row_counts, update_fields=_table_edit, initial=_table_initial,
    detail_writes=_table_writes, detail_context=_table_context,
))  # fmt: skip


@console_view
def lookup_table_export(request: HttpRequest, org_id: UUID, item_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "lookup.view")
    table = _fetch_item(request, org, LookupTable, item_id, "lookup.view")
    response = HttpResponse(services.export_lookup_csv(table), content_type="text/csv; charset=utf-8")
    filename = "".join(c if c.isalnum() or c in "._-" else "_" for c in table.name)
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


# -- environment variables: a secret value never shown, a component's own variables -------------------------------


def _env_create(user: Any, org: Organization | None, component: Component | None, d: dict[str, Any]) -> EnvVar:
    return services.create_env_var(
        actor=user, org=org, component=component, key=d["key"], value=d["value"], secret=d["secret"],
        locked=d.get("locked", False),
    )  # fmt: skip


def _env_update(variable: EnvVar, d: dict[str, Any], form: forms.Form) -> dict[str, Any]:
    fields: dict[str, Any] = {"key": d["key"], "secret": d["secret"]}
    if variable.component_id is None:
        fields["locked"] = d["locked"]
    if d["value"] or not (variable.secret or d["secret"]):  # an empty value box keeps a secret value
        fields["value"] = d["value"]
    return fields


def _env_back(org: Organization, variable: EnvVar) -> str:
    if variable.component_id:
        return reverse("component", args=[org.pk, variable.component_id])
    return reverse("env-vars", args=[org.pk])


def _env_edit_form(variable: EnvVar) -> Callable[..., forms.Form]:
    form = edit_form_of(EnvVarForm)
    component = variable.component_id is not None
    return lambda *args, **kwargs: form(*args, stored_secret=variable.secret, component=component, **kwargs)


register_extras(EnvVar, Extras(
    list_template="resources/env_vars.html", detail_template="resources/env_var.html", noun="Variable",
    created_then="list",
    create_fields=lambda d: {"component": None, "key": d["key"], "value": d["value"], "secret": d["secret"],
                             "locked": d.get("locked", False)},
    detail_queryset=lambda kind: EnvVar.objects.select_related("component"),
    manage_on=lambda variable: variable.org, edit_form=_env_edit_form, update_fields=_env_update, back=_env_back,
    initial=lambda v: opened(v, key=v.key, value="" if v.secret else v.value, secret=v.secret, locked=v.locked),
))  # fmt: skip


# -- components: the development team, published versions, the component's own variables -------------------------


def _fetch_component(request: HttpRequest, org_id: UUID, item_id: UUID, kind: Kind) -> tuple[Organization, Any]:
    try:
        org = fetch_org(request, org_id, kind.view)
        return org, _fetch_item(request, org, Component, item_id, kind.view)
    except (NotFound, Forbidden):
        # A development-team member without a role here (a contractor) opens their component under its own org.
        component = fetch(
            request,
            kind.view,
            Component.objects.select_related("org__tenant").filter(org_id=org_id, org__deleted_at__isnull=True),
            pk=item_id,
        )
        return component.org, component


def _component_writes(request: HttpRequest, org: Organization, component: Component, here: str) -> dict[str, Write]:
    user = request.user
    users = get_user_model().objects

    def member_of(d: dict[str, Any]) -> Any:
        return users.filter(username=d["username"]).first()

    def team_member() -> Any:
        member = component.members.filter(pk=parse_uuid(request.POST.get("member"))).select_related("user").first()
        if member is None:
            raise NotFound()
        return member

    def remove(d: dict[str, Any]) -> str:
        member = team_member()
        services.remove_component_member(actor=user, component=component, user=member.user)
        return member.user.get_username()

    return {
        "add_member": Write(
            capability="component.manage", on=component,
            run=lambda d: services.add_component_member(actor=user, component=component, user=member_of(d)),
            done="Added to the development team.", then=lambda m: here, form=UsernameForm, form_key="member_form",
            rename={"user": "username"},
        ),
        "remove_member": Write(
            capability="component.manage", on=component, run=remove,
            done="Removed from the development team.", then=lambda r: here,
            confirm=lambda d: Confirm(
                title=f"Remove {team_member().user.username} from the development team of {component.name}?",
                button="Remove", cancel=here, goes_with=["their right to publish versions of it"],
                note="You can undo this right after.",
            ),
            undo=lambda username: Undo(here, {"action": "add_member", "username": username}),
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


def _component_context(request: HttpRequest, org: Organization, component: Component) -> dict[str, Any]:
    user = request.user
    return {
        "members": list(component.members.select_related("user")),
        "versions": list(component.versions.select_related("published_by").defer("source")),
        "variables": list(policy.visible(user, "envvar.view", component.env_vars.select_related("org"))),
        "can_manage_env": policy.can(user, "envvar.manage", component.org),
        "can_publish": policy.can(user, policy.COMPONENT_PUSH, component),
        "member_form": UsernameForm(), "version_form": VersionForm(), "env_form": EnvVarForm(component=True),
    }  # fmt: skip


register_extras(Component, Extras(
    list_template="resources/components.html", detail_template="resources/component.html",
    fetch=_fetch_component, detail_writes=_component_writes, detail_context=_component_context,
))  # fmt: skip

# The views by their former names (the URL patterns are generated from the registry in resources/urls.py).
credentials, credential_detail = declared_views(kinds.of(Credential))
lookup_tables, lookup_table_detail = declared_views(kinds.of(LookupTable))
env_vars, env_var_detail = declared_views(kinds.of(EnvVar))
components, component_detail = declared_views(kinds.of(Component))


# -- the effective configuration -----------------------------------------------------------------------------------


def hide_sections() -> list[Kind]:
    """The declared kinds the configuration page shows and hides: those with console pages and a hide kind, this
    app's in the order of ``Hidden.Kind`` (the page's order before the registry), then any other as registered."""
    order = {value: position for position, value in enumerate(Hidden.Kind.values)}
    hideable = [kind for kind in console_kinds() if kind.hidden_kind]
    return sorted(hideable, key=lambda kind: order.get(kind.hidden_kind, len(order)))


@console_view
def org_settings(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id)
    user = request.user
    here = reverse("org-settings", args=[org.pk])
    sections = hide_sections()
    manage_capability = {kind.hidden_kind: kind.manage for kind in sections}
    manages = [key for key, capability in manage_capability.items() if policy.can(user, capability, org)]
    # Hides: checked per kind (the policy's capability for that kind).
    # (a type the form will refuse: checked with one the user holds, so the refusal is the form's 400)
    fallback = manage_capability[manages[0]] if manages else "policy.manage"
    hide_cap = manage_capability.get(request.POST.get("type", ""), fallback)

    def unhide(d: dict[str, Any]) -> None:
        hidden = Hidden.objects.filter(org=org, pk=parse_uuid(request.POST.get("hidden"))).select_related("org").first()
        if hidden is None:
            raise NotFound()
        require(request, manage_capability.get(hidden.kind, "policy.manage"), org)
        services.unhide(actor=user, hidden=hidden)

    def set_setting(d: dict[str, Any]) -> Any:
        return apply_setting(
            actor=user, org=org, key=d["key"], value=d["value"], locked=d["locked"],
            version=d["versions"].get(d["key"], 0),
        )[0]  # fmt: skip

    def locking(d: dict[str, Any]) -> Confirm | None:
        """A new lock asks first, with its preview (the orgs below whose value changes, those it locks); a lock over
        values set below is refused here already, as the lock itself would be."""
        if not is_new_lock(org, d["key"], d["locked"]):
            return None
        impact = preview_setting(
            actor=user, org=org, key=d["key"], value=d["value"], locked=True, version=d["versions"].get(d["key"], 0)
        )
        return Confirm(
            title=f"{impact.change}?", button="Lock the setting", cancel=here, impact=impact,
            note="Organizations below can no longer change it until it is unlocked here.",
        )  # fmt: skip

    writes = {
        "set": Write(
            capability="policy.manage", on=org, run=set_setting, done="The setting was saved.", then=lambda s: here,
            form=SettingForm, form_key="setting_form", confirm=locking,
        ),
        "reset": Write(
            capability="policy.manage", on=org,
            run=lambda d: services.reset_setting(actor=user, org=org, key=request.POST.get("key", ""),
                                                 version=d["version"]),
            done="The setting was reset: the inherited value applies.", then=lambda r: here,
            confirm=lambda d: _resetting(org, request.POST.get("key", ""), here),
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
        shown = []
        hidden = services.hidden_here(org)
        for kind in sections:
            if not policy.can(user, kind.view, org):
                continue
            shown.append({
                "kind": kind.hidden_kind, "title": kind.label_plural.capitalize(), "url_name": kind.console_detail,
                "rows": _effective_rows(request, kind.model, org, kind.view, kind.inheritable_queryset()),
                "hidden": [h for h in hidden if h.kind == kind.hidden_kind],
                "can_manage": kind.hidden_kind in manages,
            })  # fmt: skip
        return _page(
            request, "resources/settings.html", org, context,
            settings_rows=effective_settings(org), sections=shown,
            can_manage=policy.can(user, "policy.manage", org), manages=manages,
            setting_form=SettingForm(initial={"versions": SettingForm.versions_of(org)}),
            hide_form=HideForm(kinds=manages),
        )  # fmt: skip

    return dispatch(request, writes, show)


# -- tasks and runs ------------------------------------------------------------------------------------------------


def _resetting(org: Organization, key: str, here: str) -> Confirm:
    """What resetting a setting set at ``org`` asks first: the value set here goes (and its lock on the orgs below);
    NotFound for a key not set here, as the service answers."""
    current = OrgSetting.objects.filter(org=org, key=key).first()
    if current is None or key not in REGISTRY:
        raise NotFound(f"“{key}” is not set in {org.name}.")
    value = json.dumps(current.value, ensure_ascii=False)
    return Confirm(
        title=f"Reset “{REGISTRY[key].label}” in {org.name}?",
        goes_with=[
            f"the value set here: {value}" + (", and its lock on the organizations below" if current.locked else "")
        ],
        note="The value inherited from above (or the default) applies again; set it here again to override it.",
        button="Reset the setting",
        cancel=here,
    )


def _unsharing(task: Task, request: HttpRequest, here: str) -> Confirm:
    """What removing one of ``task``'s shares asks first (NotFound for a share it does not have)."""
    share_id = parse_uuid(request.POST.get("share"))
    share = next((s for s in services.shares_of(task) if s["id"] == share_id), None)
    if share is None:
        raise NotFound("No such share.")
    holder = share["user"].get_username() if share["user"] else f"the team {share['team'].name}"
    return Confirm(
        title=f"Stop sharing {task.name} with {holder}?",
        button="Remove the share",
        cancel=here,
        goes_with=[f"their {share['permission']} access to this task"],
        note="Share it again to give it back.",
    )


def _task_kwargs(d: dict[str, Any], task: Task | None = None) -> dict[str, Any]:
    """The service's fields from the task form (resources.task_form: ``steps`` is always a list). An edit passes the
    steps only when they changed: saving a task's name never re-checks steps the editor did not touch (they name
    credentials the editor may not see, say)."""
    fields = {
        "name": d["name"], "description": d["description"], "steps": d["steps"], "runtime": d["runtime"],
        "retry_on_lost": d["retry_on_lost"],
    }  # fmt: skip
    if task is not None and d["steps"] == task.steps:
        del fields["steps"]
    return fields


def _editing(request: HttpRequest, writes: dict[str, Write], show: Callable[[dict[str, Any]], HttpResponse]) -> Any:
    """A task form's editor button (``editor=…``: add, remove, move a step, switch to JSON or back): the form shown
    again, changed as asked, and nothing saved. None when the POST is not one (dispatch saves it). The write's
    capability is checked first, as for a save: a button never shows a form to someone who may not save it."""
    command = request.POST.get("editor") if request.method == "POST" else None
    write = writes.get(request.POST.get("action", "")) if command is not None else None
    if write is None or not write.form_key:
        return None
    try:
        require(request, write.capability or "", write.on)
    except Forbidden as exc:
        return error_page(request, exc)
    form = write.form(request.POST, request.FILES)
    assert isinstance(form, TaskForm)
    status = form.apply_editor(str(command))
    response = show({write.form_key: form, "failed_action": request.POST.get("action", "")})
    response.status_code = status
    return response


@console_view
def tasks(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    project = fetch_project(request, org_id, project_id, "task.view")
    user = request.user
    writes = {
        "create": Write(
            capability="task.create", on=project,
            run=lambda d: services.create_task(actor=user, project=project, **_task_kwargs(d)),
            done="The task was created.", then=lambda t: reverse("task", args=[org_id, t.pk]),
            form=lambda *a: TaskForm(*a, org=project.org, viewer=user), form_key="form",
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        visible = policy.visible(user, "task.view", Task.objects.filter(project=project)).select_related("created_by")
        listing = paginate(request, search(visible, search_term(request), ["name", "description"]).order_by("name"))
        can_create = policy.can(user, "task.create", project)
        return _page(
            request, "resources/tasks.html", project.org, context,
            project=project, tasks=listing.page, listing=listing,
            can_create=can_create, form=TaskForm(org=project.org, viewer=user) if can_create else None,
        )  # fmt: skip

    return _editing(request, writes, show) or dispatch(request, writes, show)


def _fetch_task(request: HttpRequest, org_id: UUID, task_id: UUID) -> Task:
    queryset = Task.objects.filter(project__org_id=org_id, project__org__deleted_at__isnull=True).select_related(
        "project__org__tenant", "created_by", "runtime"
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
            run=lambda d: services.update_task(actor=user, task=task, version=d["version"], **_task_kwargs(d, task)),
            done="Your changes were saved.", then=lambda t: here, form_key="edit_form",
            form=lambda *a: TaskEditForm(*a, org=org, viewer=user, current=task.runtime),
        ),
        "delete": Write(
            capability="task.delete", on=task,
            run=lambda d: services.delete_task(actor=user, task=task, version=d["version"]),
            done=f"Task {task.name} was deleted.", then=lambda r: reverse("tasks", args=[org.pk, project.pk]),
            confirm=lambda d: Confirm(
                title=f"Delete the task {task.name}?", goes_with=goes_with(task), button="Delete task", cancel=here,
            ),
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
            done="The share was removed.", then=lambda r: here, confirm=lambda d: _unsharing(task, request, here),
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        caps = policy.capabilities(user, task)
        initial = opened(
            task, name=task.name, description=task.description,
            runtime=str(task.runtime_id) if task.runtime_id else "", retry_on_lost=task.retry_on_lost,
        )  # fmt: skip
        editable = "task.edit" in caps
        return _page(
            request, "resources/task.html", org, context,
            task=task, project=project, task_caps=caps,
            steps_json=json.dumps(task.steps, indent=2, ensure_ascii=False),
            steps=[step_editor.summary(step) for step in task.steps or []],
            runs=(runs := paginate(request, _searched_runs(request, task), param="runs")).page, runs_listing=runs,
            shares=services.shares_of(task) if "task.share" in caps else [],
            edit_form=TaskEditForm(initial=initial, org=org, viewer=user, current=task.runtime, steps=task.steps)
            if editable else None,
            share_form=ShareForm(org=org, viewer=user), active=Run.ACTIVE,
        )  # fmt: skip

    return _editing(request, writes, show) or dispatch(request, writes, show)


def _searched_runs(request: HttpRequest, task: Task) -> Any:
    """The task's runs, newest first, narrowed by ``?q=`` (a status, the requester's username or the runtime)."""
    runs = task.runs.select_related("requested_by").order_by("-created_at")
    return search(runs, search_term(request), ["status", "requested_by__username", "runtime_name"])


RUN_LOG_TAIL = 1000  # log lines a run page shows (the last ones); the API serves them all


def run_steps(run: Run) -> list[dict[str, Any]]:
    """The run's steps (as queued) beside their results (as the runtime reported them): one row per step."""
    results = {r.get("index"): r for r in run.step_results if isinstance(r, dict)}
    rows = []
    for index, step in enumerate(run.steps if isinstance(run.steps, list) else []):
        step = step if isinstance(step, dict) else {}
        result = results.get(index, {})
        rows.append({
            "index": index, "name": step.get("name") or "", "type": step.get("type") or "",
            "status": result.get("status") or "", "ms": result.get("ms"), "error": result.get("error") or "",
        })  # fmt: skip
    return rows


def run_runtime(user: Any, run: Run, org: Organization) -> dict[str, Any]:
    """What the page says about where the run runs: the name (kept when the runtime was deleted), the kind, and a
    link to the runtime's page only for who may see that runtime."""
    runtime = run.runtime
    out: dict[str, Any] = {"name": run.runtime_name or (runtime.name if runtime else ""), "kind": "", "url": ""}
    if runtime is not None:
        out["kind"] = runtime.get_kind_display()
        if policy.can(user, "runtime.view", runtime):  # a local one's page is at its org; a global one, here
            out["url"] = reverse("runtime", args=[runtime.org_id or org.pk, runtime.pk])
    return out


@console_view
def run_detail(request: HttpRequest, org_id: UUID, run_id: UUID) -> HttpResponse:
    """A run: where it runs, its attempt, status and times, per-step results and the tail of its log. While it is
    active, static/js/run-log.js polls the API (the run and its log lines after the last one shown) and appends
    lines without a reload; without JavaScript the page has a refresh link. A sovereign run's log is kept on its
    runtime: the page shows where, and only the levels and times Canopy has."""
    queryset = Run.objects.filter(
        task__project__org_id=org_id, task__project__org__deleted_at__isnull=True
    ).select_related("task__project__org__tenant", "requested_by", "stopped_by", "runtime")
    run = fetch(request, "task.view", queryset, pk=run_id)
    org, user = run.task.project.org, request.user
    here = reverse("run", args=[org.pk, run.pk])
    writes = {
        "stop": Write(
            capability="task.run", on=run, run=lambda d: services.stop_run(actor=user, run=run),
            done="The run was stopped.", then=lambda r: here,
            confirm=lambda d: Confirm(
                title=f"Stop this run of {run.task.name}?",
                button="Stop the run", note="A queued run stops at once; a running one is asked to stop "
                "after the step it is on. Run the task again to start over.",
            ),
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        tail = list(run.log_lines.order_by("-seq")[: RUN_LOG_TAIL + 1])
        # Workload identity tokens the run's agent got (workload.models.IssuedToken): counted only for runs whose
        # steps can ask for one, so other runs' pages cost no query more.
        asks = any(isinstance(step, dict) and step.get("identity") for step in run.steps or [])
        identity_tokens = run.identity_tokens.count() if asks else None
        return _page(
            request, "resources/run.html", org, context,
            run=run, task=run.task, lines=tail[:RUN_LOG_TAIL][::-1], truncated=len(tail) > RUN_LOG_TAIL,
            last_seq=tail[0].seq if tail else 0, steps=run_steps(run), runtime=run_runtime(user, run, org),
            can_run=policy.can(user, "task.run", run), is_active=run.status in Run.ACTIVE,
            can_stop=run.status in Run.ACTIVE and run.status != Run.Status.STOP_REQUESTED,
            here=here, identity_tokens=identity_tokens,
        )  # fmt: skip

    return dispatch(request, writes, show)
