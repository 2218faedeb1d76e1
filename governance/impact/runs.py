"""The runs part of an impact preview: the queued runs of the subtree whose placement the change decides otherwise.

A run's runtime is fixed when it is queued (runtimes.placement); a run queued before a move stays on its runtime,
while every run queued after it is placed again. The part asks placement itself (``placement.choose`` and
``placement.refusal``, the two halves of ``placement.place``) where each queued run's task would be placed, before
and after the change: a run whose answer changes would now go to another runtime ("displaced"), could not be queued
any more ("unplaceable": the reason is placement's own), or could be again ("placeable").

What placement reads at each org with queued runs (its effective runtimes and settings) is resolved in bulk by the
inheritance engine's ``resolve``, as the declarations part does: one query for the queued runs of the subtree, four
for the runtimes and settings of all their orgs, and one per distinct runtime a task names (``choose`` reads it).
tests/governance/test_impact_move.py checks the answers against ``placement.place`` run by run.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.utils import timezone

from config import kinds
from config.errors import Conflict
from governance.impact.declarations import SubtreeInheritance
from governance.impact.engine import Entry, Scope, Section
from orgs.models import Organization
from resources.models import OrgSetting, Run
from resources.settings_registry import REGISTRY, EffectiveSetting
from runtimes import placement
from runtimes.models import Runtime
from runtimes.selectors import SOURCE_HERE, SOURCE_INHERITED, SOURCE_PLATFORM, RuntimeRow, status_of

#: Where a task would be placed: ("runtime", id, name) or ("refused", reason).
Outcome = tuple[str, ...]


@dataclass(frozen=True)
class _QueuedRun:
    task_id: UUID
    task: str
    org: str
    org_id: UUID
    queued_on: str
    outcome: Outcome


def placement_inputs(
    subtree: list[Organization], org_ids: set[UUID]
) -> tuple[dict[UUID, list[RuntimeRow]], dict[UUID, dict[str, EffectiveSetting]]]:
    """For each org of ``org_ids`` (in ``subtree``), what ``placement.place`` reads there: its effective runtimes
    (``effective_runtimes``'s rows, without their live counts, which placement does not read) and its effective
    settings, resolved in bulk by the inheritance engine (governance.impact.declarations.SubtreeInheritance):
    four queries whatever the number of orgs."""
    bulk = SubtreeInheritance(subtree, [Runtime.KIND])
    now = timezone.now()
    rows: dict[UUID, list[RuntimeRow]] = {}
    globals_ = bulk.offered_globals()
    for org, decided, hidden in bulk.resolved(kinds.of(Runtime), only=org_ids):
        found = [
            RuntimeRow(
                runtime=e.item, at=org, source=SOURCE_INHERITED if e.inherited else SOURCE_HERE, locked=e.locked,
                overrides=e.overrides, status=status_of(e.item, now), instances=0, running=0,
            )
            for e in decided
        ]  # fmt: skip
        taken = {row.runtime.name.lower() for row in found}
        found += [
            RuntimeRow(
                runtime=g, at=org, source=SOURCE_PLATFORM, locked=False, overrides=None, status=status_of(g, now),
                instances=0, running=0,
            )
            for g in globals_
            if g.name.lower() not in taken and g.name.lower() not in hidden
        ]  # fmt: skip
        rows[org.pk] = sorted(found, key=lambda row: (row.runtime.name.lower(), row.source))
    settings: dict[UUID, dict[str, EffectiveSetting]] = {}
    for org, decided, _ in bulk.resolved(kinds.of(OrgSetting), only=org_ids):
        by_key = {e.item.key: e.item for e in decided}
        settings[org.pk] = {
            key: EffectiveSetting(spec, by_key[key].value if key in by_key else spec.default, by_key.get(key), org)
            for key, spec in REGISTRY.items()
        }
    return rows, settings


def outcomes(runs: list[Run], subtree: list[Organization]) -> dict[UUID, Outcome]:
    """Where a run of each run's task would be placed now, by run id: placement's answer (``choose`` and
    ``refusal``, the halves of ``place``), given what ``place`` reads at each org, read in bulk."""
    by_org: dict[UUID, list[Run]] = defaultdict(list)
    for run in runs:
        by_org[run.task.project.org_id].append(run)
    rows_of, settings_of = placement_inputs(subtree, set(by_org)) if by_org else ({}, {})
    result: dict[UUID, Outcome] = {}
    for org_id, org_runs in by_org.items():
        org: Organization = org_runs[0].task.project.org
        rows, settings = rows_of[org_id], settings_of[org_id]
        chosen: dict[UUID | None, Any] = {}
        for run in org_runs:
            task = run.task
            try:
                if task.runtime_id not in chosen:
                    chosen[task.runtime_id] = placement.choose(task, org, rows, settings)
                runtime = chosen[task.runtime_id]
            except Conflict as error:  # the reason names the task: asked again for each task that has none
                result[run.pk] = ("refused", str(error.detail))
                continue
            reason = placement.refusal(org, runtime, rows, settings)
            if reason is not None:
                result[run.pk] = ("refused", reason)
            else:
                result[run.pk] = ("runtime", str(runtime.pk), _label(runtime))
    return result


class RunsPart:
    """Which queued runs of the subtree placement would send elsewhere, or nowhere, after the change."""

    key = "runs"
    title = "Queued runs"

    def capture(self, scope: Scope) -> dict[UUID, _QueuedRun]:
        subtree = scope.subtree()
        orgs = {org.pk: org for org in subtree}
        runs = list(
            Run.objects.filter(status=Run.Status.QUEUED, task__project__org_id__in=list(orgs))
            .select_related("task__project", "runtime__org")
            .order_by("created_at")
        )
        for run in runs:  # the subtree's orgs as read now (a move renumbers them)
            run.task.project.org = orgs[run.task.project.org_id]
        placed = outcomes(runs, subtree)
        return {
            run.pk: _QueuedRun(
                task_id=run.task_id,
                task=run.task.name,
                org=run.task.project.org.name,
                org_id=run.task.project.org_id,
                queued_on=_label(run.runtime) if run.runtime is not None else run.runtime_name,
                outcome=placed[run.pk],
            )
            for run in runs
        }

    def compare(self, before: dict[UUID, _QueuedRun], after: dict[UUID, _QueuedRun], scope: Scope) -> Section:
        groups: dict[tuple[str, UUID, str, Outcome, Outcome], list[_QueuedRun]] = defaultdict(list)
        left_out: set[UUID] = set()
        for run_id, was in before.items():
            now = after.get(run_id)
            if now is None or now.outcome == was.outcome:
                continue
            if was.outcome[0] == "refused" and now.outcome[0] == "refused":
                continue  # unplaceable before and after
            if not scope.shows(was.org_id):
                left_out.add(was.org_id)
                continue
            kind = (
                "unplaceable"
                if now.outcome[0] == "refused"
                else "placeable"
                if was.outcome[0] == "refused"
                else "displaced"
            )
            groups[(kind, was.task_id, was.queued_on, was.outcome, now.outcome)].append(now)
        entries = []
        for (kind, task_id, queued_on, was_out, now_out), runs in sorted(
            groups.items(), key=lambda g: (g[1][0].org, g[1][0].task)
        ):
            first = runs[0]
            count = f"{len(runs)} queued run{'s' if len(runs) != 1 else ''}"
            subject = f"{count} of task “{first.task}” ({first.org}), queued on {queued_on or 'no runtime'}"
            if kind == "unplaceable":
                text = f"{subject}: could not be placed any more — {now_out[1]}"
            elif kind == "placeable":
                text = f"{subject}: would be placed again, on {now_out[2]}"
            else:
                text = f"{subject}: would be placed on {now_out[2]} instead of {was_out[2]}"
            entries.append(
                Entry(
                    kind=kind,
                    text=text,
                    data={
                        "task": {"id": str(task_id), "name": first.task},
                        "org": first.org,
                        "runs": len(runs),
                        "queued_on": queued_on,
                        "before": _outcome_dict(was_out),
                        "after": _outcome_dict(now_out),
                    },
                )
            )
        return Section(self.key, self.title, entries, left_out=len(left_out))


def _label(runtime: Any) -> str:
    """A runtime in words, where it comes from too: two orgs may each declare a runtime of the same name."""
    org = runtime.org if runtime.org_id is not None else None
    return f"{runtime.name} of {org.name}" if org is not None else f"{runtime.name} (platform)"


def _outcome_dict(outcome: Outcome) -> dict[str, Any]:
    if outcome[0] == "refused":
        return {"runtime": None, "refusal": outcome[1]}
    return {"runtime": {"id": outcome[1], "label": outcome[2]}, "refusal": None}
