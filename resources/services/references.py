"""What a task's steps name (credentials, lookup tables), checked and bound when the task is saved.

A step names a credential or a lookup table by name; the name resolves in the effective configuration of the
task's org (resources.inheritance). Saving steps is allowed only when every name resolves to a declaration the
editor may see: otherwise an editor could make a run use a secret they cannot see and send it where they like.
The declaration each name resolved to is bound to the task (``Task.bindings``); when a run is queued and a name no
longer resolves to it (hidden, removed, or overridden since), the run fails with a clear error instead of silently
using something else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from access import policy
from orgs.models import Organization
from resources import inheritance
from resources.models import Credential, Declaration, LookupTable, Task


@dataclass(frozen=True)
class Reference:
    kind: str  # the key in Task.bindings
    step_type: str
    field: str  # the step's field holding the name
    model: type[Declaration]
    capability: str  # what the editor must hold on the declaration

    @property
    def label(self) -> str:
        return str(self.model._meta.verbose_name)


REFERENCES = (
    Reference("credential", "http", "credential", Credential, "credential.view"),
    Reference("lookup_table", "lookup", "table", LookupTable, "lookup.view"),
)


def _resolved(org: Organization, steps: list[dict[str, Any]]) -> list[tuple[Reference, int, str, Any]]:
    """(reference, step number, name, what the name resolves to in ``org`` or None) for every name the steps use:
    one effective-list query per kind that the steps name."""
    found = []
    for reference in REFERENCES:
        wanted = [
            (number, step[reference.field].strip())
            for number, step in enumerate(steps, start=1)
            if isinstance(step, dict)
            and step.get("type") == reference.step_type
            and isinstance(step.get(reference.field), str)
        ]
        if wanted:
            effective = {e.name.lower(): e.item for e in inheritance.effective(reference.model, org)}
            found += [(reference, number, name, effective.get(name.lower())) for number, name in wanted]
    return found


def bind(*, actor: Any, org: Organization, steps: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Resolve every name the steps use in ``org``'s effective configuration, among what ``actor`` may see:
    ``{kind: {name (lower case): declaration id}}``. A name that does not resolve, or resolves to something the
    actor may not see, is a field error naming the step (the two read the same: nothing is revealed)."""
    resolved = _resolved(org, steps)
    seen: set[Any] = {item.pk for _, _, _, item in resolved if item is not None}
    if actor is not None:
        seen = set()
        for reference in {ref for ref, _, _, _ in resolved}:
            ids = [item.pk for ref, _, _, item in resolved if ref is reference and item is not None]
            seen |= set(
                policy.visible(actor, reference.capability, reference.model.objects.filter(pk__in=ids)).values_list(
                    "pk", flat=True
                )
            )
    bindings: dict[str, dict[str, str]] = {}
    errors: list[str] = []
    for reference, number, name, item in resolved:
        if item is None or item.pk not in seen:
            errors.append(
                f"Step {number}: no {reference.label} named “{name[:100]}” is available to you in {org.name}."
            )
        else:
            bindings.setdefault(reference.kind, {})[name.lower()] = str(item.pk)
    if errors:
        raise ValidationError({"steps": errors[:20]})
    return bindings


def stale(task: Task, steps: list[dict[str, Any]]) -> list[str]:
    """Why a run of ``task`` with ``steps`` cannot use what the task was saved with: one sentence per step whose
    name no longer resolves, in the task's org, to the declaration bound when the task was saved."""
    org = task.project.org
    problems: list[str] = []
    for reference, number, name, item in _resolved(org, steps):
        if item is None:
            problems.append(
                f"Step {number}: the {reference.label} “{name}” is no longer available in {org.name} (removed or "
                "hidden since the task was saved)."
            )
        elif (task.bindings or {}).get(reference.kind, {}).get(name.lower()) != str(item.pk):
            problems.append(
                f"Step {number}: “{name}” now resolves to another {reference.label} than when the task was saved "
                f"(declared in {item.org.name}): save the task again to use it."
            )
    return problems
