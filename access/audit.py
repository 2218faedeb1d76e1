"""The audit log writer. Services call record() inside their transaction, so an event exists iff the write does."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import models

from access.middleware import current_ip
from access.models import AuditEvent
from config.actors import user_or_none

# What ``annotating()`` blocks add to the events of an action recorded inside them: governance.impact puts the
# preview's summary into the event the confirmed change records (events are append-only: it cannot be added later).
_annotations: ContextVar[tuple[tuple[str, dict[str, Any]], ...]] = ContextVar("audit_annotations", default=())


@contextmanager
def annotating(action: str, extra: dict[str, Any]) -> Iterator[None]:
    """Merge ``extra`` into the ``changes`` of every ``action`` event recorded while the block runs."""
    token = _annotations.set((*_annotations.get(), (action, extra)))
    try:
        yield
    finally:
        _annotations.reset(token)


def record(
    *,
    actor: Any,
    action: str,
    tenant: Any,
    org: Any = None,
    target: models.Model | None = None,
    target_name: str | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. ``changes`` must never hold a secret: pass only the non-secret fields that changed.

    ``target`` is the row written (whose last event tells a stale writer who changed it: config.concurrency);
    ``target_name`` labels it where its ``str()`` says little to a reader (a grant, a membership)."""
    user = user_or_none(actor)
    for annotated, extra in _annotations.get():
        if annotated == action:
            changes = {**(changes or {}), **extra}
    return AuditEvent.objects.create(
        tenant_id=getattr(tenant, "pk", tenant),
        org_id=getattr(org, "pk", org),
        actor=user,
        actor_name=user.get_username() if user else "system",
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_name=(target_name if target_name is not None else str(target) if target is not None else "")[:200],
        changes=_jsonable(changes or {}),
        ip=current_ip.get(),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def diff(instance: models.Model, fields: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [old, new]} for the fields whose value changes."""
    return {name: [getattr(instance, name), new] for name, new in fields.items() if getattr(instance, name) != new}
