"""The declarations part of an impact preview: what the organizations of the subtree inherit, before and after.

For every declared kind (credentials, lookup tables, components, environment variables, runtimes: the registry's
declared kinds), the part reads the effective list of each org of the subtree as the
inheritance engine decides it (``resources.inheritance.resolve``: nearest wins, the topmost lock wins over anything
below, a hide between the winner and the org leaves the name out unless the winner is locked) and compares the two
states: who starts or stops inheriting which declaration from where, which overrides in the subtree a lock above
now shadows. Settings have a part of their own (governance/impact/settings_part.py: values from → to, locks from
above, values a lock shadows).

The engine resolves one org from the declarations on its path (``path_declarations``: one query per org). Asked
for a subtree of a hundred orgs, per kind, that would be hundreds of queries; so this part reads, per kind, the
declarations of the subtree and of the root's path in ONE query, the hides of the same orgs in one more, and hands
each org its path's declarations, marked ``hidden_below`` exactly as ``path_declarations`` marks them, to the
engine's own ``resolve``. tests/governance/test_impact_move.py checks the result against ``inheritance.effective``
(and ``runtimes.selectors.effective_runtimes``) org by org.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import Q

from config import kinds
from config.kinds import Kind
from governance.impact.engine import ORGS_LISTED, Entry, OrgRef, Scope, Section, places
from orgs.models import Organization
from resources.inheritance import Effective, resolve
from resources.models import Hidden, OrgSetting
from runtimes.models import Runtime
from runtimes.selectors import offered_globals

#: A declaration as a snapshot names it: (its id, its name as declared, the org declaring it — None for the
#: platform's global runtimes —, whether it is locked).
Source = tuple[UUID, str, UUID | None, bool]


@dataclass(frozen=True)
class _Snapshot:
    orgs: dict[UUID, Organization]  # the subtree, by id
    names: dict[UUID, str]  # every org named by a source (subtree and path), by id
    # (kind key, name lower-cased, org of the subtree) -> the declaration that decides there
    winners: dict[tuple[str, str, UUID], Source]
    labels: dict[str, str]  # kind key -> label ("credential")


def _declared_kinds() -> list[Kind]:
    """The registry's declared kinds that take part in org inheritance, in a stable order."""
    return sorted((k for k in kinds.registry.declared() if hasattr(k.model, "NAME_FIELD")), key=lambda k: k.key)


def _queryset(kind: Kind) -> Any:
    if kind.model is Runtime:
        # As runtimes.selectors.effective_runtimes: the local runtimes are inherited, the global ones offered.
        return Runtime.objects.filter(kind=Runtime.Kind.LOCAL)
    return None


