"""The inheritance engine shared by every declared resource (DESIGN.md §3, "Inheritance and override").

The effective list of a kind for org X is what X and its ancestors declare, by name (case-insensitive):
- a locked declaration wins over everything below it (the topmost lock, if there are several);
- otherwise the nearest declaration wins, and ``overrides`` names the one it shadows;
- a name hidden (``Hidden``) at X or at an org between the winner and X is left out, unless the winner is locked.

``effective()`` costs ONE query whatever the depth: the declarations on X's path (a range condition on the tree),
each annotated with whether a hide below it on the path exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.functions import Lower

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
    qs = queryset if queryset is not None else model.objects.all()
    qs = qs.filter(
        org__tree_id=org.tree_id, org__lft__lte=org.lft, org__rght__gte=org.rght, org__deleted_at__isnull=True
    )
    if model.KIND:
        hides = Hidden.objects.filter(
            kind=model.KIND,
            name=Lower(OuterRef(model.NAME_FIELD)),
            org__tree_id=org.tree_id,
            org__lft__gt=OuterRef("org__lft"),
            org__lft__lte=org.lft,
            org__rght__gte=org.rght,
        )
        qs = qs.annotate(hidden_below=Exists(hides))
    return qs.select_related("org").order_by("org__lft", model.NAME_FIELD)


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
    return resolve(list(path_declarations(model, org, queryset)), org)


def locked_above(model: type[Declaration], org: Organization, name: str, queryset: QuerySet | None = None) -> Any:
    """The locked declaration of ``name`` at a proper ancestor of ``org``, if any."""
    qs = queryset if queryset is not None else model.objects.all()
    return (
        qs.filter(
            org__tree_id=org.tree_id,
            org__lft__lt=org.lft,
            org__rght__gt=org.rght,
            locked=True,
            **{f"{model.NAME_FIELD}__iexact": name},
        )
        .select_related("org")
        .order_by("org__lft")
        .first()
    )


def declared_above(model: type[Declaration], org: Organization, name: str, queryset: QuerySet | None = None) -> bool:
    qs = queryset if queryset is not None else model.objects.all()
    return qs.filter(
        org__tree_id=org.tree_id,
        org__lft__lt=org.lft,
        org__rght__gt=org.rght,
        org__deleted_at__isnull=True,
        **{f"{model.NAME_FIELD}__iexact": name},
    ).exists()


def below(model: type[Declaration], org: Organization, name: str, queryset: QuerySet | None = None) -> list[Any]:
    """Declarations of ``name`` in ``org``'s proper descendants: what a lock at ``org`` would contradict."""
    qs = queryset if queryset is not None else model.objects.all()
    return list(
        qs.filter(
            org__tree_id=org.tree_id,
            org__lft__gt=org.lft,
            org__rght__lt=org.rght,
            **{f"{model.NAME_FIELD}__iexact": name},
        ).select_related("org")
    )


def hidden_below(kind: str, org: Organization, name: str) -> list[Hidden]:
    return list(
        Hidden.objects.filter(
            kind=kind, name=name.lower(), org__tree_id=org.tree_id, org__lft__gt=org.lft, org__rght__lt=org.rght
        ).select_related("org")
    )
