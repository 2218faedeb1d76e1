"""Impact preview: what a structural change would do, shown before it is made (issue #12 §2).

There is no second implementation of the rules. A preview *makes* the change, through the very service that a
confirmed request calls (its checks, its refusals, its writes), inside a transaction that is then rolled back; each
part of the preview reads the state it reports on before and after, through the engines that decide it
(``access.policy`` for capabilities, the inheritance engine for declarations, the settings registry, placement).
A change the service would refuse is refused by its preview with the same error. What the preview reports is thus
what the change would do, given the state of the moment: applying it right after gives the same differences,
which is what the tests check (the oracle).

A confirmed change runs through ``apply``: its preview, then the change itself in the same transaction (the tenant
locked throughout), the preview's summary recorded in the change's audit event. ``observe`` takes the snapshots
around a real change (the tests' oracle).

Each part (``Part``) captures a snapshot of the state it reports on and compares two snapshots into a ``Section``.
The capability part is here; ``governance.impact.parts.PARTS`` lists every part, in the order a preview shows them
(callers pass it: the engine imports no part).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from uuid import UUID

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from access import audit, policy
from access.models import OrgTeamGrant, OrgUserGrant
from access.vocabulary import label as capability_label
from orgs.locks import lock_tenant
from orgs.models import Organization, Project

T = TypeVar("T")

#: Orgs listed by name under one capability change; the others are counted.
ORGS_LISTED = 20
#: Entries of a section kept in an audit event's summary; the others are counted.
AUDITED_ENTRIES = 50
#: An org named where the viewer may not see it (the source of an inherited declaration).
HIDDEN_ORG = "an organization you cannot see"


@dataclass
class Scope:
    """Where a change may make a difference.

    ``root``: the org whose subtree the change touches (the moved org, the org whose inheritance changes, the org of
    the grant removed); its subtree is read again after the change, since a move renumbers it.
    ``users``: whose capabilities to compare besides the holders of grants on the root's path (found here, before
    and after): the holder of a grant being removed, the members of its team.
    ``project``: a project whose own capabilities change (a project grant being removed).
    ``moved_from`` / ``moved_to``: the old and new parent of a move (parts that follow runs or runtimes read both).
    ``viewer``: who asks. A preview shows them only what they may see: ``hidden`` (read by ``preview`` before the
    change, what the viewer sees when they ask) holds the orgs of the subtree they cannot see (a subtree below a cut
    of access inheritance, for an org admin locking a setting above it); each part leaves those orgs' lines out and
    counts them (``Section.left_out``), and names no hidden org as the source of anything.
    """

    root: Organization
    users: set[Any] = field(default_factory=set)
    project: Project | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    viewer: Any = None
    hidden: frozenset[UUID] = frozenset()

    def subtree(self) -> list[Organization]:
        """The root's live subtree as it is now (one query), root first, in tree order."""
        root = Organization.objects.filter(pk=self.root.pk).first()
        if root is None:
            return []
        return list(Organization.objects.alive().filter(root.descendants_q()).order_by("lft"))

    def narrow(self) -> None:
        """Read which orgs of the subtree the viewer cannot see (one query; nothing hidden without a viewer)."""
        if self.viewer is None:
            return
        subtree = Organization.objects.alive().filter(self.root.descendants_q())
        seen = policy.visible(self.viewer, "org.view", subtree).values("pk")
        self.hidden = frozenset(subtree.exclude(pk__in=seen).values_list("pk", flat=True))

    def shows(self, org_id: UUID) -> bool:
        return org_id not in self.hidden

    def name_of(self, org_id: UUID, name: str) -> str:
        """``name``, or words that name no org when the viewer cannot see it."""
        return name if org_id not in self.hidden else HIDDEN_ORG


@dataclass(frozen=True)
class OrgRef:
    id: UUID
    name: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": str(self.id), "name": self.name}


@dataclass(frozen=True)
class Entry:
    """One line of a section: ``kind`` says what it is (``gains``, ``loses``, ``inherits``, ``shadowed`` …),
    ``text`` says it in words, ``data`` is its machine-readable form (the API's and the audit's)."""

    kind: str
    text: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    entries: list[Entry]
    #: True when the part could not look everywhere the change reaches (it says where it looked in ``note``).
    note: str = ""
    #: Organizations the change makes a difference to that the viewer cannot see: their lines are left out.
    left_out: int = 0

    @property
    def empty(self) -> bool:
        return not self.entries and not self.left_out

    @property
    def left_out_text(self) -> str:
        if not self.left_out:
            return ""
        orgs = "organization" if self.left_out == 1 else "organizations"
        return f"Changes in {self.left_out} {orgs} you cannot see are not shown."

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "note": self.note,
            "entries": [{"kind": e.kind, "text": e.text, "details": e.data} for e in self.entries],
            "left_out": self.left_out,
        }

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = defaultdict(int)
        for entry in self.entries:
            counts[entry.kind] += 1
        return {
            "counts": dict(counts),
            "entries": [e.text for e in self.entries[:AUDITED_ENTRIES]],
            "more": max(0, len(self.entries) - AUDITED_ENTRIES),
            "left_out": self.left_out,
        }


