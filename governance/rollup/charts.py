"""The roll-up's charts as geometry: the template draws them as inline SVG (no script, no CDN), each shape with its
``<title>`` and each chart with a title, a description and a table of the same figures for screen readers and for
anyone who prefers numbers. Only numbers and names computed here; the template escapes every text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from governance.rollup.service import RUN_STATUSES, Rollup

# Drawing order of the stacked bars, bottom up (the statuses a reader looks for first sit on the axis).
_ORDER = ["succeeded", "failed", "lost", "stopped", "running", "claimed", "stop_requested", "queued"]
STACK = [s for s in _ORDER if s in RUN_STATUSES] + [s for s in RUN_STATUSES if s not in _ORDER]


@dataclass
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str
    label: str = ""


@dataclass
class Chart:
    width: int
    height: int
    rects: list[Rect] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)  # {"x", "y", "text", "anchor"}
    empty: bool = True


def runs_per_step(rollup: Rollup, width: int = 720, height: int = 220) -> Chart:
    """Stacked bars: runs per day (per hour over 24 h) by status."""
    chart = Chart(width, height)
    steps = rollup.per_day
    if not steps:
        return chart
    top, bottom, left = 12, 28, 36
    plot = height - top - bottom
    peak = max((sum(counts.values()) for _, counts in steps), default=0)
    chart.empty = peak == 0
    scale = plot / peak if peak else 0
    slot = (width - left) / len(steps)
    bar = max(1.0, slot * 0.75)
    fmt = "%H:%M" if rollup.step == "hour" else "%d %b"
    for i, (at, counts) in enumerate(steps):
        x = left + i * slot + (slot - bar) / 2
        y: float = top + plot
        for status in STACK:
            n = counts.get(status, 0)
            if not n:
                continue
            h = n * scale
            y -= h
            chart.rects.append(Rect(round(x, 1), round(y, 1), round(bar, 1), round(h, 1), f"s-{status}",
                                    f"{at.strftime(fmt)}: {n} {status.replace('_', ' ')}"))  # fmt: skip
        every = max(1, len(steps) // 8)
        if i % every == 0:
            chart.labels.append(
                {"x": round(x + bar / 2, 1), "y": height - 8, "text": at.strftime(fmt), "anchor": "middle"}
            )
    chart.labels.append({"x": left - 6, "y": top + 4, "text": str(peak), "anchor": "end"})
    chart.labels.append({"x": left - 6, "y": top + plot, "text": "0", "anchor": "end"})
    return chart


def failure_rates(rollup: Rollup, width: int = 720, row: int = 22) -> Chart:
    """Horizontal bars: the share of settled runs that failed or were lost, per part of the subtree."""
    parts = [r for r in rollup.rows if r.counts.failure_rate is not None]
    left, right = 220, 60
    chart = Chart(width, max(row, row * len(parts)) + 8)
    chart.empty = not parts
    plot = width - left - right
    for i, part in enumerate(parts):
        rate = part.counts.failure_rate or 0.0
        y = 4 + i * row
        text = f"{rate:.0%}"
        failed, settled = part.counts.runs_failed, part.counts.runs_failed + part.counts.runs["succeeded"]
        title = f"{part.label}: {failed} of {_runs(settled)} settled failed or were lost ({text})"
        chart.rects.append(Rect(left, y + 3, round(max(1.0, rate * plot), 1), row - 8, "rate", title))
        chart.labels.append({"x": left - 8, "y": y + row - 8, "text": _short(part.label, 30), "anchor": "end"})
        chart.labels.append({"x": left + max(1.0, rate * plot) + 6, "y": y + row - 8, "text": text, "anchor": "start"})
    return chart


def where_work_runs(rollup: Rollup, width: int = 720, height: int = 200) -> Chart:
    """A small tree map: the period's runs split into global and local runtimes (columns), each split by runtime
    (rows), areas in proportion to the runs."""
    chart = Chart(width, height)
    total = sum(r["runs"] for r in rollup.runtimes)
    if not total:
        return chart
    chart.empty = False
    groups: dict[str, list[dict[str, Any]]] = {}
    for runtime in rollup.runtimes:
        groups.setdefault(runtime["kind"], []).append(runtime)
    x = 0.0
    for kind in sorted(groups, key=lambda k: ("global", "local").index(k) if k in ("global", "local") else 2):
        members = groups[kind]
        runs = sum(r["runs"] for r in members)
        w = width * runs / total
        y = 0.0
        for runtime in members:
            h = height * runtime["runs"] / runs if runs else 0
            title = f"{runtime['name']} ({kind}): {_runs(runtime['runs'])}, {runtime['failed']} failed or lost"
            label = _short(runtime["name"], max(0, int(w / 8))) if w > 48 and h > 18 else ""
            chart.rects.append(Rect(round(x, 1), round(y, 1), round(w, 1), round(h, 1), f"k-{kind}", title, label))
            y += h
        x += w
    return chart


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _short(text: str, limit: int) -> str:
    if limit <= 1:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"
