"""The audit log's read side in the console (issue #11 §4): the filters (a Django form: a bad date is a form error),
the query they make, and each event's changes as lines a person reads ("name: Old → New"), with the ids the
services recorded (a parent org, the tenants a runtime is offered to …) shown by name.

Names are resolved per page, not per row: ``describe`` collects the ids of every event of the page, then asks each
model once (``pk__in``), always inside the viewer's tenant (an id of another tenant stays an id: the names of other
tenants are not this log's to tell)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from django import forms
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet
from django.utils.dateparse import parse_datetime

from access import selectors, vocabulary
from access.models import AuditEvent, Role, Team
from orgs.models import Organization, Project, Tenant
from runtimes.models import Runtime

DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATE_ERROR = "Use a date (2026-11-01) or an ISO 8601 date-time (2026-11-01T09:30:00Z)."
ORG_CHOICES_MAX = 300  # organizations the "Organization" menu lists; deeper ones are still accepted by id


# -- filters -------------------------------------------------------------------------------------------------------


def parse_moment(value: str, *, end_of_day: bool = False) -> datetime:
    """An ISO 8601 date or date-time, in UTC (a naive one is UTC); a date alone is its midnight, or the next one
    when ``end_of_day`` (an "until 2026-11-01" includes that day). ValidationError when it is no such thing."""
    text = value.strip()
    try:
        moment = parse_datetime(text)  # None when malformed; ValueError when well-formed but impossible (month 13)
        if moment is not None:
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
            if end_of_day and DATE_ONLY.match(text):
                moment += timedelta(days=1)
    except (ValueError, OverflowError):
        moment = None
    if moment is None:
        raise ValidationError(DATE_ERROR, code="invalid")
    return moment


def target_types() -> list[tuple[str, str]]:
    """The kinds of object an event may be about (``target_type`` is a model's label), by their names in words."""
    wanted = ("access", "orgs", "resources", "runtimes", "identity", "twofactor")
    types = [
        (model._meta.label_lower, str(model._meta.verbose_name).capitalize())
        for model in apps.get_models()
        if model._meta.app_label in wanted and not model._meta.auto_created
    ]
    return [("", "Any"), *sorted(types, key=lambda pair: pair[1])]


def target_label(target_type: str) -> str:
    """``orgs.organization`` → "Organization"; an unknown label as it is."""
    try:
        return str(apps.get_model(target_type)._meta.verbose_name).capitalize()
    except (LookupError, ValueError):
        return target_type


def org_in_subtree(org: Organization, pk: UUID) -> Organization | None:
    """The organization ``pk`` when it lies in ``org``'s subtree (``org`` included), else None: the scope the audit
    filters of the console and the API accept."""
    return Organization.objects.filter(org.descendants_q(), pk=pk).first()


class AuditFilterForm(forms.Form):
    """The audit page's filters (query parameters). Each one given narrows the list; ``org`` (an organization of the
    page's subtree) with ``descendants`` unticked keeps the events of that organization alone."""

    q = forms.CharField(required=False, max_length=100, label="Search", help_text="Actor, action or target name.")
    actor = forms.CharField(required=False, max_length=150, help_text="A username, exactly.")
    action = forms.CharField(required=False, max_length=64, help_text="org.create, or a prefix ending in “.”: org.")
    since = forms.CharField(required=False, max_length=40, help_text="2026-11-01 or 2026-11-01T09:30:00Z (UTC).")
    until = forms.CharField(required=False, max_length=40, help_text="A date includes that whole day.")
    org = forms.CharField(required=False, max_length=36, label="Organization")
    descendants = forms.BooleanField(required=False, label="Include sub-organizations")
    target_type = forms.ChoiceField(required=False, label="Target type", choices=target_types)
    target = forms.CharField(required=False, max_length=200, help_text="An id, or part of the target's name.")

    def __init__(self, *args: Any, org: Organization, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.page_org = org

    def clean_since(self) -> datetime | None:
        value = self.cleaned_data.get("since", "")
        return parse_moment(value) if value else None

    def clean_until(self) -> datetime | None:
        value = self.cleaned_data.get("until", "")
        return parse_moment(value, end_of_day=True) if value else None

    def clean_org(self) -> Organization:
        value = self.cleaned_data.get("org", "")
        if not value:
            return self.page_org
        try:
            found = org_in_subtree(self.page_org, UUID(value))
        except ValueError:
            found = None
        if found is None:
            raise ValidationError("Choose an organization of this subtree.", code="invalid")
        return found

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and since >= until:
            self.add_error("until", "“Until” must come after “since”.")
        return data


FILTER_NAMES = frozenset(AuditFilterForm.base_fields)
MORE_FILTERS = ("actor", "until", "org", "target_type", "target")  # behind "More filters" on the page


def more_filters(form: AuditFilterForm, org: Organization) -> bool:
    """Whether the page opens its "More filters" box: one of them is set (or wrong), or the sub-organizations are
    left out."""
    if not form.is_bound:
        return False
    if any(form.errors.get(name) for name in MORE_FILTERS):
        return True
    given = {name: form.data.get(name, "") for name in MORE_FILTERS}
    if given["org"] in ("", str(org.pk)):
        given["org"] = ""
    return any(given.values()) or not form.data.get("descendants")


def filter_form(org: Organization, params: Mapping[str, Any]) -> AuditFilterForm:
    """The form the page's query parameters make: unbound when none is a filter (the whole log, sub-organizations
    included); bound otherwise, where an unticked ``descendants`` means this organization alone."""
    given = {name: params.get(name, "") for name in FILTER_NAMES if params.get(name, "") != ""}
    if not given:
        return AuditFilterForm(org=org, initial={"descendants": True, "org": str(org.pk)})
    data = dict(given)
    if "org" not in data:  # a filter link without the scope fields (the API's names): the whole subtree
        data["descendants"] = "on"
    return AuditFilterForm(data, org=org)


def filtered_events(org: Organization, data: Mapping[str, Any]) -> QuerySet[AuditEvent]:
    """The events of the page's ``org`` that the cleaned filters ``data`` keep, newest first."""
    scope: Organization = data.get("org") or org
    if data.get("descendants", True):
        events = selectors.audit_events(scope)
    else:
        condition = Q(org=scope)
        if scope.is_root:
            condition |= Q(tenant_id=scope.tenant_id, org__isnull=True)
        events = AuditEvent.objects.filter(condition).select_related("org").order_by("-created_at")
    if data.get("actor"):
        events = events.filter(actor_name__iexact=data["actor"])
    action = data.get("action") or ""
    if action:
        events = events.filter(action__startswith=action) if action.endswith(".") else events.filter(action=action)
    if data.get("since"):
        events = events.filter(created_at__gte=data["since"])
    if data.get("until"):
        events = events.filter(created_at__lt=data["until"])
    if data.get("target_type"):
        events = events.filter(target_type=data["target_type"])
    target = (data.get("target") or "").strip()
    if target:
        events = events.filter(Q(target_id=target) | Q(target_name__icontains=target))
    q = (data.get("q") or "").strip()
    if q:
        events = events.filter(Q(actor_name__icontains=q) | Q(action__icontains=q) | Q(target_name__icontains=q))
    return events


# -- changes in words ----------------------------------------------------------------------------------------------

# The keys whose values the services record as ids (a string, or a list of them), and the model they name. Any other
# value is shown as recorded (the services record names, keys and counts).
ID_KEYS: dict[str, type[Model]] = {
    "parent": Organization,
    "org": Organization,
    "organization": Organization,
    "tenant": Tenant,
    "tenants": Tenant,
    "project": Project,
    "user": get_user_model(),
    "team": Team,
    "role": Role,
    "runtime": Runtime,
}

# Verbs whose events record what changed as {field: [old, new]} (config.concurrency.save_changes and its kin).
DIFF_VERBS = frozenset({"update", "move", "configured", "enforced", "admin_change", "set"})
# Keys that hold a plain list even in those events (names, not an old and a new value).
PLAIN_LISTS = frozenset({"secret_erased", "secret_fields_set", "secret_fields_removed", "group_roles", "tenants"})


@dataclass(frozen=True)
class Change:
    """One line of an event's changes: ``field`` (in words), and either ``old`` → ``new`` or ``value``."""

    field: str
    value: str = ""
    old: str | None = None
    new: str | None = None

    @property
    def is_diff(self) -> bool:
        return self.old is not None

    def __str__(self) -> str:
        return f"{self.field}: {self.old} → {self.new}" if self.is_diff else f"{self.field}: {self.value}"


@dataclass(frozen=True)
class Row:
    """An event as the page shows it."""

    event: AuditEvent
    changes: list[Change]
    target_label: str

    def changes_text(self) -> str:
        return "; ".join(str(change) for change in self.changes)


def _as_uuid(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) != 36:
        return None
    try:
        return str(UUID(value))
    except ValueError:
        return None


def _ids_in(value: Any) -> Iterable[str]:
    if isinstance(value, list):
        for item in value:
            yield from _ids_in(item)
    elif (found := _as_uuid(value)) is not None:
        yield found


def _tenant_scope(model: type[Model], tenant_id: Any) -> Q:
    """What of ``model`` the viewer's tenant may name."""
    if model is Tenant:
        return Q(pk=tenant_id)
    if model is Organization or model is Role:
        return Q(tenant_id=tenant_id)
    if model is Project or model is Team:
        return Q(org__tenant_id=tenant_id)
    if model is Runtime:
        return Q(org__tenant_id=tenant_id) | Q(org__isnull=True)
    return Q(tenant_memberships__tenant_id=tenant_id)  # people


def _name_of(obj: Any) -> str:
    if isinstance(obj, get_user_model()):
        return str(obj.get_username())
    return str(getattr(obj, "name", obj))


def resolve_names(events: Iterable[AuditEvent], tenant_id: Any) -> dict[str, str]:
    """{id: name} for the ids the events' changes hold: one query per model named, whatever the number of events."""
    wanted: dict[type[Model], set[str]] = defaultdict(set)
    for event in events:
        for key, value in (event.changes or {}).items():
            model = ID_KEYS.get(key)
            if model is not None:
                wanted[model].update(_ids_in(value))
    names: dict[str, str] = {}
    for model, ids in wanted.items():
        for obj in model._default_manager.filter(_tenant_scope(model, tenant_id), pk__in=ids).distinct():
            names[str(obj.pk)] = _name_of(obj)
    return names


def _words(key: str) -> str:
    return key.replace("_", " ").capitalize()


def show_value(value: Any, names: Mapping[str, str]) -> str:
    """A recorded value as text: ids by name, lists joined, yes/no, "—" for nothing."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(show_value(item, names) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{_words(str(k))} {show_value(v, names)}" for k, v in value.items())
    uuid = _as_uuid(value)
    if uuid is not None:
        return names.get(uuid, str(value))
    if isinstance(value, str) and value in vocabulary.VOCABULARY:
        return vocabulary.label(value)  # a capability, in the words the console uses for it everywhere
    return str(value)


def _list_diff(old: list[Any], new: list[Any], names: Mapping[str, str]) -> str:
    added = [show_value(v, names) for v in new if v not in old]
    removed = [show_value(v, names) for v in old if v not in new]
    parts = ([f"added {', '.join(added)}"] if added else []) + ([f"removed {', '.join(removed)}"] if removed else [])
    return "; ".join(parts) or "reordered"


def changes_of(event: AuditEvent, names: Mapping[str, str]) -> list[Change]:
    """The event's changes, one line per field, ``old → new`` where the service recorded both."""
    verb = event.action.rsplit(".", 1)[-1]
    lines = []
    changes = event.changes if isinstance(event.changes, dict) else {"changes": event.changes}
    for key, value in changes.items():
        label = _words(key)
        is_pair = isinstance(value, list) and len(value) == 2 and verb in DIFF_VERBS and key not in PLAIN_LISTS
        if is_pair and isinstance(value[0], list) and isinstance(value[1], list):
            lines.append(Change(field=label, value=_list_diff(value[0], value[1], names)))
        elif is_pair:
            lines.append(Change(field=label, old=show_value(value[0], names), new=show_value(value[1], names)))
        else:
            lines.append(Change(field=label, value=show_value(value, names)))
    return lines


def describe(events: Iterable[AuditEvent], tenant_id: Any) -> list[Row]:
    """The rows of a page of events: their changes in words, ids by name (one query per model named)."""
    events = list(events)
    names = resolve_names(events, tenant_id)
    return [Row(event=e, changes=changes_of(e, names), target_label=target_label(e.target_type)) for e in events]


def org_choices(org: Organization) -> list[tuple[str, str]]:
    """The organizations of ``org``'s subtree for the filter's menu (indented by depth, the first
    ORG_CHOICES_MAX in tree order): one query."""
    subtree = Organization.objects.filter(tree_id=org.tree_id, lft__gte=org.lft, lft__lte=org.rght).order_by("lft")
    return [
        (str(o.pk), "\u00a0\u00a0" * (o.level - org.level) + o.name + (" (deleted)" if o.deleted_at else ""))
        for o in subtree.only("pk", "name", "level", "deleted_at")[:ORG_CHOICES_MAX]
    ]
