"""Wake-ups of idle agents waiting in a claim (docs/PEERS.md: a NOTIFY takes a global lock at commit, so it is sent
from the enqueue path only, never per log line).

PostgreSQL: ``wake(runtime_id)`` sends ``NOTIFY canopy_runs, '<runtime id>'`` when the enqueuing transaction
commits; claims waiting on that runtime return at once. SQLite: nothing to send, waiting claims poll briefly."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

CHANNEL = "canopy_runs"


def wake(runtime_id: Any) -> None:
    """After the current transaction commits (at once outside one), tell agents waiting on ``runtime_id``."""
    if runtime_id is None or connection.vendor != "postgresql":
        return

    def send() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(runtime_id)])

    transaction.on_commit(send)
