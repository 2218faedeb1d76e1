"""One scan of a queryset, aggregated several ways in the same statement.

A dashboard often wants the same rows summed per part, per day and per runtime, or counted distinct per part and
over the whole: as separate querysets each of those is a scan of the same joins. ``several_ways`` compiles the
queryset once into a common table expression and answers every grouping from it with ``UNION ALL`` (PostgreSQL
materializes a CTE read more than once, so the joins run once; SQLite reads it the same way). Portable SQL only:
no ``GROUPING SETS``, which SQLite lacks.

    parts, days = several_ways(
        rows.values("bucket", "day", "failed"),
        Way(["bucket"], n=COUNT, failed=SUM("failed")),
        Way(["day"], n=COUNT),
    )

Each result is a list of dicts keyed by the way's columns and aggregates, in no particular order. A way without
columns aggregates the whole scan and answers one row (``COUNT`` 0, ``SUM`` None over no rows: read with ``or 0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import QuerySet


@dataclass(frozen=True)
class Aggregate:
    function: str  # COUNT, SUM
    column: str | None = None  # None: COUNT(*)
    distinct: bool = False

    def sql(self, quote: Any) -> str:
        if self.column is None:
            return f"{self.function}(*)"
        return f"{self.function}({'DISTINCT ' if self.distinct else ''}{quote(self.column)})"


COUNT = Aggregate("COUNT")


def SUM(column: str) -> Aggregate:
    return Aggregate("SUM", column)


def DISTINCT(column: str) -> Aggregate:
    return Aggregate("COUNT", column, distinct=True)


class Way:
    """A grouping: the columns grouped by (none: the whole scan) and the aggregates, by name."""

    def __init__(self, columns: list[str], **aggregates: Aggregate):
        if not aggregates:
            raise ValueError("A way needs at least one aggregate.")
        self.columns = list(columns)
        self.aggregates = aggregates


def several_ways(rows: QuerySet, *ways: Way) -> list[list[dict[str, Any]]]:
    """``rows`` (a ``values()`` queryset naming every column the ways use) scanned once, aggregated each way."""
    fields = set(rows.query.values_select) | set(rows.query.annotation_select)
    for way in ways:
        used = set(way.columns) | {a.column for a in way.aggregates.values() if a.column}
        missing = used - fields
        if missing:
            raise ValueError(f"Not selected by the queryset: {', '.join(sorted(missing))}.")
    connection = connections[rows.db]
    quote = connection.ops.quote_name
    columns = sorted({c for way in ways for c in way.columns})
    aggregates = sorted({name for way in ways for name in way.aggregates})
    try:
        inner, params = rows.order_by().query.sql_with_params()
    except EmptyResultSet:  # the queryset can match nothing (``none()``, ``pk__in=[]``): every way over no rows
        return [[] if way.columns else [_over_nothing(way)] for way in ways]
    selects = []
    for index, way in enumerate(ways):
        picked = [quote(c) if c in way.columns else "NULL" for c in columns]
        picked += [way.aggregates[a].sql(quote) if a in way.aggregates else "NULL" for a in aggregates]
        group = f" GROUP BY {', '.join(quote(c) for c in way.columns)}" if way.columns else ""
        # identifiers quoted by the backend, aggregates from this module, values bound as parameters
        selects.append(f"SELECT {index}, {', '.join(picked)} FROM scanned{group}")  # noqa: S608
    sql = f"WITH scanned AS ({inner}) " + " UNION ALL ".join(selects)
    results: list[list[dict[str, Any]]] = [[] for _ in ways]
    names = [*columns, *aggregates]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for index, *values in cursor.fetchall():
            way = ways[index]
            row = dict(zip(names, values, strict=True))
            results[index].append({k: row[k] for k in [*way.columns, *way.aggregates]})
    return results


def _over_nothing(way: Way) -> dict[str, Any]:
    """What SQL answers for a way without columns over no rows: counts 0, sums NULL."""
    return {name: (None if a.function == "SUM" else 0) for name, a in way.aggregates.items()}
