"""The task form's step editor (issue #11 §5): a task's steps as fields people can fill, without JavaScript.

The fields of each step type are generated from its serializer (resources.services.tasks.STEP_TYPES, the one
definition the API validates with and the OpenAPI schema describes), one input per serializer field, by the field's
class: a text, a choice (a select), a URL, headers (``Name: value`` lines), any JSON value (a textarea parsed as
JSON: a text body is written in quotes), a workload identity (its audience). The fields that name a credential or a
lookup table (resources.services.references.REFERENCES) are selects of the names the editor may use in the task's
org: the effective declarations of the org that the editor may see, the same rule ``references.bind`` applies when
the task is saved (a name it refuses is never offered; the current one is kept, marked, so the form shows what the
task has).

The editor only translates: the steps it builds are validated by the service like the API's (``clean_steps``, the
references), and an empty input means the field is absent. Steps it cannot represent exactly (an unknown field, a
value of another JSON type than the input makes) open in the JSON editor instead, so saving never changes a step
the user did not touch. Steps are numbered from 1 on the page and in every message, as the service numbers them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rest_framework import serializers

from access import policy
from orgs.models import Organization
from resources import inheritance
from resources.services.references import REFERENCES, Reference
from resources.services.tasks import (
    MAX_STEPS,
    STEP_TYPES,
    IdentitySerializer,
    StepChoice,
    StepHeaders,
    StepJson,
    StepSerializer,
)

TYPE_LABELS = {"http": "HTTP request", "lookup": "Lookup", "transform": "Transform", "log": "Log line"}
FIELD_LABELS = {
    "name": "Step name",
    "url": "URL",
    "into": "Into variable",
    "identity": "Workload identity audience",
    "table": "Lookup table",
    "default": "Default (JSON)",
    "body": "Body (JSON)",
}
IDENTITY_HELP = (
    "Optional: sends a workload identity token for this audience as the Authorization header (then no credential "
    "and no Authorization header)."
)
JSON_HELP = "Any JSON value: an object, a list, a number, true/false, or a text in double quotes. Empty: none."
HEADERS_HELP = "One header per line: Name: value (templated)."


class StepInputError(Exception):
    """An input's text that makes no value (bad JSON, a header line without a colon): shown on the input."""


@dataclass
class Input:
    """One input of a step box, as the template draws it."""

    name: str  # the POST name: step-<index>-<key>
    key: str  # the step's field
    label: str
    widget: str  # "text", "url", "textarea", "select"
    value: str
    help: str = ""
    required: bool = False
    choices: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"id_{self.name}"


@dataclass
class StepBox:
    """One step as the editor shows it: its type, its inputs, the messages about it."""

    index: int  # from 0; the page says index + 1
    type: str
    inputs: list[Input]
    errors: list[str] = field(default_factory=list)
    last: bool = False

    @property
    def number(self) -> int:
        return self.index + 1

    @property
    def label(self) -> str:
        return TYPE_LABELS.get(self.type, self.type)

    @property
    def title(self) -> str:
        named = next((i.value for i in self.inputs if i.key == "name" and i.value), "")
        return f"{self.label} · {named}" if named else self.label


# -- references: the names a step may use ------------------------------------------------------------------------


def reference_for(step_type: str, key: str) -> Reference | None:
    return next((r for r in REFERENCES if r.step_type == step_type and r.field == key), None)


def names_a(step_type: str) -> bool:
    """Whether a step of this type has a field naming a credential or a lookup table."""
    return any(reference.step_type == step_type for reference in REFERENCES)


def usable_names(org: Organization, viewer: Any) -> dict[str, list[str]]:
    """``{reference kind: names}``: what a step of a task in ``org`` may name, as ``references.bind`` decides it
    (the name resolves in the org's effective configuration to a declaration the viewer may see). Two queries per
    kind: the effective list and the visible ids among it."""
    names: dict[str, list[str]] = {}
    for reference in REFERENCES:
        resolved = inheritance.effective(reference.model, org)
        ids = [entry.item.pk for entry in resolved]
        among = reference.model._default_manager.filter(pk__in=ids)
        seen = set(policy.visible(viewer, reference.capability, among).values_list("pk", flat=True))
        names[reference.kind] = sorted((e.name for e in resolved if e.item.pk in seen), key=str.lower)
    return names


