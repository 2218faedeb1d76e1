"""Governance tests: what a roll-up keeps is written at once.

In production a roll-up computed by a GET is kept once the request's READ ONLY transaction commits
(``snapshots.after_the_read``); a test runs inside a transaction that never commits, so it would never be kept.
Here it is written at once, except in committing tests (``django_db(transaction=True)``), where it is written after
the request's transaction as in production (tests/governance/test_rollup_snapshots.py drives that order through the
request middleware)."""

from __future__ import annotations

from typing import Any

import pytest

from governance.rollup import snapshots


@pytest.fixture(autouse=True)
def rollup_writes_at_once(request: Any, monkeypatch: Any) -> None:
    marker = request.node.get_closest_marker("django_db")
    if marker is not None and marker.kwargs.get("transaction"):
        return
    monkeypatch.setattr(snapshots, "after_the_read", lambda write: write())
