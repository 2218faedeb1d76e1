"""The tenant's write lock: what serializes the tree and declaration writes of one tenant, and only those.

Every tree write (create, move, delete, restore) and every declaration write takes the tenant row's lock first and
re-reads what it changes under it (django-mptt computes lft/rght from the instances it is given). The lock is
``FOR NO KEY UPDATE``: it excludes the other tenant writers but not the many rows that merely *reference* the tenant
(every audit event does): those take ``FOR KEY SHARE`` for their foreign key check, which a ``FOR UPDATE`` would
block — a task run waited seconds behind a move for its audit row before.

A writer waits at most ``TENANT_LOCK_TIMEOUT_MS`` (PostgreSQL's ``lock_timeout``, for the rest of the transaction)
and then gets ``Busy`` — 503 with ``Retry-After`` — instead of tying up a worker behind a queue of tree writes.
SQLite serializes writers by itself (one writer at a time, waiting up to its own timeout).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import OperationalError, connection

from config.errors import Busy
from orgs.models import Tenant

_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout expires


def lock_tenant(tenant_id: Any) -> Tenant:
    """Lock the tenant's row for this transaction and return it (fresh). Call inside ``transaction.atomic()``."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{settings.TENANT_LOCK_TIMEOUT_MS}ms"])
    try:
        return Tenant.objects.select_for_update(no_key=True).get(pk=tenant_id)
    except OperationalError as exc:
        if getattr(getattr(exc, "__cause__", None), "sqlstate", None) != _LOCK_NOT_AVAILABLE:
            raise
        raise Busy(
            "Another change to this tenant's organizations is in progress: try again in a moment.",
            retry_after=max(1, round(settings.TENANT_LOCK_TIMEOUT_MS / 1000)),
        ) from None
