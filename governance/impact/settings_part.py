"""The settings part of an impact preview: which organizations' effective settings change (from → to), which become
locked or unlocked from above, and which values set below become shadowed by a lock (or apply again).

Every setting of the registry (resources/settings_registry.py) is read for every organization of the scope's
subtree, decided by the inheritance engine's own ``resolve`` (resources/inheritance.py, what ``effective_settings``
uses): nearest value wins, a lock above wins over anything below. Three queries whatever the size of the subtree:
the subtree's orgs (``Scope.subtree``: the root read again, then its subtree), and every setting declared on the
root's path or inside its subtree; each org's path is then walked in memory, in tree order.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from django.db.models import F, Q

from governance.impact.engine import ORGS_LISTED, Entry, OrgRef, Scope, Section, places
from orgs.models import Organization
from resources.inheritance import resolve
from resources.models import OrgSetting
from resources.settings_registry import REGISTRY

#: A value is shown in at most this many characters.
VALUE_SHOWN = 80


@dataclass(frozen=True)
class _Org:
    """What the part needs of an org (read as a row: the subtree may hold 100k orgs)."""

    pk: UUID
    name: str
    tree_id: int
    lft: int
    rght: int


#: Per key: the value in force, whether it is locked, the org that sets it (a key left out has its default). One
#: mapping per distinct path of declarations, shared by every org below that declares nothing more.
_Decided = dict[str, tuple[Any, bool, UUID]]
_NOTHING: _Decided = {}


@dataclass(frozen=True)
class _Settings:
    orgs: dict[UUID, _Org]
    decided: dict[UUID, _Decided]
    own: dict[tuple[UUID, str], Any]  # values set at each org (deciding or not)


def _shown(value: Any) -> str:
    if value is None:
        return "(not set)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= VALUE_SHOWN else text[: VALUE_SHOWN - 1] + "…"


def _subtree(root_id: UUID) -> list[_Org]:
    """The root's live subtree as it is now (two queries), root first, in tree order."""
    root = Organization.objects.filter(pk=root_id).values_list("tree_id", "lft", "rght").first()
    if root is None:
        return []
    tree_id, lft, rght = root
    rows = (
        Organization.objects.alive()
        .filter(tree_id=tree_id, lft__gte=lft, rght__lte=rght)
        .order_by("lft")
        .values_list("pk", "name", "tree_id", "lft", "rght")
    )
    return [_Org(*row) for row in rows]


