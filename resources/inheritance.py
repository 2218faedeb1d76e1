"""The inheritance engine shared by every declared resource (docs/DESIGN.md §3, "Inheritance and override").

The effective list of a kind for org X is what X and its ancestors declare, by name (case-insensitive):
- a locked declaration wins over everything below it (the topmost lock, if there are several);
- otherwise the nearest declaration wins, and ``overrides`` names the one it shadows;
- a name hidden (``Hidden``) at X or at an org between the winner and X is left out, unless the winner is locked.

``effective()`` costs ONE query whatever the depth: the declarations on X's path (a range condition on the tree),
each annotated with whether a hide below it on the path exists.

Which rows of a model take part, which ``Hidden.kind`` hides them and which field names them come from the kind's
registry entry (config/kinds.py, filled by resources/kinds.py): every function here narrows whatever queryset it is
given to the entry's inheritable rows, so a component's own environment variables can never leak into an org's
effective list, whichever caller forgets to filter them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.functions import Lower

from config import kinds
from orgs.models import Organization
from resources.models import Declaration, Hidden


@dataclass(frozen=True)
class Effective:
    """One item of an effective list, as seen from ``at``."""

    item: Any  # the Declaration
    at: Organization
    inherited: bool  # declared above ``at``
    locked: bool  # itself locked, so nothing below may override or hide it
    overrides: UUID | None  # the declaration above that this one shadows

    @property
    def org(self) -> Organization:
        return self.item.org

    @property
    def name(self) -> str:
        return self.item.declared_name


def path_declarations(model: type[Declaration], org: Organization, queryset: QuerySet | None = None) -> QuerySet:
    """Every declaration of ``model`` on ``org``'s path (root first), marked ``hidden_below`` when a hide of its
    name exists below its org on the path: one query when evaluated."""
    kind = kinds.of(model)
    qs = kind.inheritable_queryset(queryset).filter(
        org__tree_id=org.tree_id, org__lft__lte=org.lft, org__rght__gte=org.rght, org__deleted_at__isnull=True
    )
    if kind.hidden_kind:
        hides = Hidden.objects.filter(
            kind=kind.hidden_kind,
            name=Lower(OuterRef(kind.name_field)),
            org__tree_id=org.tree_id,
            org__lft__gt=OuterRef("org__lft"),
            org__lft__lte=org.lft,
            org__rght__gte=org.rght,
        )
        qs = qs.annotate(hidden_below=Exists(hides))
    return qs.select_related("org").order_by("org__lft", kind.name_field)


def resolve(declarations: list[Any], org: Organization) -> list[Effective]:
    """Turn the path's declarations (root first) into the effective list at ``org``, sorted by name."""
    by_name: dict[str, list[Any]] = {}
    for item in declarations:
        by_name.setdefault(item.declared_name.lower(), []).append(item)
    result = []
    for chain in by_name.values():
        locked = next((item for item in chain if item.locked), None)
        if locked is not None:
            winner, above = locked, None
        else:
            winner = chain[-1]
            above = chain[-2].pk if len(chain) > 1 else None
            if getattr(winner, "hidden_below", False):
                continue
        result.append(
            Effective(
                item=winner,
                at=org,
                inherited=winner.org_id != org.pk,
                locked=winner.locked,
                overrides=above,
            )
        )
    return sorted(result, key=lambda e: e.name.lower())


def effective(model: type[Declaration], org: Organization, queryset: QuerySet | None = None) -> list[Effective]:
    """What ``org`` sees of ``model`` (``queryset``, e.g. a policy.visible one, narrows it further): one query."""
    return resolve(list(path_declarations(model, org, queryset)), org)


def _scope(model: type[Declaration], queryset: QuerySet | None) -> tuple[QuerySet, str]:
    kind = kinds.of(model)
    return kind.inheritable_queryset(queryset), kind.name_field


def locked_above(model: type[Declaration], org: Organization, name: str, queryset: QuerySet | None = None) -> Any:
    """The locked declaration of ``name`` at a proper ancestor of ``org``, if any."""
    qs, name_field = _scope(model, queryset)
    return (
        qs.filter(
            org__tree_id=org.tree_id,
            org__lft__lt=org.lft,
            org__rght__gt=org.rght,
            locked=True,
            **{f"{name_field}__iexact": name},
        )
        .select_related("org")
        .order_by("org__lft")
        .first()
    )


def declared_above(model: type[Declaration], org: Organization, name: str, queryset: QuerySet | None = None) -> bool:
    qs, name_field = _scope(model, queryset)
    return qs.filter(
        org__tree_id=org.tree_id,
        org__lft__lt=org.lft,
        org__rght__gt=org.rght,
        org__deleted_at__isnull=True,
        **{f"{name_field}__iexact": name},
    ).exists()


def below(model: type[Declaration], org: Organization, name: str, queryset: QuerySet | None = None) -> list[Any]:
    """Declarations of ``name`` in ``org``'s proper descendants: what a lock at ``org`` would contradict."""
    qs, name_field = _scope(model, queryset)
    return list(
        qs.filter(
            org__tree_id=org.tree_id,
            org__lft__gt=org.lft,
            org__rght__lt=org.rght,
            **{f"{name_field}__iexact": name},
        ).select_related("org")
    )


def hidden_below(kind: str, org: Organization, name: str) -> list[Hidden]:
    return list(
        Hidden.objects.filter(
            kind=kind, name=name.lower(), org__tree_id=org.tree_id, org__lft__gt=org.lft, org__rght__lt=org.rght
        ).select_related("org")
    )
