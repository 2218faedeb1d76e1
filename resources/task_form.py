"""The console's task form (create and edit): name, description, the steps, the runtime (issue #11 §5).

The steps are edited in one of two modes, chosen with buttons that post the form and show it again (no JavaScript
needed; nothing is saved by them):

- **steps** (the default): one box per step with the fields of its type (resources.step_editor), buttons to add a
  step of a chosen type, remove one, move one up or down;
- **json** (advanced): the steps as a JSON list in a textarea, never pre-filled with ``null`` (an empty task shows
  ``[]``). Switching back to the step editor is refused, with the reason, while the JSON is invalid or holds
  something the step editor cannot show exactly.

Saving validates like the API (the same ``clean_steps`` and references, in the service): the form only turns the
inputs into steps. A task with zero steps is never saved by accident: whichever the mode, zero steps need the
explicit "no steps" box ticked (a task opened with no steps has it ticked, so renaming it needs nothing more). A
post without ``mode`` but with ``steps`` is the JSON mode, as before the editor existed.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from django import forms
from django.forms.utils import ErrorDict

from config import hostile
from config.console import EditForm
from orgs.models import Organization
from resources import step_editor
from resources.forms import short_textarea
from resources.services.tasks import MAX_STEPS, STEP_TYPES, step_errors
from resources.step_editor import Draft, StepBox
from runtimes.forms import TaskRuntimeFields

MODES = (("steps", "Step editor"), ("json", "JSON"))
NO_STEPS_ERROR = "Add a step, or tick “Save without steps” to save a task that does nothing yet."


class TaskForm(TaskRuntimeFields):
    """A task's fields; its runtime is a choice among the runtimes its org allows (runtimes.forms); its steps come
    from the step editor or the JSON textarea (``mode``), ``cleaned_data["steps"]`` is always a list."""

    field_order = ["name", "description", "steps", "no_steps", "runtime", "retry_on_lost"]
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000, widget=short_textarea())
    mode = forms.ChoiceField(choices=MODES, required=False, widget=forms.HiddenInput)
    steps = hostile.JSONFormField(
        required=False,
        label="Steps (JSON)",
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false", "class": "code"}),
        help_text='A JSON list of steps, e.g. [{"type": "log", "message": "hello"}]. The same shape as the API’s.',
    )
    no_steps = forms.BooleanField(
        required=False, label="Save without steps", help_text="The task does nothing when it runs until it has steps."
    )

    def __init__(
        self, *args: Any, org: Organization, viewer: Any, steps: list[Any] | None = None, **kwargs: Any
    ) -> None:
        """``steps``: what an unbound form shows (an edit form: the task's; a new one: none)."""
        super().__init__(*args, org=org, viewer=viewer, **kwargs)
        self.org, self.viewer = org, viewer
        self.editor_error = ""  # why an editor button did nothing (shown above the steps)
        self.editor_note = ""  # why the form opened in the JSON mode
        self.input_errors: dict[str, list[str]] = {}  # an input's text that makes no value, by input name
        if self.is_bound:
            mode = self.data.get("mode")
            self.editing = mode if mode in dict(MODES) else ("json" if "steps" in self.data else "steps")
            self.drafts: list[Draft] = step_editor.posted_drafts(self.data)
            self.json_text = str(self.data.get("steps", "")) if self.editing == "json" else ""
        else:
            steps = list(steps or [])
            self.editing = "steps" if step_editor.representable(steps) else "json"
            self.drafts = [step_editor.draft_of(step) for step in steps] if self.editing == "steps" else []
            self.json_text = json.dumps(steps, indent=2, ensure_ascii=False) if self.editing == "json" else ""
            if self.editing == "json":
                self.editor_note = "These steps hold something the step editor cannot show exactly: edit them as JSON."
            self.initial.setdefault("no_steps", not steps)
        self.initial["mode"] = self.editing

    # -- what the template shows

    @cached_property
    def names(self) -> dict[str, list[str]]:
        """The credential and lookup table names a step may use (computed once, only when a step box has a field
        that names one: the form of a new task costs no query for them)."""
        return step_editor.usable_names(self.org, self.viewer)

    @property
    def boxes(self) -> list[StepBox]:
        names = self.names if any(step_editor.names_a(kind) for kind, _ in self.drafts) else {}
        boxes = step_editor.boxes_of(self.drafts, names)
        for box in boxes:
            box.errors = self._step_messages(box.number) if self.is_bound else []
            for item in box.inputs:
                item.errors = list(self.input_errors.get(item.name, []))
        return boxes

    @property
    def step_types(self) -> list[tuple[str, str]]:
        return [(kind, step_editor.TYPE_LABELS.get(kind, kind)) for kind in STEP_TYPES]

    @property
    def json_value(self) -> str:
        return self.json_text or "[]"

    @property
    def general_step_errors(self) -> list[str]:
        """The messages about the steps that no step box shows (in the step editor)."""
        if self.editing == "json":
            return self._messages()
        prefixes = tuple(f"Step {box + 1}: " for box in range(len(self.drafts)))
        return [m for m in self._messages() if not m.startswith(prefixes)]

    def _messages(self) -> list[str]:
        return [str(message) for message in self.errors.get("steps", [])]

    def _step_messages(self, number: int) -> list[str]:
        prefix = f"Step {number}: "
        return [m.removeprefix(prefix) for m in self._messages() if m.startswith(prefix)]

    # -- the editor's buttons

    def apply_editor(self, command: str) -> int:
        """Do what an editor button asks (``editor=<command>``: add:<type>, remove:<i>, up:<i>, down:<i>, json,
        steps) to the posted drafts, without validating the rest (the form is shown again without field errors);
        the status to show it with: 200, or 400 when the command could not be done (the reason in
        ``editor_error``)."""
        self._errors = ErrorDict()  # not a save: the other fields are not judged yet
        verb, _, argument = command.partition(":")
        index = int(argument) if argument.isdigit() else -1
        if verb == "add" and argument in STEP_TYPES:
            if len(self.drafts) >= MAX_STEPS:
                self.editor_error = f"A task has at most {MAX_STEPS} steps."
                return 400
            self.drafts.append(step_editor.new_draft(argument))
        elif verb == "remove" and 0 <= index < len(self.drafts):
            del self.drafts[index]
        elif verb in ("up", "down") and 0 <= index < len(self.drafts):
            self.drafts = step_editor.move(self.drafts, index, -1 if verb == "up" else 1)
        elif verb == "json":
            steps, problems = self._drafted_steps()
            if problems:
                self.editor_error = "Fix the marked fields first: " + " ".join(problems)
                return 400
            self.editing, self.json_text, self.drafts = "json", json.dumps(steps, indent=2, ensure_ascii=False), []
        elif verb == "steps":
            return self._to_step_editor()
        else:
            self.editor_error = "Unknown editor action."
            return 400
        return 200

    def _to_step_editor(self) -> int:
        try:
            steps = json.loads(self.json_text or "[]")
        except json.JSONDecodeError as exc:
            self.editor_error = f"The JSON is not valid ({exc.msg}, line {exc.lineno}): fix it first."
            return 400
        if not step_editor.representable(steps):
            self.editor_error = (
                "These steps hold something the step editor cannot show exactly (an unknown type or field, or a "
                "value of another kind than its field takes): keep editing them as JSON."
            )
            return 400
        self.editing, self.drafts, self.json_text = "steps", [step_editor.draft_of(s) for s in steps], ""
        return 200

    def _drafted_steps(self) -> tuple[list[dict[str, Any]], list[str]]:
        """The steps the boxes make, and the inputs' own problems (marked on the inputs)."""
        steps, problems = [], []
        for index, draft in enumerate(self.drafts):
            step, errors = step_editor.step_of(draft)
            steps.append(step)
            for key, message in errors.items():
                self.input_errors.setdefault(f"step-{index}-{key}", []).append(message)
                problems.append(f"Step {index + 1}: {message}")
        return steps, problems

    # -- cleaning

    def clean_steps(self) -> Any:
        if self.editing != "json":
            return None  # the step editor's steps are made in clean()
        value = self.cleaned_data.get("steps")
        if str(self.data.get("steps", "")).strip() == "":
            raise forms.ValidationError("Write the steps as a JSON list ([] for none).")
        if value is None:
            raise forms.ValidationError("Give a list of steps (null is not one; [] for none).")
        return value

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if self.editing == "json":
            if "steps" not in data:
                return data  # its own error is shown
            steps = data["steps"]
        else:
            steps, problems = self._drafted_steps()
            if problems:
                self.add_error("steps", problems)
                return data
            # Each step checked here as the service will (the same step_errors), so every box shows its messages
            # at once; the service checks them all again, with the references.
            errors = [f"Step {n}: {m}" for n, step in enumerate(steps, start=1) for m in step_errors(step)]
            if errors:
                self.add_error("steps", errors)
                return data
            hostile.check_text(steps, "The steps", field="steps")
        if isinstance(steps, list) and not steps and not data.get("no_steps"):
            self.add_error("steps", NO_STEPS_ERROR)
            return data
        data["steps"] = steps
        return data


class TaskEditForm(TaskForm, EditForm):
    """TaskForm with the version the task had when the form was opened."""