class Part(Protocol):
    key: str
    title: str

    def capture(self, scope: Scope) -> Any: ...

    def compare(self, before: Any, after: Any, scope: Scope) -> Section: ...


@dataclass(frozen=True)
class Impact:
    """What a change does: one section per part, in the order of ``parts.PARTS``."""

    change: str  # in words: "Move Sales under Europe"
    sections: list[Section]

    @property
    def empty(self) -> bool:
        return all(section.empty for section in self.sections)

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)

    def as_dict(self) -> dict[str, Any]:
        return {"change": self.change, "empty": self.empty, "sections": [s.as_dict() for s in self.sections]}

    def summary(self) -> dict[str, Any]:
        """What the audit event of the confirmed change keeps: per section its counts and its first entries."""
        return {s.key: s.summary() for s in self.sections if not s.empty}


class _RolledBack(Exception):
    def __init__(self, impact: Impact) -> None:
        self.impact = impact


def preview(change: Callable[[], Any], scope: Scope, *, describe: str, parts: Iterable[Part]) -> Impact:
    """What ``change()`` would do, without doing it: it runs inside a transaction that is rolled back. Whatever
    ``change()`` raises (Forbidden, Conflict, ValidationError, Stale …) is raised here, nothing written. It shows
    ``scope.viewer`` what they may see (``Scope.hidden``)."""
    scope.narrow()
    try:
        with transaction.atomic():
            _, impact = observe(change, scope, describe=describe, parts=parts)
            raise _RolledBack(impact)
    except _RolledBack as done:
        return done.impact


def observe(change: Callable[[], T], scope: Scope, *, describe: str, parts: Iterable[Part]) -> tuple[T, Impact]:
    """Run ``change()`` for real, with each part's snapshot taken before and after: its result and its impact. The
    caller holds the transaction (the snapshots and the change must see one state)."""
    chosen = list(parts)
    with transaction.atomic():
        before = [part.capture(scope) for part in chosen]
        result = change()
        after = [part.capture(scope) for part in chosen]
    sections = [part.compare(b, a, scope) for part, b, a in zip(chosen, before, after, strict=True)]
    return result, Impact(change=describe, sections=sections)


def apply(
    change: Callable[[], T], scope: Scope, *, describe: str, parts: Iterable[Part], action: str
) -> tuple[T, Impact]:
    """Make ``change()`` for real, its preview's summary kept in the audit event(s) of ``action`` that it records
    (``changes["impact"]``: events are append-only, so the summary must be known when the event is written). The
    tenant is locked first, for the whole transaction: nothing changes between the preview and the change."""
    parts = list(parts)
    with transaction.atomic():
        lock_tenant(scope.root.tenant_id)
        impact = preview(change, scope, describe=describe, parts=parts)
        with audit.annotating(action, {"impact": {"change": describe, **impact.summary()}}):
            result = change()
    return result, impact


# -- capabilities ----------------------------------------------------------------------------------------------------


def path_holders(org: Organization) -> set[UUID]:
    """Users holding an unexpired org grant on ``org``'s path (ancestors and itself), directly or through a team:
    the only grants whose reach into ``org``'s subtree a move or a cut can change. Two queries."""
    path = Q(
        content_object__tree_id=org.tree_id,
        content_object__lft__lte=org.lft,
        content_object__rght__gte=org.rght,
    )
    unexpired = Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    users = set(OrgUserGrant.objects.filter(path, unexpired).values_list("user_id", flat=True))
    groups = OrgTeamGrant.objects.filter(path, unexpired).values("group_id")
    users |= set(get_user_model().objects.filter(groups__in=groups).values_list("pk", flat=True))
    return users


@dataclass(frozen=True)
class _Capabilities:
    users: dict[UUID, str]  # id -> username
    orgs: dict[UUID, Organization]
    held: dict[tuple[UUID, UUID], frozenset[str]]  # (user, org) -> capabilities
    project: frozenset[tuple[UUID, frozenset[str]]]  # (user, capabilities in the scope's project)