class SubtreeInheritance:
    """What every org of a subtree inherits, decided by the inheritance engine's ``resolve``: the declarations of
    the subtree and of its path read in one query per kind, the hides of the same orgs in one query, each org given
    its path's declarations marked ``hidden_below`` exactly as ``inheritance.path_declarations`` marks them."""

    def __init__(self, subtree: list[Organization], hide_kinds: list[str]):
        self.subtree = subtree
        self.root = root = subtree[0]
        self.ancestors = list(
            Organization.objects.filter(
                tree_id=root.tree_id, lft__lt=root.lft, rght__gt=root.rght, deleted_at__isnull=True
            ).order_by("lft")
        )
        self.names = {o.pk: o.name for o in [*self.ancestors, *subtree]}
        self.lft_of = {o.pk: o.lft for o in [*self.ancestors, *subtree]}
        self.orgs = {o.pk: o for o in [*self.ancestors, *subtree]}
        # The root's path and its subtree: every org whose declarations decide inside the subtree (by id: the
        # declarations' org index answers, whatever the size of the tree).
        self.region = Q(org_id__in=list(self.names))
        self.hides: dict[str, dict[UUID, list[str]]] = defaultdict(lambda: defaultdict(list))
        for kind_name, org_id, name in Hidden.objects.filter(self.region, kind__in=hide_kinds).values_list(
            "kind", "org_id", "name"
        ):
            self.hides[kind_name][org_id].append(name)

    def resolved(
        self, kind: Kind, only: set[UUID] | None = None
    ) -> Iterator[tuple[Organization, list[Effective], dict[str, int]]]:
        """Each org of the subtree (``only``: those) with its effective list of ``kind`` and the hides on its path
        (name -> the lft of the deepest org hiding it). One query."""
        root, lft_of = self.root, self.lft_of
        qs = kind.inheritable_queryset(_queryset(kind)).filter(self.region)
        declarations = sorted(qs, key=lambda d: (lft_of[d.org_id], getattr(d, kind.name_field).lower()))
        for d in declarations:
            d.org = self.orgs[d.org_id]  # the org as read here (what select_related("org") gives the engine)
        above = [d for d in declarations if lft_of[d.org_id] < root.lft]
        own: dict[UUID, list[Any]] = defaultdict(list)
        for d in declarations:
            if lft_of[d.org_id] >= root.lft:
                own[d.org_id].append(d)
        kind_hides = self.hides.get(kind.hidden_kind, {}) if kind.hidden_kind else {}
        ancestor_hides = [(o.lft, name) for o in self.ancestors for name in kind_hides.get(o.pk, ())]
        stack: list[Organization] = []
        for org in self.subtree:
            while stack and not (stack[-1].lft < org.lft and org.rght < stack[-1].rght):
                stack.pop()
            stack.append(org)
            if only is not None and org.pk not in only:
                continue
            path = list(above)
            deepest_hide: dict[str, int] = {}
            for lft, name in ancestor_hides:
                deepest_hide[name] = max(deepest_hide.get(name, 0), lft)
            for node in stack:
                path.extend(own.get(node.pk, ()))
                for name in kind_hides.get(node.pk, ()):
                    deepest_hide[name] = max(deepest_hide.get(name, 0), node.lft)
            if kind.hidden_kind:
                # As path_declarations: a hide of the name below the declaration's org, on this org's path.
                for d in path:
                    d.hidden_below = deepest_hide.get(d.declared_name.lower(), 0) > lft_of[d.org_id]
            yield org, resolve(path, org), deepest_hide

    def offered_globals(self) -> list[Runtime]:
        """The global runtimes offered to the tenant (one query); an org sees those not hidden on its path and not
        shadowed by a local runtime of the same name (runtimes.selectors.effective_runtimes)."""
        return list(offered_globals(self.root.tenant_id).order_by("name"))


def hidden_kinds() -> list[str]:
    return [k.hidden_kind for k in _declared_kinds() if k.hidden_kind]