class SettingsPart:
    key = "settings"
    title = "Settings that change below"

    def capture(self, scope: Scope) -> _Settings:
        orgs = _subtree(scope.root.pk)
        if not orgs:
            return _Settings({}, {}, {})
        root = orgs[0]
        on_path = Q(org__lft__lte=root.lft, org__rght__gte=root.rght) | Q(
            org__lft__gt=root.lft, org__rght__lt=root.rght
        )
        rows: list[Any] = list(  # OrgSetting rows, each with its org's ``org_lft``
            OrgSetting.objects.filter(on_path, org__tree_id=root.tree_id, org__deleted_at__isnull=True)
            .filter(key__in=list(REGISTRY))
            .annotate(org_lft=F("org__lft"))
            .only("id", "org_id", "key", "value", "locked")
            .order_by("org__lft", "key")
        )
        above = [row for row in rows if row.org_lft < root.lft]  # the root's ancestors
        by_org: dict[UUID, list[OrgSetting]] = defaultdict(list)
        for row in rows:
            if row.org_lft >= root.lft:
                by_org[row.org_id].append(row)
        decided: dict[UUID, _Decided] = {}
        own: dict[tuple[UUID, str], Any] = {}
        resolved: dict[int, _Decided] = {}  # by the path's identity: orgs below that declare nothing share it
        kept: list[list[OrgSetting]] = []
        stack: list[tuple[_Org, list[OrgSetting]]] = []  # the path from the root down: each org, its path's rows
        for org in orgs:
            while stack and stack[-1][0].rght < org.lft:
                stack.pop()
            here = by_org.get(org.pk, [])
            above_here = stack[-1][1] if stack else above
            path = above_here + here if here else above_here
            stack.append((org, path))
            if id(path) not in resolved:
                kept.append(path)  # alive until the end, so that no other list takes its id
                # ``resolve`` reads the org only for the ``at``/``inherited`` of its answers, which are not used here.
                effective = resolve(path, cast(Organization, org))
                resolved[id(path)] = {e.item.key: (e.item.value, e.item.locked, e.item.org_id) for e in effective}
            decided[org.pk] = resolved[id(path)]
            for row in here:
                own[(org.pk, row.key)] = row.value
        return _Settings(orgs={o.pk: o for o in orgs}, decided=decided, own=own)

    def compare(self, before: _Settings, after: _Settings, scope: Scope) -> Section:
        orgs = {**before.orgs, **after.orgs}
        groups: dict[tuple[str, str, str, str], list[UUID]] = defaultdict(list)
        values: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        shown: dict[int, str] = {}  # values are shared by the orgs that inherit them: each shown once

        def words(value: Any) -> str:
            if id(value) not in shown:
                shown[id(value)] = _shown(value)
            return shown[id(value)]

        def differences(
            pk: UUID, was_here: _Decided, now_here: _Decided
        ) -> list[tuple[tuple[str, str, str, str], Any]]:
            found: list[tuple[tuple[str, str, str, str], Any]] = []
            for key, spec in REGISTRY.items():
                was, now = was_here.get(key), now_here.get(key)
                if was == now:
                    continue
                was_value, was_locked, was_org = was or (spec.default, False, None)
                now_value, now_locked, now_org = now or (spec.default, False, None)
                if was_value != now_value:
                    found.append(((key, "changes", words(was_value), words(now_value)), (was_value, now_value)))
                locked_above = (was_locked and was_org != pk, now_locked and now_org != pk)
                if locked_above[0] != locked_above[1]:
                    found.append(((key, "locked" if locked_above[1] else "unlocked", "", ""), None))
                set_here = (was_org == pk, now_org == pk)
                if set_here[0] != set_here[1] and (pk, key) in before.own and (pk, key) in after.own:
                    kind = "applies_again" if set_here[1] else "shadowed"
                    found.append(((key, kind, words(after.own[(pk, key)]), ""), None))
            return found

        # An org that sets nothing itself differs as every such org with the same two mappings does: decided once.
        owners = {pk for pk, _ in before.own} | {pk for pk, _ in after.own}
        alike: dict[tuple[int, int], list[tuple[tuple[str, str, str, str], Any]]] = {}
        left_out = 0
        for pk in after.orgs:  # in tree order (as it is after the change): each group's orgs topmost first
            if pk not in before.orgs:
                continue  # an org that joins the subtree (or leaves it) is not compared here
            was_here, now_here = before.decided.get(pk, _NOTHING), after.decided.get(pk, _NOTHING)
            if was_here is now_here:
                continue
            if pk in owners:
                found = differences(pk, was_here, now_here)
            else:
                pair = (id(was_here), id(now_here))
                if pair not in alike:
                    alike[pair] = differences(pk, was_here, now_here)
                found = alike[pair]
            if not scope.shows(pk):  # counted, not named
                left_out += bool(found)
                continue
            for group, change in found:
                groups[group].append(pk)
                if change is not None:
                    values[group] = change
        order = list(REGISTRY)
        entries = []
        for group in sorted(groups, key=lambda g: (order.index(g[0]), g[1], g[2], g[3])):
            where = [orgs[pk] for pk in groups[group]]
            entries.append(self._entry(group, where, values.get(group)))
        return Section(self.key, self.title, entries, left_out=left_out)

    def _entry(self, group: tuple[str, str, str, str], where: list[_Org], values: Any) -> Entry:
        key, kind, first, second = group
        label = REGISTRY[key].label
        place = places(where)
        text = {
            "changes": f"{label}: {first} → {second} in {place}",
            "locked": f"{label} becomes locked from above in {place}: it can no longer be changed there",
            "unlocked": f"{label} is no longer locked from above in {place}: it can be changed there again",
            "shadowed": f"{label} set in {place} ({first}) is shadowed by a lock above",
            "applies_again": f"{label} set in {place} ({first}) applies again",
        }[kind]
        data: dict[str, Any] = {
            "key": key,
            "orgs": [OrgRef(o.pk, o.name).as_dict() for o in where[:ORGS_LISTED]],
            "org_count": len(where),
        }
        if values is not None:
            data["from"], data["to"] = values
        return Entry(kind=kind, text=text, data=data)