# -- one field: its text in the form and back ----------------------------------------------------------------------


def _text_of(step_field: serializers.Field, value: Any) -> str:
    """How a present value shows in its input (only values ``_value_of`` makes back exactly: see ``representable``)."""
    if isinstance(step_field, StepJson):
        return json.dumps(value, indent=2, ensure_ascii=False)
    if isinstance(step_field, StepHeaders):
        return "\n".join(f"{name}: {text}" for name, text in value.items()) if isinstance(value, dict) else ""
    if isinstance(step_field, IdentitySerializer):
        return str(value.get("audience", "")) if isinstance(value, dict) else ""
    return value if isinstance(value, str) else ""


def _value_of(step_field: serializers.Field, text: str) -> Any:
    """The value of an input's text (StepInputError when it makes none). The caller leaves out an empty input."""
    if isinstance(step_field, StepJson):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise StepInputError(
                f'Not valid JSON (line {getattr(exc, "lineno", 1)}): write a text in double quotes, e.g. "hello".'
            ) from None
    if isinstance(step_field, StepHeaders):
        headers: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            name, colon, value = line.partition(":")
            name = name.strip()
            if not colon or not name:
                raise StepInputError(f"Line {number}: write Name: value.")
            if name in headers:
                raise StepInputError(f"Line {number}: “{name[:50]}” appears twice.")
            headers[name] = value.strip()
        return headers
    if isinstance(step_field, IdentitySerializer):
        return {"audience": text.strip()}
    return text


def _input(
    step_type: str, index: int, key: str, step_field: serializers.Field, text: str, names: Mapping[str, list[str]]
) -> Input:
    name = f"step-{index}-{key}"
    label = FIELD_LABELS.get(key, key.replace("_", " ").capitalize())
    help_text = str(step_field.help_text or "")
    widget = "text"
    choices: list[tuple[str, str]] = []
    reference = reference_for(step_type, key)
    if reference is not None:
        widget = "select"
        available = names.get(reference.kind, [])
        none = f"Choose a {reference.label}" if step_field.required else "None"
        choices = [("", none)] + [(n, n) for n in available]
        if text and text not in available:
            choices.append((text, f"{text} (not available to you here)"))
        help_text = f"A {reference.label} this task's organization sees and you may see."
    elif isinstance(step_field, StepChoice):
        widget = "select"
        if not step_field.required:
            default = step_field.default
            choices = [("", f"Default ({default})" if default is not serializers.empty else "None")]
        choices += [(str(c), str(c)) for c in step_field.choices]
    elif isinstance(step_field, StepJson):
        widget, help_text = "textarea", f"{help_text} {JSON_HELP}".strip()
    elif isinstance(step_field, StepHeaders):
        widget, help_text = "textarea", HEADERS_HELP
    elif isinstance(step_field, IdentitySerializer):
        help_text = IDENTITY_HELP
    elif isinstance(step_field, serializers.URLField):
        widget = "url"
    elif key in ("message", "expression"):
        widget = "textarea"
    return Input(name, key, label, widget, text, help_text, bool(step_field.required), choices)


def step_fields(step_type: str) -> dict[str, serializers.Field]:
    """The fields of a step type the editor shows: its serializer's, without the type (fixed per box); none for an
    unknown type (the service names it)."""
    if step_type not in STEP_TYPES:
        return {}
    serializer: StepSerializer = STEP_TYPES[step_type]()
    return {key: f for key, f in serializer.fields.items() if key != "type"}


# -- the editor's state: drafts ------------------------------------------------------------------------------------
#
# A draft is one step box as text: its type and the text of each input. The page shows drafts, the buttons reorder
# them, and a draft becomes a step only when the form is saved, so whatever the user typed (even invalid JSON) is
# shown again as typed.

Draft = tuple[str, dict[str, str]]


def draft_of(step: dict[str, Any]) -> Draft:
    kind = str(step.get("type", ""))
    return kind, {key: _text_of(f, step[key]) for key, f in step_fields(kind).items() if key in step}


