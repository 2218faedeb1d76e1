"""The claim's ``context``: what a run's steps name, and nothing else (least privilege), for the runtime that won the
claim only (docs/API.md "Runtime agents", the contract's claim shape).

- credentials named by ``http`` steps, with their secret decrypted (resources.crypto: the only place a run's secret
  leaves the database in clear) — except ``source: runtime`` credentials, whose secret Canopy never had: the agent
  reads it from its own environment or files;
- lookup tables named by ``lookup`` steps, as ``{key: value}``;
- environment variables named in step texts as ``{{ env.KEY }}`` (and in transform expressions as ``env.KEY``),
  secret ones decrypted.

Names resolve as when the task was saved (resources.services.references): in the effective configuration of the
project's org, and only to the declarations bound to the task then. A name that resolves to something else by now
(hidden, removed, overridden) is a ``ContextError``: the run fails with the reason instead of using what the task's
editor never chose. Environment variables are not bound; they resolve in the org's effective list at claim time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from resources import crypto, inheritance
from resources.models import Credential, EnvVar, LookupRow, LookupTable, Run
from resources.services import references

TEMPLATE_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
ENV_RE = re.compile(r"(?<![\w.\"'])env\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")


class ContextError(Exception):
    """What the run's steps name cannot be given to it: each problem a sentence for the run's error."""

    def __init__(self, problems: list[str]):
        super().__init__(" ".join(problems))
        self.problems = problems


def _strings(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def named(steps: list[Any]) -> dict[str, list[str]]:
    """The names the steps use, in order of first use: ``{"credential": […], "lookup_table": […], "env": […]}``."""
    found: dict[str, list[str]] = {"credential": [], "lookup_table": [], "env": []}

    def add(kind: str, name: str) -> None:
        if name and name not in found[kind]:
            found[kind].append(name)

    for step in steps:
        if not isinstance(step, dict):
            continue
        for reference in references.REFERENCES:
            if step.get("type") == reference.step_type and isinstance(step.get(reference.field), str):
                add(reference.kind, step[reference.field].strip())
        expressions = [match for text in _strings(step) for match in TEMPLATE_RE.findall(text)]
        if step.get("type") == "transform" and isinstance(step.get("expression"), str):
            expressions.append(step["expression"])
        for expression in expressions:
            for key in ENV_RE.findall(expression):
                add("env", key)
    return found


def build(run: Run) -> dict[str, Any]:
    """The context of ``run`` (its task, project and org loaded or loadable). Raises ContextError."""
    task = run.task
    org = task.project.org
    steps = run.steps if isinstance(run.steps, list) else []
    problems = references.stale(task, steps)
    if problems:
        raise ContextError(problems)
    names = named(steps)
    bindings = task.bindings or {}
    return {
        "task": {"id": str(task.pk), "name": task.name},
        "org": {"id": str(org.pk), "name": org.name},
        "run": {"id": str(run.pk), "attempt": run.attempt},
        "credentials": _credentials(names["credential"], bindings.get("credential", {})),
        "lookup_tables": _lookup_tables(names["lookup_table"], bindings.get("lookup_table", {})),
        "env": _env(names["env"], org),
    }


def _bound(names: list[str], bound: dict[str, str]) -> dict[str, str]:
    """name (as the steps write it) → the id bound to it when the task was saved."""
    return {name: bound[name.lower()] for name in names if name.lower() in bound}


def _credentials(names: list[str], bound: dict[str, str]) -> dict[str, Any]:
    ids = _bound(names, bound)
    if not ids:
        return {}
    rows = {str(c.pk): c for c in Credential.objects.filter(pk__in=set(ids.values()))}
    result: dict[str, Any] = {}
    for name, pk in ids.items():
        credential = rows.get(pk)
        if credential is None:  # deleted between the check and this read: the next claim's check says so
            raise ContextError([f"The credential “{name}” is no longer available."])
        entry: dict[str, Any] = {
            "kind": credential.kind,
            "source": credential.source,
            "fields": dict(credential.fields or {}),
        }
        if credential.source == Credential.Source.CANOPY:
            entry["secret"] = crypto.decrypt(credential.secret_ciphertext) or {}
        result[name] = entry
    return result


def _lookup_tables(names: list[str], bound: dict[str, str]) -> dict[str, dict[str, str]]:
    ids = _bound(names, bound)
    if not ids:
        return {}
    existing = list(LookupTable.objects.filter(pk__in=set(ids.values())).values_list("pk", flat=True))
    rows: dict[str, dict[str, str]] = {str(pk): {} for pk in existing}
    for table_id, key, value in LookupRow.objects.filter(table_id__in=existing).values_list("table_id", "key", "value"):
        rows[str(table_id)][key] = value
    result = {}
    for name, pk in ids.items():
        if pk not in rows:
            raise ContextError([f"The lookup table “{name}” is no longer available."])
        result[name] = rows[pk]
    return result


def _env(keys: list[str], org: Any) -> dict[str, str]:
    if not keys:
        return {}
    effective = {e.name.lower(): e.item for e in inheritance.effective(EnvVar, org)}
    env = {}
    for key in keys:
        variable = effective.get(key.lower())
        if variable is None:
            continue  # the template renders it as null; a missing variable is the task's business, not a secret
        env[key] = (crypto.decrypt(variable.secret_ciphertext) or "") if variable.secret else variable.value
    return env