class CapabilityPart:
    """Who gains and who loses which capability where: for each user whose grants can reach the subtree (the
    holders of grants on the root's path, before and after, and the scope's users), the capabilities the policy
    gives them in each org of the subtree, decided by ``policy.by_roles`` from their grants (one query per user,
    whatever the size of the subtree)."""

    key = "capabilities"
    title = "Who gains and who loses access"

    def capture(self, scope: Scope) -> _Capabilities:
        orgs = scope.subtree()
        if not orgs:
            return _Capabilities({}, {}, {}, frozenset())
        user_ids = path_holders(orgs[0]) | {getattr(u, "pk", u) for u in scope.users}
        users = list(
            get_user_model().objects.filter(pk__in=user_ids, is_active=True, is_superuser=False).order_by("username")
        )
        held: dict[tuple[UUID, UUID], frozenset[str]] = {}
        in_project = set()
        for user in users:
            access = policy.by_roles(user)
            access.subtree_rows  # noqa: B018 - the user's grants, loaded once: each org below is decided without a query
            for org in orgs:
                held[(user.pk, org.pk)] = access.org_capabilities(org)
            if scope.project is not None:
                in_project.add((user.pk, access.project_capabilities(scope.project)))
        return _Capabilities(
            users={u.pk: u.get_username() for u in users},
            orgs={o.pk: o for o in orgs},
            held=held,
            project=frozenset(in_project),
        )

    def compare(self, before: _Capabilities, after: _Capabilities, scope: Scope) -> Section:
        names = {**before.users, **after.users}
        orgs = {**before.orgs, **after.orgs}
        groups: dict[tuple[UUID, frozenset[str], frozenset[str]], list[UUID]] = defaultdict(list)
        left_out: set[UUID] = set()
        for user_id, org_id in sorted(set(before.held) | set(after.held), key=lambda k: (names[k[0]], _lft(orgs, k))):
            was = before.held.get((user_id, org_id), frozenset())
            now = after.held.get((user_id, org_id), frozenset())
            if was == now:
                continue
            if scope.shows(org_id):
                groups[(user_id, now - was, was - now)].append(org_id)
            else:
                left_out.add(org_id)
        entries = [
            self._entry(names[user_id], user_id, gained, lost, [orgs[o] for o in where])
            for (user_id, gained, lost), where in groups.items()
        ]
        if scope.project is not None:
            was_in = dict(before.project)
            now_in = dict(after.project)
            for user_id in sorted(set(was_in) | set(now_in), key=lambda u: names[u]):
                was, now = was_in.get(user_id, frozenset()), now_in.get(user_id, frozenset())
                if was != now:
                    entries.append(
                        self._entry(names[user_id], user_id, now - was, was - now, [], project=scope.project)
                    )
        return Section(self.key, self.title, entries, left_out=len(left_out))

    def _entry(
        self,
        username: str,
        user_id: UUID,
        gained: frozenset[str],
        lost: frozenset[str],
        where: list[Organization],
        project: Project | None = None,
    ) -> Entry:
        place = f"project {project.name}" if project is not None else places(where)
        words = []
        if gained:
            words.append("gains " + ", ".join(capability_label(c) for c in sorted(gained)))
        if lost:
            words.append("loses " + ", ".join(capability_label(c) for c in sorted(lost)))
        kind = "gains" if gained and not lost else "loses" if lost and not gained else "changes"
        return Entry(
            kind=kind,
            text=f"{username} {' and '.join(words)} in {place}",
            data={
                "user": {"id": str(user_id), "username": username},
                "gained": sorted(gained),
                "lost": sorted(lost),
                "orgs": [OrgRef(o.pk, o.name).as_dict() for o in where[:ORGS_LISTED]],
                "org_count": len(where),
                "project": {"id": str(project.pk), "name": project.name} if project is not None else None,
            },
        )


def _lft(orgs: dict[UUID, Organization], key: tuple[UUID, UUID]) -> int:
    org = orgs.get(key[1])
    return org.lft if org is not None else 0


def places(where: Sequence[Any]) -> str:
    """'Sales', 'Sales and Berlin', 'Sales and 41 orgs below it' (the first is the topmost, in tree order)."""
    if not where:
        return "no organization"
    if len(where) == 1:
        return where[0].name
    if len(where) == 2:
        return f"{where[0].name} and {where[1].name}"
    return f"{where[0].name} and {len(where) - 1} other organizations"
