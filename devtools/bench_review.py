"""The benchmark's review section (manage.py benchmark --only review): see run() and report()."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orgs.models import Tenant


def run(tenant: Tenant, large: Tenant | None, bench: Any) -> dict[str, Any]:
    """Measure on the 10k-org tenant and the 100k-org large one (None with --quick)."""
    return {}  # filled by the issue #12 work on this part


def report(result: dict[str, Any], say: Callable[[str], None]) -> None:
    say("\nreview: nothing measured")
