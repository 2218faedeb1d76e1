"""Placement: which runtime runs a task (docs/API.md "Runtimes", docs/DESIGN.md §6).

A run's runtime is fixed when it is queued: the task's ``runtime``, else the effective ``default_runtime`` setting of
the project's org (a name, resolved in that org's effective runtime list), else the platform's default global
runtime (``is_platform_default``, when offered to the tenant). Whichever it is must be usable at the project's org
(in its effective list: declared here or above, or a global offered to the tenant, not hidden) and, when the
effective ``allowed_runtimes`` is not empty, one of those names. One engine answers both the task form (a 400 on the
``runtime`` field: ``check_task_runtime``) and Run (a 409 ``placement``: ``place``). Placement is decided again at
every run, so moving a project's org under a locked ``allowed_runtimes`` cannot let its tasks escape it.

A paused runtime is placeable (its runs wait in the queue until it is resumed: the queue never claims for it).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from access import policy
from config.errors import Conflict
from orgs.models import Organization
from resources.models import Task
from resources.settings_registry import EffectiveSetting, effective_settings
from runtimes.models import Runtime
from runtimes.selectors import RuntimeRow, effective_runtimes

PLACEMENT = "placement"


def _settings(org: Organization) -> dict[str, EffectiveSetting]:
    return {s.spec.key: s for s in effective_settings(org)}


def _restriction(org: Organization, allowed: EffectiveSetting, runtime: Runtime) -> str | None:
    """Why ``runtime`` is outside the effective ``allowed_runtimes`` at ``org`` (None: it is allowed)."""
    names = list(allowed.value or [])
    if not names or runtime.name.lower() in {name.lower() for name in names}:
        return None
    where = allowed.org.name if allowed.org is not None else org.name
    lock = " (locked)" if allowed.locked else ""
    return (
        f"Runtime “{runtime.name}” is not allowed in {org.name}: {where} restricts its subtree to "
        f"{', '.join(names)}{lock} (setting allowed_runtimes)."
    )


def refusal(org: Organization, runtime: Runtime, rows: list[RuntimeRow], settings: dict[str, Any]) -> str | None:
    """Why ``runtime`` cannot run tasks of ``org`` (None: it can): not in the effective list, or not allowed."""
    if not any(row.runtime.pk == runtime.pk for row in rows):
        return (
            f"Runtime “{runtime.name}” is not usable in {org.name}: it is neither declared there or above nor offered "
            "to its tenant, or it is hidden there."
        )
    return _restriction(org, settings["allowed_runtimes"], runtime)


def choose(task: Task, org: Organization, rows: list[RuntimeRow], settings: dict[str, Any]) -> Runtime:
    """The runtime ``task`` would run on at ``org`` (before the checks): Conflict when nothing names one."""
    if task.runtime_id is not None:
        runtime = Runtime.objects.filter(pk=task.runtime_id).select_related("org").first()
        if runtime is None:  # deleted meanwhile (SET_NULL races the read)
            raise Conflict(f"The runtime of task “{task.name}” no longer exists.", code=PLACEMENT)
        return runtime
    default = settings["default_runtime"]
    if default.value:
        name = str(default.value).lower()
        match = next((row.runtime for row in rows if row.runtime.name.lower() == name), None)
        if match is None:
            where = default.org.name if default.org is not None else org.name
            raise Conflict(
                f"The default runtime “{default.value}” (setting default_runtime, set in {where}) is not usable in "
                f"{org.name}: no runtime of that name is declared there or above or offered to its tenant.",
                code=PLACEMENT,
            )
        return match
    platform = Runtime.objects.filter(is_platform_default=True).first()
    if platform is None:
        raise Conflict(
            f"Task “{task.name}” names no runtime, {org.name} sets no default_runtime and the platform has no "
            "default runtime: choose a runtime for the task.",
            code=PLACEMENT,
        )
    return platform


def place(task: Task) -> Runtime:
    """The runtime a run of ``task`` goes to now; Conflict (409, code ``placement``) with the reason when there is
    none it may use (a name outside the effective list, or outside the effective ``allowed_runtimes``)."""
    org = task.project.org
    rows = effective_runtimes(org)
    settings = _settings(org)
    runtime = choose(task, org, rows, settings)
    reason = refusal(org, runtime, rows, settings)
    if reason is not None:
        raise Conflict(reason, code=PLACEMENT)
    return runtime


def check_task_runtime(org: Organization, runtime: Runtime | None, viewer: Any = None) -> None:
    """A task of ``org`` may name ``runtime`` (None: the default applies, checked when it runs): ValidationError on
    the ``runtime`` field otherwise. ``viewer``: the editor, who may only name runtimes they see."""
    if runtime is None:
        return
    if viewer is not None and not policy.can(viewer, "runtime.view", runtime):
        raise ValidationError({"runtime": ["No such runtime."]})  # an invisible runtime is not named back
    rows = effective_runtimes(org, viewer)
    reason = refusal(org, runtime, rows, _settings(org))
    if reason is not None:
        raise ValidationError({"runtime": [reason]})


def allowed_rows(org: Organization, viewer: Any = None) -> list[RuntimeRow]:
    """The effective runtimes a task of ``org`` may name (the task form's choices)."""
    rows = effective_runtimes(org, viewer)
    allowed = _settings(org)["allowed_runtimes"]
    return [row for row in rows if _restriction(org, allowed, row.runtime) is None]
