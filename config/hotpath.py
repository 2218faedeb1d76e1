"""Model instances from hand-written SQL, for the few queries every API request runs.

The ORM compiles a queryset's SQL on each evaluation; for a one-row lookup that compilation costs more CPU than the
query itself. ``fetch_one`` runs a fixed statement and builds the instance the way the ORM would (the database
backend's converters, then each field's ``from_db_value``), without compiling anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from django.db import connection, models


@cache
def _columns(model: type[models.Model], vendor: str) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """(attnames, [(col expression, converters)]) of the model's concrete fields, computed once per backend."""
    table = model._meta.db_table
    names, plans = [], []
    for field in model._meta.concrete_fields:
        col = field.get_col(table)
        converters = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
        names.append(field.attname)
        plans.append((col, tuple(converters)))
    return tuple(names), tuple(plans)


def select_list(model: type[models.Model], alias: str) -> str:
    """The model's concrete columns, in field order, for a SELECT from ``alias``."""
    quote = connection.ops.quote_name
    # attname equals column unless db_column renames it; concrete fields always have a column.
    return ", ".join(f"{alias}.{quote(field.column or field.attname)}" for field in model._meta.concrete_fields)


def convert(model: type[models.Model], attname: str, value: Any) -> Any:
    """One column's raw value converted as the ORM would for ``model.attname``."""
    names, plans = _columns(model, connection.vendor)
    col, converters = plans[names.index(attname)]
    for converter in converters:
        value = converter(value, col, connection)
    return value


def build(model: type[models.Model], values: Sequence[Any]) -> Any:
    """An instance of ``model`` from its concrete columns' raw values (as selected by ``select_list``)."""
    names, plans = _columns(model, connection.vendor)
    converted = list(values[: len(names)])
    for index, (col, converters) in enumerate(plans):
        for converter in converters:
            converted[index] = converter(converted[index], col, connection)
    return model.from_db(connection.alias, list(names), converted)


def fetch_one(sql: str, params: Sequence[Any], make: Callable[[Sequence[Any]], Any]) -> Any:
    """Run ``sql`` (one query in the query log), and ``make`` the first row into an object; None without a row."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return make(row) if row is not None else None
