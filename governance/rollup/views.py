"""The console's roll-up dashboard: /o/<org-uuid>/overview/ (``org-rollup``), its CSV (``?format=csv``).

Whoever may open the org (``org.view``) may open its dashboard; each number in it counts only what they may see
(governance/rollup/service.py)."""

from __future__ import annotations

import csv
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from config.console import console_view, fetch_org, render_org_page
from config.spreadsheet import cell as csv_cell
from governance.rollup import charts
from governance.rollup.service import (
    CHILD_ROWS,
    EXPIRING_DAYS,
    PERIODS,
    BadPeriod,
    Counts,
    Rollup,
    parse_period,
    rollup,
)
from orgs.models import Organization

PERIOD_LABELS = {"24h": "24 hours", "7d": "7 days", "30d": "30 days"}

#: The table's columns, in the page's and the CSV's order: (CSV header, value of a Counts).
COLUMNS: list[tuple[str, Any]] = [
    ("organizations", lambda c: c.orgs),
    ("projects", lambda c: c.projects),
    ("tasks", lambda c: c.tasks),
    ("failing_tasks", lambda c: c.failing_tasks),
    ("runs", lambda c: c.runs_total),
    ("runs_succeeded", lambda c: c.runs["succeeded"]),
    ("runs_failed", lambda c: c.runs["failed"]),
    ("runs_lost", lambda c: c.runs["lost"]),
    ("runs_stopped", lambda c: c.runs["stopped"]),
    ("runs_in_progress", lambda c: c.runs_active),
    ("failure_rate", lambda c: "" if c.failure_rate is None else f"{c.failure_rate:.3f}"),
    ("runtimes_online", lambda c: c.runtimes_online),
    ("runtimes_offline", lambda c: c.runtimes_offline),
    ("runtimes_other", lambda c: c.runtimes_other),
    ("people", lambda c: c.people),
    ("teams", lambda c: c.teams),
    ("pending_invitations", lambda c: c.invitations),
    ("grants_expiring_30d", lambda c: c.expiring_grants),
]


def _period(request: HttpRequest) -> str:
    try:
        return parse_period(request.GET.get("period"))
    except BadPeriod as error:
        raise ValidationError(str(error)) from error


@console_view
def org_rollup(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "org.view")
    period = _period(request)
    result = rollup(request.user, org, period)
    if request.GET.get("format") == "csv":
        return _csv(org, result)
    return render_org_page(
        request, "governance/rollup.html", org, tab="overview", rollup=result, period=period,
        periods=[(key, PERIOD_LABELS[key]) for key in PERIODS], period_label=PERIOD_LABELS[period],
        runs_chart=charts.runs_per_step(result), rates_chart=charts.failure_rates(result),
        where_chart=charts.where_work_runs(result), statuses=charts.STACK,
        status_labels=[(status, status.replace("_", " ")) for status in charts.STACK], child_rows=CHILD_ROWS,
        expiring_days=EXPIRING_DAYS,
    )  # fmt: skip


def _csv(org: Organization, result: Rollup) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="rollup-{org.pk}-{result.period}.csv"'
    writer = csv.writer(response)
    writer.writerow(["part", "organization", "organization_id", *(name for name, _ in COLUMNS)])
    for row in result.rows:
        writer.writerow([row.kind, csv_cell(row.label), row.org_id or "", *_values(row.counts)])
    writer.writerow(["total", csv_cell(result.org_name), result.org_id, *_values(result.total)])
    return response


def _values(counts: Counts) -> list[Any]:
    return [value(counts) for _, value in COLUMNS]