class DeclarationPart:
    """Which inherited declarations and settings change for the organizations of the subtree."""

    key = "declarations"
    title = "What the organizations below inherit"

    def capture(self, scope: Scope) -> _Snapshot:
        subtree = scope.subtree()
        if not subtree:
            return _Snapshot({}, {}, {}, {})
        bulk = SubtreeInheritance(subtree, hidden_kinds())
        winners: dict[tuple[str, str, UUID], Source] = {}
        labels: dict[str, str] = {}
        globals_ = bulk.offered_globals()
        for kind in _declared_kinds():
            labels[kind.key] = kind.label
            if kind.model is OrgSetting:
                continue  # settings are the settings part's (governance/impact/settings_part.py)
            for org, decided, deepest_hide in bulk.resolved(kind):
                for e in decided:
                    winners[(kind.key, e.name.lower(), org.pk)] = _source(e.item)
                if kind.model is Runtime:
                    # The offered global runtimes, unless hidden here or above or shadowed by a local one.
                    for runtime in globals_:
                        name = runtime.name.lower()
                        if name in deepest_hide or (kind.key, name, org.pk) in winners:
                            continue
                        winners[(kind.key, name, org.pk)] = (runtime.pk, runtime.name, None, False)
        return _Snapshot(orgs={o.pk: o for o in subtree}, names=bulk.names, winners=winners, labels=labels)

    def compare(self, before: _Snapshot, after: _Snapshot, scope: Scope) -> Section:
        orgs = {**before.orgs, **after.orgs}
        names = {pk: scope.name_of(pk, name) for pk, name in {**before.names, **after.names}.items()}
        labels = {**before.labels, **after.labels}
        order = {pk: org.lft for pk, org in after.orgs.items()} or {pk: o.lft for pk, o in before.orgs.items()}

        def lft(pk: UUID) -> int:
            return order.get(pk, 0)

        inside = set(orgs)
        groups: dict[tuple[str, str, str, Source | None, Source | None], list[UUID]] = defaultdict(list)
        left_out: set[UUID] = set()
        for key in sorted(set(before.winners) | set(after.winners), key=lambda k: (k[0], k[1], lft(k[2]))):
            kind_key, name, org_id = key
            was, now = before.winners.get(key), after.winners.get(key)
            if was == now:
                continue
            if not scope.shows(org_id):
                left_out.add(org_id)
                continue
            groups[(_change_kind(was, now, inside), kind_key, name, was, now)].append(org_id)
        entries = [
            self._entry(change, labels.get(kind_key, kind_key), was, now, [orgs[o] for o in where], names, scope)
            for (change, kind_key, _name, was, now), where in groups.items()
        ]
        return Section(self.key, self.title, entries, left_out=len(left_out))

    def _entry(
        self,
        change: str,
        label: str,
        was: Source | None,
        now: Source | None,
        where: list[Organization],
        names: dict[UUID, str],
        scope: Scope,
    ) -> Entry:
        place = places(where)
        subject = f"{label} “{(now or was or (None, '?'))[1]}”"
        if change == "inherits":
            text = f"{place} start inheriting {subject} {_from(now, names)}"
        elif change == "stops_inheriting":
            text = f"{place} stop inheriting {subject} {_from(was, names)}"
        elif change == "shadowed":
            text = f"{place}: the override of {subject} {_from(was, names)} is shadowed by the lock {_from(now, names)}"
        elif change == "unshadowed":
            text = f"{place}: the override of {subject} {_from(now, names)} applies again (no lock above)"
        else:
            text = f"{place}: {subject} comes {_from(now, names)} instead of {_from(was, names)}"
        return Entry(
            kind=change,
            text=text,
            data={
                "declaration_kind": label,
                "name": (now or was or (None, ""))[1],
                "before": _source_dict(was, names, scope),
                "after": _source_dict(now, names, scope),
                "orgs": [OrgRef(o.pk, o.name).as_dict() for o in where[:ORGS_LISTED]],
                "org_count": len(where),
            },
        )


def _source(item: Any) -> Source:
    return (item.pk, item.declared_name, item.org_id, bool(item.locked))


def _change_kind(was: Source | None, now: Source | None, inside: set[UUID]) -> str:
    if was is None:
        return "inherits"
    if now is None:
        return "stops_inheriting"
    if _shadowed(was, now, inside):
        return "shadowed"
    if was[3] and was[2] not in inside and now[2] in inside:
        return "unshadowed"
    return "changes"


def _shadowed(was: Source | None, now: Source | None, inside: set[UUID]) -> bool:
    """An override declared in the subtree decided before; a lock from above decides now."""
    return was is not None and now is not None and was[2] in inside and now[3] and now[2] not in inside and was != now


def _from(source: Source | None, names: dict[UUID, str]) -> str:
    if source is None:
        return "from nowhere"
    if source[2] is None:
        return "from the platform"
    return f"from {names.get(source[2], 'an organization')}"


def _source_dict(source: Source | None, names: dict[UUID, str], scope: Scope) -> dict[str, Any] | None:
    if source is None:
        return None
    org = None
    if source[2] is not None:  # an org the viewer cannot see: named by the words of ``names``, its id withheld
        org = {"id": str(source[2]) if scope.shows(source[2]) else None, "name": names.get(source[2], "")}
    return {"id": str(source[0]), "name": source[1], "org": org, "locked": source[3]}
