"""The console forms of the declared kinds (config.kinds.Faces.form): each kind's own fields only, registered with
``kinds.console_form``. The generic console views (resources/views.py) add the hidden version for the edit form
(``edit_form_of``), and the per-kind extras (a credential's secret fields, a table's CSV import, a component's team
and versions) have their forms here beside them. Secret values are never rendered: secret inputs stay empty, even
on a re-display."""

from __future__ import annotations

import csv
import io
from functools import cache
from typing import Any

from django import forms

from config import kinds
from config.console import CONFIRMED, EditForm
from resources.models import Component, Credential, EnvVar, LookupTable

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

    def to_python(self, value: Any) -> Any:  # a dict[str, str] (CharField says str: the cleaned value is not)
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

    def to_python(self, value: Any) -> Any:  # a list[dict[str, str]] (CharField says str)
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


def short_textarea(rows: int = 2) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows})


LOCKED_HELP = "Descendant organizations may neither override nor hide it."
SOURCE_HELP = (
    "On the runtime: Canopy stores no secret at all; the agent reads it from its environment "
    "(CANOPY_SECRET_<NAME>_<FIELD>) or its secrets file when a step names this credential."
)
SOURCE_EDIT_HELP = SOURCE_HELP + " Changing to the runtime erases the secret stored here."


@kinds.console_form(Credential)
class CredentialForm(forms.Form):
    """A new credential: its kind's fields, the secret ones apart (the edit form is CredentialEditForm)."""

    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=Credential.Kind.choices)
    source = forms.ChoiceField(
        label="Secret kept",
        choices=Credential.Source.choices,
        initial=Credential.Source.CANOPY,
        required=False,
        help_text=SOURCE_HELP,
    )
    description = forms.CharField(required=False, max_length=2000, widget=short_textarea())
    field_values = PairsField(label="Fields", help_text="Non-secret fields, one name=value per line.")
    secret = PairsField(
        label="Secret fields",
        widget=SecretTextarea(),
        help_text="One name=value per line. Stored encrypted and never shown again (leave empty when the secret is "
        "kept on the runtime).",
    )
    locked = forms.BooleanField(required=False, help_text=LOCKED_HELP)


class CredentialEditForm(EditForm):
    name = forms.CharField(max_length=100)
    source = forms.ChoiceField(
        label="Secret kept", choices=Credential.Source.choices, required=False, help_text=SOURCE_EDIT_HELP
    )
    description = forms.CharField(required=False, max_length=2000, widget=short_textarea())
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


@kinds.console_form(LookupTable)
class LookupTableForm(forms.Form):
    """A lookup table and its rows as CSV lines (create and edit; the CSV import is ImportForm)."""

    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000, widget=short_textarea())
    rows = RowsField()
    locked = forms.BooleanField(required=False, help_text=LOCKED_HELP)


class ImportForm(EditForm):
    """Drawn beside the lookup table's edit form: its own ids (both have a hidden ``version``), so no id is twice on
    the page (#11 §7). Replacing every row asks first: the file is checked and held server-side, and the confirmed
    POST carries the ``staged`` token instead of the file (config.console.stage)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_import_%s")
        super().__init__(*args, **kwargs)
        if self.is_bound and self.data.get("staged") and self.data.get(CONFIRMED) == "1":
            self.fields["file"].required = False  # the confirmed replace of a held file

    file = forms.FileField(
        label="CSV file", help_text="Two columns, key and value; a first line key,value is a header."
    )
    mode = forms.ChoiceField(
        choices=[("replace", "Replace every row"), ("merge", "Merge (same key: new value)")], initial="replace"
    )
    staged = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)


@kinds.console_form(EnvVar)
class EnvVarForm(forms.Form):
    """An org's or a component's variable (create and edit): a stored secret is never echoed back."""

    key = forms.CharField(max_length=100)
    value = forms.CharField(required=False, strip=False, max_length=10_000, widget=short_textarea())
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


@kinds.console_form(Component)
class ComponentForm(forms.Form):
    """A private component (create and edit); its team and versions have forms of their own."""

    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000, widget=short_textarea())
    repository_url = forms.CharField(required=False, max_length=500, label="Repository URL")
    locked = forms.BooleanField(required=False, help_text=LOCKED_HELP)


class UsernameForm(forms.Form):
    """A component's development team: who to add."""

    username = forms.CharField(max_length=150, label="Username")


class VersionForm(forms.Form):
    """A component version to publish."""

    version = forms.CharField(max_length=50, help_text="e.g. 1.4.0: a published version never changes.")
    source = forms.CharField(widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}), max_length=200_000)


@cache
def edit_form_of(form: type[forms.Form]) -> type[forms.Form]:
    """``form`` with the version the object had when the edit page was opened (an EditForm): a kind registers one
    form, for create and edit. One class per form, so a page and its re-display build the same class."""
    if issubclass(form, EditForm):
        return form
    return type(f"{form.__name__}Edit", (form, EditForm), {"__module__": form.__module__})
