"""No lost updates (docs/DESIGN.md §4.9): every update re-reads its row under a lock and saves only what changed, and
the faces carry the version they read so a stale edit is refused instead of silently undoing someone's change.

Services::

    with transaction.atomic():
        lock_tenant(...)                                   # where the kind takes the tenant lock, first
        item = lock_for_update(item, version)              # fresh row FOR UPDATE; Stale if version is not current
        changes = save_changes(item, {"name": name})      # only the changed columns, version + 1

Faces: the API sends ``ETag: "<version>"`` on detail responses and passes ``if_match(request)`` as ``version``;
console edit forms carry the version they were opened at in a hidden field.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, TypeVar

from django.apps import apps
from django.core.exceptions import ObjectDoesNotExist
from django.db import models

from config.errors import NotFound, Stale

M = TypeVar("M", bound=models.Model)
Versions = int | Collection[int] | None


class Versioned(models.Model):
    """A row that carries the number of times it was changed: the ETag of its API representation."""

    version = models.PositiveIntegerField(
        default=1, editable=False, help_text="Raised by one at each change; the API's ETag and If-Match."
    )

    class Meta:
        abstract = True


def _version(obj: models.Model) -> int:
    """The row's version; TypeError for a model that is not Versioned (its writes cannot take ``version=``)."""
    if not isinstance(obj, Versioned):
        raise TypeError(f"{obj._meta.label} has no version column: pass version=None.")
    return obj.version


def _expected(version: Versions) -> frozenset[int] | None:
    if version is None:
        return None
    if isinstance(version, int):
        return frozenset({version})
    return frozenset(version)


def last_change(obj: models.Model) -> tuple[str | None, Any]:
    """Who changed ``obj`` last and when, from the audit log (None, None when nothing was recorded)."""
    audit_event = apps.get_model("access", "AuditEvent")
    row = (
        audit_event.objects.filter(target_type=obj._meta.label_lower, target_id=str(obj.pk))
        .order_by("-created_at")
        .values_list("actor_name", "created_at")
        .first()
    )
    return (row[0] or "system", row[1]) if row else (None, None)


def stale(obj: models.Model) -> Stale:
    changed_by, changed_at = last_change(obj)
    return Stale(version=_version(obj), changed_by=changed_by, changed_at=changed_at)


def lock_for_update(obj: M, version: Versions = None) -> M:
    """``obj``'s row read again ``FOR UPDATE`` (call inside ``transaction.atomic``, after the tenant lock where the
    write takes one). NotFound when the row is gone; Stale when ``version`` (one number, or the numbers an
    ``If-Match`` listed) does not include the row's. Relations the caller had loaded are kept when they still
    point at the same row, so the service does not fetch them again."""
    model = type(obj)
    try:
        fresh = model._base_manager.select_for_update().get(pk=obj.pk)
    except ObjectDoesNotExist:
        raise NotFound() from None
    for name, related in obj._state.fields_cache.items():
        field = model._meta.get_field(name)
        # a many-to-one or one-to-one (a ForeignKey: a column on this row) that still points at the same row
        if isinstance(field, models.ForeignKey) and getattr(fresh, field.attname) == getattr(obj, field.attname):
            fresh._state.fields_cache[name] = related
    expected = _expected(version)
    if expected is not None and _version(fresh) not in expected:
        raise stale(fresh)
    return fresh


def check_version(obj: models.Model, version: Versions) -> None:
    """Stale unless ``obj`` (a row the caller just locked) is at one of ``version``; nothing to check for None."""
    expected = _expected(version)
    if expected is not None and _version(obj) not in expected:
        raise stale(obj)


def save_changes(obj: models.Model, fields: dict[str, Any], *, also: Iterable[str] = ()) -> dict[str, list[Any]]:
    """Set ``fields`` on ``obj`` (a row locked by ``lock_for_update``) and save only those that changed, the
    version raised by one and ``auto_now`` columns; ``also`` names columns changed by the caller beside them (e.g.
    encrypted secrets, which never appear in the returned diff). The diff ``{field: [old, new]}`` is for the audit
    event; nothing is written when nothing changed."""
    changes = {name: [getattr(obj, name), new] for name, new in fields.items() if getattr(obj, name) != new}
    extra = list(also)
    if not changes and not extra:
        return {}
    for name, (_, new) in changes.items():
        setattr(obj, name, new)
    _save_raised(obj, [*changes, *extra])
    return changes


def touch(obj: models.Model) -> None:
    """Raise the version of ``obj`` (a row locked by ``lock_for_update``) whose parts kept in other tables changed
    (a team's members, a component's development team, a task's shares): an ETag or form read before is stale."""
    _save_raised(obj, [])


def _save_raised(obj: models.Model, update_fields: list[str]) -> None:
    """Save ``update_fields``, the version raised by one and the ``auto_now`` columns."""
    if isinstance(obj, Versioned):
        obj.version += 1
        update_fields.append("version")
    update_fields += [
        f.name for f in obj._meta.concrete_fields if getattr(f, "auto_now", False) and f.name not in update_fields
    ]
    obj.save(update_fields=update_fields)


# -- HTTP: ETag / If-Match ----------------------------------------------------------------------------------------


def etag(obj: models.Model) -> str:
    return f'"{_version(obj)}"'


def parse_if_match(header: str | None) -> frozenset[int] | None:
    """The versions an ``If-Match`` header accepts: None when absent or ``*`` (any); otherwise the strong ETags it
    lists. Weak or malformed tags match nothing (RFC 9110 compares If-Match strongly), so they answer 412."""
    if header is None or not header.strip() or header.strip() == "*":
        return None
    versions: set[int] = set()
    for tag in header.split(","):
        tag = tag.strip()
        if len(tag) > 2 and tag[0] == tag[-1] == '"' and tag[1:-1].isdigit() and len(tag) < 20:
            versions.add(int(tag[1:-1]))
    return frozenset(versions)


def if_match(request: Any) -> frozenset[int] | None:
    return parse_if_match(request.headers.get("If-Match"))


def with_etag(response: Any, obj: models.Model) -> Any:
    response["ETag"] = etag(obj)
    return response
