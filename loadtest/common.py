"""What the load test's parts share: file names in the run folder, request kinds and their categories.

No Django and no locust here: the locustfile imports this without Django, verify.py without locust."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

PLAN = "plan.json"  # prepare.py → locustfile.py and verify.py: personas, tokens, targets, the initial sandboxes
WRITES = "writes.jsonl"  # locustfile.py: every acknowledged (or uncertain) write, in the order it was answered
ANOMALIES = "anomalies.jsonl"  # locustfile.py: 5xx, false 404s, unexpected statuses, transport errors
REQUESTS = "requests.json"  # locustfile.py: per request kind, counts, statuses and response times
LOCKS = "locks.json"  # sampler.py: lock waits seen in pg_stat_activity during the run
REPORT = "report.md"  # verify.py: the summary table, ready for README

# Every request the load generator sends has a kind (locust's request name); its category is what the mix is
# about: read, write (projects, tasks, runs, credentials, members, org creates), tree (move, delete, restore),
# invalid (bad input, invisible objects, bad tokens: answered 4xx as expected).
CATEGORIES = ("read", "write", "tree", "invalid")


def category(kind: str) -> str:
    return kind.split(":", 1)[0]


def read_json(path: Path, default: Any = None) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values), max(1, math.ceil(fraction * len(sorted_values)))) - 1
    return sorted_values[index]
