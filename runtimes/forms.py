"""Console forms of runtimes, and the task form's runtime field (a choice among the runtimes a task of the org may
name: its effective list within the effective ``allowed_runtimes``, as the editor sees it)."""

from __future__ import annotations

from typing import Any

from django import forms

from config.console import EditForm
from orgs.models import Organization
from runtimes.models import Runtime
from runtimes.placement import allowed_rows
from runtimes.services import clean_labels


class RuntimeForm(forms.Form):
    """Register a local runtime (the service checks the name, labels and inheritance rules)."""

    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    labels = forms.CharField(
        required=False, max_length=1100, help_text="Short labels separated by commas, e.g. eu, gpu."
    )
    region = forms.CharField(required=False, max_length=50)
    sovereign = forms.BooleanField(
        required=False,
        help_text="Runs on it send Canopy only metadata (statuses, timings, counts), never payloads or log bodies.",
    )
    locked = forms.BooleanField(required=False, help_text="Organizations below may neither override nor hide it.")

    def clean_labels(self) -> list[str]:
        try:
            return clean_labels(self.cleaned_data.get("labels", ""))
        except forms.ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None


class RuntimeEditForm(RuntimeForm, EditForm):
    """The detail page's edit form, with the version the runtime had when the page was opened."""


class HideRuntimeForm(forms.Form):
    name = forms.CharField(max_length=100)


def runtime_choices(org: Organization, viewer: Any, current: Runtime | None = None) -> list[tuple[str, str]]:
    """The task form's runtime choices: the default first, then each runtime a task of ``org`` may name (``current``
    kept when it is no longer allowed, so the form shows what the task has: its runs are refused until it changes)."""
    choices = [("", "Default (the org's default runtime, else the platform's)")]
    rows = allowed_rows(org, viewer)
    for row in rows:
        choices.append((str(row.runtime.pk), f"{row.runtime.name} ({row.source_label}, {row.status})"))
    if current is not None and all(str(current.pk) != value for value, _ in choices):
        choices.append((str(current.pk), f"{current.name} (not allowed here)"))
    return choices


class TaskRuntimeFields(forms.Form):
    """The runtime part of the task form (resources/views.py TaskForm mixes it in): ``runtime`` cleans to a Runtime
    or None; whether it is allowed is the service's decision (runtimes.placement.check_task_runtime)."""

    runtime = forms.ChoiceField(required=False, choices=[], help_text="Where its runs go. Empty: the default.")
    retry_on_lost = forms.BooleanField(
        required=False,
        label="Retry when the runtime is lost",
        help_text="Safe to run again: a run whose runtime was lost mid-run is queued once more instead of failing.",
    )

    def __init__(self, *args: Any, org: Organization, viewer: Any, current: Runtime | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        field = self.fields["runtime"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = runtime_choices(org, viewer, current)

    def clean_runtime(self) -> Runtime | None:
        value = self.cleaned_data.get("runtime")
        if not value:
            return None
        runtime = Runtime.objects.filter(pk=value).select_related("org").first()
        if runtime is None:
            raise forms.ValidationError("No such runtime.")
        return runtime
