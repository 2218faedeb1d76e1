"""The runs part of an impact preview: the queued runs of the subtree whose placement the change decides otherwise.

A run's runtime is fixed when it is queued (runtimes.placement); a run queued before a move stays on its runtime,
while every run queued after it is placed again. The part asks placement itself (``placement.choose`` and
``placement.refusal``, the two halves of ``placement.place``) where each queued run's task would be placed, before
and after the change: a run whose answer changes would now go to another runtime ("displaced"), could not be queued
any more ("unplaceable": the reason is placement's own), or could be again ("placeable").

Cost: one query for the queued runs of the subtree, then per org that has some its effective runtimes and settings
(three queries) and per distinct runtime its tasks name one more; nothing for an org without queued runs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from config.errors import Conflict
from governance.impact.engine import Entry, Scope, Section
from orgs.models import Organization
from resources.models import Run
from resources.settings_registry import effective_settings
from runtimes import placement
from runtimes.selectors import effective_runtimes

#: Where a task would be placed: ("runtime", id, name) or ("refused", reason).
Outcome = tuple[str, ...]


@dataclass(frozen=True)
class _QueuedRun:
    task_id: UUID
    task: str
    org: str
    queued_on: str
    outcome: Outcome


def outcomes(runs: list[Run]) -> dict[UUID, Outcome]:
    """Where a run of each run's task would be placed now, by run id: placement's answer, each org's runtimes and
    settings read once."""
    by_org: dict[UUID, list[Run]] = defaultdict(list)
    for run in runs:
        by_org[run.task.project.org_id].append(run)
    result: dict[UUID, Outcome] = {}
    for org_runs in by_org.values():
        org: Organization = org_runs[0].task.project.org
        rows = effective_runtimes(org)
        settings = {s.spec.key: s for s in effective_settings(org)}
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
            result[run.pk] = (
                ("refused", reason) if reason is not None else ("runtime", str(runtime.pk), _label(runtime))
            )
    return result


class RunsPart:
    """Which queued runs of the subtree placement would send elsewhere, or nowhere, after the change."""

    key = "runs"
    title = "Queued runs"

    def capture(self, scope: Scope) -> dict[UUID, _QueuedRun]:
        orgs = {org.pk: org for org in scope.subtree()}
        runs = list(
            Run.objects.filter(status=Run.Status.QUEUED, task__project__org_id__in=list(orgs))
            .select_related("task__project", "runtime__org")
            .order_by("created_at")
        )
        for run in runs:  # the subtree's orgs as read now (a move renumbers them)
            run.task.project.org = orgs[run.task.project.org_id]
        placed = outcomes(runs)
        return {
            run.pk: _QueuedRun(
                task_id=run.task_id,
                task=run.task.name,
                org=run.task.project.org.name,
                queued_on=_label(run.runtime) if run.runtime is not None else run.runtime_name,
                outcome=placed[run.pk],
            )
            for run in runs
        }

    def compare(self, before: dict[UUID, _QueuedRun], after: dict[UUID, _QueuedRun], scope: Scope) -> Section:
        groups: dict[tuple[str, UUID, str, Outcome, Outcome], list[_QueuedRun]] = defaultdict(list)
        for run_id, was in before.items():
            now = after.get(run_id)
            if now is None or now.outcome == was.outcome:
                continue
            if was.outcome[0] == "refused" and now.outcome[0] == "refused":
                continue  # unplaceable before and after
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
        return Section(self.key, self.title, entries)


def _label(runtime: Any) -> str:
    """A runtime in words, where it comes from too: two orgs may each declare a runtime of the same name."""
    org = runtime.org if runtime.org_id is not None else None
    return f"{runtime.name} of {org.name}" if org is not None else f"{runtime.name} (platform)"


def _outcome_dict(outcome: Outcome) -> dict[str, Any]:
    if outcome[0] == "refused":
        return {"runtime": None, "refusal": outcome[1]}
    return {"runtime": {"id": outcome[1], "label": outcome[2]}, "refusal": None}
