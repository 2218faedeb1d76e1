"""CSV exports that a spreadsheet opens safely: one cell helper for every export of the console."""

from __future__ import annotations

from datetime import datetime
from typing import Any

#: A cell starting with one of these is a formula to a spreadsheet (CSV injection): it is prefixed with a quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    """``value`` as a CSV cell that a spreadsheet will not run as a formula (a datetime in ISO 8601, None empty)."""
    if isinstance(value, datetime):
        return value.isoformat()
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
