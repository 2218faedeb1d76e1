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
from typing import Any
from uuid import UUID

from django.db.models import Q

from governance.impact.engine import ORGS_LISTED, Entry, OrgRef, Scope, Section, _places
from orgs.models import Organization
from resources.inheritance import resolve
from resources.models import OrgSetting
from resources.settings_registry import REGISTRY

#: A value is shown in at most this many characters.
VALUE_SHOWN = 80


@dataclass(frozen=True)
class _Decided:
    value: Any
    locked_above: bool  # the value is locked by an org above this one: it cannot be changed here
    set_here: bool  # the value decided here is the one set at this org


@dataclass(frozen=True)
class _Settings:
    orgs: dict[UUID, Organization]
    decided: dict[tuple[UUID, str], _Decided]  # (org, key); a key left out has its default
    own: dict[tuple[UUID, str], Any]  # values set at each org (deciding or not)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= VALUE_SHOWN else text[: VALUE_SHOWN - 1] + "…"


class SettingsPart:
    key = "settings"
    title = "Settings that change below"

    def capture(self, scope: Scope) -> _Settings:
        orgs = scope.subtree()
        if not orgs:
            return _Settings({}, {}, {})
        root = orgs[0]
        on_path = Q(org__lft__lte=root.lft, org__rght__gte=root.rght) | Q(
            org__lft__gt=root.lft, org__rght__lt=root.rght
        )
        rows = list(
            OrgSetting.objects.filter(on_path, org__tree_id=root.tree_id, org__deleted_at__isnull=True)
            .filter(key__in=list(REGISTRY))
            .select_related("org")
            .order_by("org__lft", "key")
        )
        above = [row for row in rows if row.org.lft < root.lft]  # the root's ancestors
        by_org: dict[UUID, list[OrgSetting]] = defaultdict(list)
        for row in rows:
            if row.org.lft >= root.lft:
                by_org[row.org_id].append(row)
        decided: dict[tuple[UUID, str], _Decided] = {}
        own: dict[tuple[UUID, str], Any] = {}
        stack: list[tuple[Organization, list[OrgSetting]]] = []  # the path from the root down to the org
        for org in orgs:
            while stack and stack[-1][0].rght < org.lft:
                stack.pop()
            stack.append((org, by_org.get(org.pk, [])))
            path = above + [row for _, declared in stack for row in declared]
            for effective in resolve(path, org):
                item = effective.item
                decided[(org.pk, item.key)] = _Decided(
                    value=item.value, locked_above=item.locked and item.org_id != org.pk, set_here=item.org_id == org.pk
                )
            for row in by_org.get(org.pk, []):
                own[(org.pk, row.key)] = row.value
        return _Settings(orgs={o.pk: o for o in orgs}, decided=decided, own=own)

    def compare(self, before: _Settings, after: _Settings, scope: Scope) -> Section:
        orgs = {**before.orgs, **after.orgs}
        order = sorted(orgs, key=lambda pk: (orgs[pk].tree_id, orgs[pk].lft))
        groups: dict[tuple[str, str, str, str], list[UUID]] = defaultdict(list)
        values: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        for key, spec in REGISTRY.items():
            for pk in order:
                if pk not in before.orgs or pk not in after.orgs:
                    continue  # an org that leaves or joins the subtree is not compared here
                was = before.decided.get((pk, key), _Decided(spec.default, False, False))
                now = after.decided.get((pk, key), _Decided(spec.default, False, False))
                if was.value != now.value:
                    group = (key, "changes", _shown(was.value), _shown(now.value))
                    groups[group].append(pk)
                    values[group] = (was.value, now.value)
                if was.locked_above != now.locked_above:
                    groups[(key, "locked" if now.locked_above else "unlocked", "", "")].append(pk)
                had, has = before.own.get((pk, key), ...), after.own.get((pk, key), ...)
                if had is not ... and has is not ... and was.set_here != now.set_here:
                    kind = "applies_again" if now.set_here else "shadowed"
                    groups[(key, kind, _shown(has), "")].append(pk)
        entries = [self._entry(group, [orgs[pk] for pk in where], values.get(group)) for group, where in groups.items()]
        return Section(self.key, self.title, entries)

    def _entry(self, group: tuple[str, str, str, str], where: list[Organization], values: Any) -> Entry:
        key, kind, first, second = group
        label = REGISTRY[key].label
        place = _places(where)
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