def posted_drafts(data: Mapping[str, Any]) -> list[Draft]:
    """The step boxes a form posted, in order (``step-<i>-type`` from 0 until one is missing)."""
    drafts: list[Draft] = []
    while len(drafts) <= MAX_STEPS and f"step-{len(drafts)}-type" in data:
        index = len(drafts)
        kind = str(data[f"step-{index}-type"])
        texts = {key: str(data.get(f"step-{index}-{key}", "")).replace("\r\n", "\n") for key in step_fields(kind)}
        drafts.append((kind, texts))
    return drafts


def step_of(draft: Draft) -> tuple[dict[str, Any], dict[str, str]]:
    """The step a draft makes (empty inputs left out) and the inputs' own errors (text that makes no value)."""
    kind, texts = draft
    step: dict[str, Any] = {"type": kind}
    errors: dict[str, str] = {}
    for key, f in step_fields(kind).items():
        text = texts.get(key, "")
        if text == "" or (text.strip() == "" and isinstance(f, StepJson | StepHeaders | IdentitySerializer)):
            continue
        try:
            step[key] = _value_of(f, text)
        except StepInputError as exc:
            errors[key] = str(exc)
    return step, errors


def boxes_of(drafts: list[Draft], names: Mapping[str, list[str]]) -> list[StepBox]:
    """The boxes the page draws for ``drafts``, numbered in order."""
    boxes = [
        StepBox(index, kind, [_input(kind, index, key, f, texts.get(key, ""), names) for key, f in fields.items()])
        for index, (kind, texts) in enumerate(drafts)
        for fields in [step_fields(kind)]
    ]
    if boxes:
        boxes[-1].last = True
    return boxes


def representable(steps: Any) -> bool:
    """Whether the step editor shows ``steps`` exactly: saving them untouched from the editor gives them back."""
    if not isinstance(steps, list) or len(steps) > MAX_STEPS:
        return False
    for step in steps:
        if not isinstance(step, dict) or step.get("type") not in STEP_TYPES:
            return False
        if set(step) - {"type"} - set(step_fields(step["type"])):
            return False
        rebuilt, errors = step_of(draft_of(step))
        if errors or rebuilt != step:
            return False
    return True


def new_draft(kind: str) -> Draft:
    """A new step box of ``kind``, its required choices preset (an HTTP request is a GET until changed)."""
    texts = {
        key: str(next(iter(f.choices)))
        for key, f in step_fields(kind).items()
        if isinstance(f, StepChoice) and f.required and reference_for(kind, key) is None
    }
    return kind, texts


def move(items: list[Any], index: int, offset: int) -> list[Any]:
    """``items`` with the one at ``index`` moved by ``offset`` (unchanged when it would leave the list)."""
    target = index + offset
    if not (0 <= index < len(items) and 0 <= target < len(items)):
        return items
    items = list(items)
    items[index], items[target] = items[target], items[index]
    return items


# -- a task's steps in words (the task page) -----------------------------------------------------------------------


def summary(step: Any) -> dict[str, str]:
    """One step as the task page lists it: its type's label, its name and one line saying what it does."""
    if not isinstance(step, dict):
        return {"label": "Step", "name": "", "does": json.dumps(step, ensure_ascii=False)[:200]}
    kind = step.get("type")
    into = f" → {step['into']}" if isinstance(step.get("into"), str) else ""
    if kind == "http":
        via = f" · credential {step['credential']}" if step.get("credential") else ""
        via += " · workload identity" if step.get("identity") else ""
        does = f"{step.get('method', '')} {step.get('url', '')}{via}{into}"
    elif kind == "lookup":
        does = f"{step.get('table', '')}[{step.get('key', '')}]{into}"
    elif kind == "transform":
        does = f"{step.get('expression', '')}{into}"
    elif kind == "log":
        does = f"{step.get('level', 'info')}: {step.get('message', '')}"
    else:
        does = json.dumps(step, ensure_ascii=False)
    name = step.get("name")
    return {"label": TYPE_LABELS.get(str(kind), str(kind)), "name": name if isinstance(name, str) else "", "does": does}
