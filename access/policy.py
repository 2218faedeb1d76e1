"""The one place that decides access (docs/DESIGN.md §4.1).

    can(user, capability, obj) -> bool
    visible(user, capability, queryset) -> queryset
    explain(user, capability, obj) -> Explanation

Views, serializers, admin classes and templates ask these; nothing else reads memberships, roles or grants.

Capabilities are the role vocabulary in access.roles, plus two tenant-level ones that no role can hold:
``tenant.admin`` (tenant administrators: create, move, delete and restore organizations, manage the tenant) and
``tenant.plan`` (superusers: change a tenant's plan).

Which rule decides an object is its kind's registry entry (config/kinds.py, filled by each app's kinds.py): a rule
family per model family (tenant, org, project, declared in an org, task, child of another kind), so this module
names no model of another app and a new kind is a registration, not a new branch here.

Each user gets one ``Access`` object per request (cached on the user instance that the request carries), which
loads what it needs once, so repeated checks in a request cost no query; a change is seen by the next request.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from access import fences, resolver, vocabulary
from access.roles import ALL_CAPABILITIES, SHARE_LEVELS
from access.roles import COMPONENT_PUSH as COMPONENT_PUSH  # re-exported: callers ask policy.COMPONENT_PUSH
from access.roles import TENANT_ADMIN as TENANT_ADMIN
from access.roles import TENANT_PLAN as TENANT_PLAN
from config import kinds
from config.actors import SYSTEM, require_actor
from config.errors import Forbidden, NotFound
from config.kinds import Kind, Rule, Unowned

if TYPE_CHECKING:
    from orgs.models import Organization, Project

_EVERYTHING = ALL_CAPABILITIES | {TENANT_ADMIN}
_KINDS = kinds.registry
_TEAM_ONLY = _KINDS.by_exclusive  # capability only a development team holds -> its kind (kept current by register)
# What a share of a task can give at most: when the roles give all of it already, no share is looked up.
_SHAREABLE = frozenset().union(*SHARE_LEVELS.values())


def view_capability(model: type[models.Model]) -> str:
    """The capability that makes an object of ``model`` visible at all: without it the object answers 404."""
    return _KINDS.of(model).view


class _ViewCapabilities(Mapping[str, str]):
    """``VIEW_CAPABILITY[label]``, read from the kind registry at each use (kept for callers that index it by model
    label; new code asks ``view_capability(model)`` or ``config.kinds.of(model).view``)."""

    def _table(self) -> dict[str, str]:
        return {kind.key: kind.view for kind in _KINDS.all()}

    def __getitem__(self, label: str) -> str:
        return self._table()[label]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


VIEW_CAPABILITY: Mapping[str, str] = _ViewCapabilities()


class Access:
    """What one user may do. Lazy: each fact is loaded on first use, then kept for the object's life.

    Which rule decides an object is its kind's (config/kinds.py): the family methods below (org, project,
    declared, task, child) are the policies per model family, asked through ``can``/``visible``/``explain``."""

    def __init__(self, user: Any):
        self.user = user
        self.is_authenticated = bool(user is not None and user.is_authenticated and user.is_active)
        self.is_superuser = self.is_authenticated and user.is_superuser
        self._subtree_rows: list[resolver.Row] | None = None
        self._org_rows: dict[tuple[UUID, UUID | None], list[resolver.Row]] = {}
        self._caps: dict[tuple[UUID, UUID | None], frozenset[str]] = {}
        self._shares: dict[UUID, frozenset[str]] | None = None
        self._team_ids: dict[type[models.Model], frozenset[Any]] = {}
        # How the user authenticated this request, and the regions that closes (access/fences.py).
        self.context = fences.context_of(user)
        self._fences: dict[UUID, tuple[fences.Fence, ...]] = {}
        self._fences_off = False

    # -- tenant facts --------------------------------------------------------------------------------------------
    @property
    def subtree_rows(self) -> list[resolver.Row]:
        """Everything the user holds anywhere (one query, on first use): grants, cuts, project grants, tenants."""
        if self._subtree_rows is None:
            self._subtree_rows = resolver.subtree_rows(self.user) if self.is_authenticated else []
        return self._subtree_rows

    @property
    def admin_tenant_ids(self) -> frozenset[UUID]:
        ids = self._tenant_ids_of_rows(("tenant_admin",))
        return ids - self._closed_tenants(ids)

    @property
    def member_tenant_ids(self) -> frozenset[UUID]:
        ids = self._tenant_ids_of_rows(("tenant_admin", "tenant_member"))
        return ids - self._closed_tenants(ids)

    def _tenant_ids_of_rows(self, kinds: tuple[str, ...] = ("tenant_admin", "tenant_member")) -> frozenset[UUID]:
        """The tenants of the user's membership rows, before fences."""
        return frozenset(r.object_id for r in self.subtree_rows if r.kind in kinds and r.object_id is not None)

    # -- authentication fences (access/fences.py) ----------------------------------------------------------------
    def fences_in(self, tenant_ids: Any) -> tuple[fences.Fence, ...]:
        """The regions of these tenants closed to the user in this request (none for superusers and SYSTEM)."""
        if self._fences_off or not self.is_authenticated or self.is_superuser:
            return ()
        context = fences.context_of(self.user)
        if context != self.context:  # the request's authentication was raised (e.g. a second factor just now)
            self.context, self._fences = context, {}
        wanted = [t for t in tenant_ids if t is not None]
        missing = [t for t in wanted if t not in self._fences]
        if missing:
            self._fences.update(fences.fences_for(self.user, self.context, missing))
        return tuple(f for t in wanted for f in self._fences.get(t, ()))

    def _closed_tenants(self, tenant_ids: frozenset[UUID]) -> frozenset[UUID]:
        return frozenset(f.tenant_id for f in self.fences_in(tenant_ids) if f.whole_tenant)

    def fence_at(self, org: Organization | None) -> fences.Fence | None:
        """The fence closing ``org`` to the user in this request, if one does."""
        if org is None:
            return None
        return next((f for f in self.fences_in([org.tenant_id]) if f.covers(org)), None)

    def _org_of(self, obj: Any) -> Any:
        """Where ``obj`` lives, for fences: the org itself, a project's or task's org, a declaration's org."""
        kind = _KINDS.of(obj)
        while kind.rule is Rule.CHILD or (kind.owner and getattr(obj, kind.owner_attname, None) is not None):
            obj = getattr(obj, kind.within if kind.rule is Rule.CHILD else kind.owner)
            kind = _KINDS.of(obj)
        if kind.rule is Rule.ORG:
            return obj
        if kind.rule is Rule.TENANT:
            return None
        place = getattr(obj, kind.within)
        if kind.rule is Rule.TASK:
            return place.org
        if kind.rule is Rule.PROJECT:
            return place
        return place

    def blocking_fence(self, obj: models.Model) -> fences.Fence | None:
        """The fence that alone keeps the user from seeing ``obj``: their roles would show it, but this request's
        authentication does not reach it (403 with the fence's code, where anyone else gets 404)."""
        kind = _KINDS.find(obj)
        if kind is None or not self.is_authenticated or self.is_superuser:
            return None
        if kind.rule is Rule.TENANT:
            fence = next((f for f in self.fences_in([obj.pk]) if f.whole_tenant), None)
        else:
            fence = self.fence_at(self._org_of(obj))
        if fence is None:
            return None
        self._fences_off = True
        try:
            seen = obj.pk in self.member_tenant_ids if kind.rule is Rule.TENANT else kind.view in self.capabilities(obj)
        finally:
            self._fences_off = False
        return fence if seen else None

    def is_tenant_admin(self, tenant_id: UUID) -> bool:
        if self.is_superuser:
            return True
        if not self.is_authenticated:
            return False
        if self._subtree_rows is None:
            # Answer from the per-org facts when they are loaded already, without the wider query.
            for rows in self._org_rows.values():
                if any(r.kind == "tenant_admin" and r.object_id == tenant_id for r in rows):
                    return not self._closed_tenants(frozenset({tenant_id}))
        return tenant_id in self.admin_tenant_ids

    # -- capabilities ------------------------------------------------------------------------------------------
    def _rows_for(self, org: Organization, project: Project | None = None) -> list[resolver.Row]:
        key = (org.pk, project.pk if project is not None else None)
        rows = self._org_rows.get(key)
        if rows is None:
            rows = self._org_rows[key] = resolver.org_rows(self.user, org, project)
        return rows

    def org_capabilities(self, org: Organization) -> frozenset[str]:
        """The user's effective capabilities in ``org``: one query on first use, none after."""
        return self._capabilities(org, None)

    def project_capabilities(self, project: Project) -> frozenset[str]:
        """The org's capabilities plus those of grants on the project itself (which flow nowhere else)."""
        return self._capabilities(project.org, project)

    def _capabilities(self, org: Organization, project: Project | None) -> frozenset[str]:
        if not self.is_authenticated or org.deleted_at is not None:
            return frozenset()
        if self.is_superuser:
            return _EVERYTHING
        if self.fence_at(org) is not None:
            return frozenset()
        key = (org.pk, project.pk if project is not None else None)
        cached = self._caps.get(key)
        if cached is None:
            if project is None and self._subtree_rows is not None:
                # The user's grants are loaded already (a list asked visible()): decide without a query.
                cached = self._from_subtree_rows(org)
            else:
                cached = _decide(self._rows_for(org, project), org).capabilities
            self._caps[key] = cached
        return cached

    def _from_subtree_rows(self, org: Organization) -> frozenset[str]:
        if org.tenant_id in self.admin_tenant_ids:
            return _EVERYTHING
        capabilities: set[str] = set()
        on_path = [
            r
            for r in self.subtree_rows
            if r.kind in ("user", "team", "cut") and r.tree_id == org.tree_id and r.lft <= org.lft <= r.rght  # type: ignore[operator]
        ]
        cuts = [r for r in on_path if r.kind == "cut"]
        for grant in on_path:
            if grant.kind == "cut":
                continue
            if not any(cut.lft > grant.lft and resolver.blocks(cut, grant) for cut in cuts):  # type: ignore[operator]
                capabilities |= grant.capabilities
        return frozenset(capabilities)

    def capabilities(self, obj: models.Model) -> frozenset[str]:
        kind = _KINDS.of(obj)
        rule = kind.rule
        if rule is Rule.ORG:
            return self.org_capabilities(obj)  # type: ignore[arg-type]
        if rule is Rule.PROJECT:
            return self.project_capabilities(obj)  # type: ignore[arg-type]
        if rule is Rule.TENANT:
            if self.is_tenant_admin(obj.pk):
                return frozenset({TENANT_ADMIN} | ({TENANT_PLAN} if self.is_superuser else set()))
            return frozenset()
        if rule is Rule.TASK:
            return self.task_capabilities(obj, kind)
        if rule is Rule.CHILD:
            return self.capabilities(getattr(obj, kind.within))
        return self.declared_capabilities(obj, kind)

    # -- tasks: the project's roles, plus shares of the task itself ----------------------------------------------
    def task_capabilities(self, task: Any, kind: Kind | None = None) -> frozenset[str]:
        project = getattr(task, (kind or _KINDS.of(task)).within)
        capabilities = self.project_capabilities(project)
        if not self.is_authenticated or project.org.deleted_at is not None or self.fence_at(project.org) is not None:
            return capabilities
        if capabilities >= _SHAREABLE:
            return capabilities  # a share could add nothing: no query for it
        return capabilities | self.shares.get(task.pk, frozenset())

    @property
    def shares(self) -> dict[UUID, frozenset[str]]:
        """Every task shared with the user or their teams, with what the shares give (from the user's facts: the
        one query of ``subtree_rows``, shared with lists)."""
        if self._shares is None:
            shares: dict[UUID, frozenset[str]] = {}
            for row in self.subtree_rows:
                if row.kind == "share":
                    shares[row.object_id] = shares.get(row.object_id, frozenset()) | row.capabilities  # type: ignore[index]
            self._shares = shares
        return self._shares

    # -- declarations: the declaring org's roles, seen from below, and development teams -------------------------
    def declared_capabilities(self, obj: Any, kind: Kind | None = None) -> frozenset[str]:
        kind = kind or _KINDS.of(obj)
        if kind.owner and getattr(obj, kind.owner_attname) is not None:
            # It goes with its owner (a component's variable): the owner's team reads it too.
            owner = getattr(obj, kind.owner)
            capabilities = self.declared_capabilities(owner)
            team = _KINDS.of(owner).team
            if team is not None and team.exclusive in capabilities:
                capabilities |= kind.owner_team_grants
            return capabilities
        org = getattr(obj, kind.within)
        if org is None and kind.unowned is not None:
            return self.unowned_capabilities(obj, kind.unowned)
        capabilities = set(self.org_capabilities(org))
        if not self.is_authenticated or org.deleted_at is not None or self.fence_at(org) is not None:
            return frozenset(capabilities)
        for capability in _KINDS.view_below - capabilities:
            if self._holds_below(capability, org):
                capabilities.add(capability)
        if kind.team is not None and obj.pk in self.team_ids(kind):
            capabilities |= kind.team.grants
        return frozenset(capabilities)

    def unowned_capabilities(self, obj: Any, unowned: Unowned) -> frozenset[str]:
        """A platform object (no org): superusers hold everything on it, members of a tenant it is offered to hold
        the kind's ``grants``, nobody else anything (it does not exist for them)."""
        if not self.is_authenticated:
            return frozenset()
        if self.is_superuser:
            return _EVERYTHING
        offered = unowned.offered_to(obj)
        if not self.member_tenant_ids:
            return frozenset()
        if offered is None or self.member_tenant_ids & frozenset(offered):
            return unowned.grants
        return frozenset()

    def _holds_below(self, capability: str, org: Organization) -> bool:
        return any(
            r.kind in ("user", "team")
            and capability in r.capabilities
            and r.tree_id == org.tree_id
            and org.lft < r.lft <= org.rght  # type: ignore[operator]
            for r in self.subtree_rows
        )

    def team_ids(self, kind: Kind) -> frozenset[Any]:
        """The objects of ``kind`` whose development team the user is on (one query, on first use)."""
        ids = self._team_ids.get(kind.model)
        if ids is None:
            team = kind.team
            ids = frozenset(team.object_ids(self.user)) if team is not None and self.is_authenticated else frozenset()
            self._team_ids[kind.model] = ids
        return ids

    def can(self, capability: str, obj: models.Model) -> bool:
        if capability == TENANT_PLAN:
            return self.is_superuser
        team_kind = _TEAM_ONLY.get(capability)
        if team_kind is not None:
            # Team membership alone decides, so no org role is loaded for it.
            return (
                _KINDS.find(obj) is team_kind
                and getattr(obj, team_kind.within).deleted_at is None
                and obj.pk in self.team_ids(team_kind)
                and self.fence_at(getattr(obj, team_kind.within)) is None
            )
        return capability in self.capabilities(obj)

    # -- lists -------------------------------------------------------------------------------------------------
    def visible(self, capability: str, queryset: models.QuerySet) -> models.QuerySet:
        """``queryset`` narrowed to the objects on which the user holds ``capability``: one filtered query (the
        user's grants, loaded once per request, become tree-range conditions), minus the fenced regions."""
        narrowed = self._visible(capability, queryset)
        if not self.is_authenticated or self.is_superuser or self._fences_off:
            return narrowed
        closed = self.fences_in(self._tenant_ids_of_rows())
        if not closed:
            return narrowed
        kind = _KINDS.of(queryset.model)
        prefix = {
            Rule.ORG: "",
            Rule.PROJECT: f"{kind.within}__",
            Rule.TASK: f"{kind.within}__org__",
            Rule.DECLARED: f"{kind.within}__",
        }.get(kind.rule)
        if prefix is None:  # tenants (closed ones are no member tenants) and children (their parents are fenced)
            return narrowed
        condition = Q()
        for fence in closed:
            condition |= fence.condition(prefix)
        return narrowed.exclude(condition)

    def _visible(self, capability: str, queryset: models.QuerySet) -> models.QuerySet:
        if not self.is_authenticated:
            return queryset.none()
        team_kind = _TEAM_ONLY.get(capability)
        if self.is_superuser and team_kind is None:
            return queryset
        kind = _KINDS.of(queryset.model)
        rule = kind.rule
        if rule is Rule.TENANT:
            ids = self.admin_tenant_ids if capability == TENANT_ADMIN else self.member_tenant_ids
            return queryset.filter(pk__in=ids)
        if rule is Rule.ORG:
            return queryset.filter(self._org_filter(capability, prefix=""))
        if rule is Rule.PROJECT:
            return queryset.filter(
                self._org_filter(capability, prefix=f"{kind.within}__") | Q(pk__in=self._project_ids(capability))
            )
        if rule is Rule.CHILD:
            parent = _KINDS.parent(kind)
            return queryset.filter(
                **{f"{kind.within}__in": self.visible(capability, parent.model._default_manager.all()).values("pk")}
            )
        if rule is Rule.TASK:
            return queryset.filter(self._task_condition(kind, capability))
        return queryset.filter(self._declared_condition(kind, capability, team_kind))

    def _project_ids(self, capability: str) -> list[Any]:
        return [
            r.object_id
            for r in self.subtree_rows
            if r.kind in ("project_user", "project_team") and capability in r.capabilities
        ]

    def _task_condition(self, kind: Kind, capability: str) -> Q:
        project = kind.within
        shared = [r.object_id for r in self.subtree_rows if r.kind == "share" and capability in r.capabilities]
        by_role = self._org_filter(capability, prefix=f"{project}__org__") | Q(
            **{f"{project}_id__in": self._project_ids(capability)}
        )
        alive = Q(**{f"{project}__org__deleted_at__isnull": True})
        if not shared:
            return alive & by_role
        # A union inside IN keeps both halves index-driven; an OR across the joined tables would make PostgreSQL
        # scan every task of every tenant (60 ms at 100k orgs instead of 2).
        manager = kind.model._default_manager
        tasks = (
            manager.filter(alive & by_role)
            .order_by()
            .values("pk")
            .union(manager.filter(alive, pk__in=shared).order_by().values("pk"))
        )
        return Q(pk__in=tasks)

    def _declared_condition(self, kind: Kind, capability: str, team_kind: Kind | None) -> Q:
        org = kind.within
        condition = self._org_filter(capability, prefix=f"{org}__")
        if capability in _KINDS.view_below:
            for r in self.subtree_rows:
                if r.kind in ("user", "team") and capability in r.capabilities:
                    condition |= Q(
                        **{f"{org}__tree_id": r.tree_id, f"{org}__lft__lte": r.lft, f"{org}__rght__gte": r.rght}
                    )
        # A development team sees its objects and what goes with them (as declared_capabilities says).
        team = None
        if kind.team is not None and capability in kind.team.grants:
            team = Q(pk__in=kind.team.object_ids(self.user))
        elif kind.owner and capability in kind.owner_team_grants:
            owner_team = _KINDS.of(kind.model._meta.get_field(kind.owner).related_model).team  # type: ignore[arg-type]
            if owner_team is not None:
                team = Q(**{f"{kind.owner_attname}__in": owner_team.object_ids(self.user)})
        if team is not None:
            condition = team if team_kind is not None else condition | team
        elif team_kind is not None:
            condition = Q(pk__in=[])  # only a team gives a team's capability, and this kind has none
        owned = Q(**{f"{org}__deleted_at__isnull": True}) & condition
        if kind.unowned is None:
            return owned
        owned &= Q(**{f"{org}__isnull": False})
        if capability in kind.unowned.grants and team_kind is None and self.member_tenant_ids:
            return owned | (Q(**{f"{org}__isnull": True}) & kind.unowned.condition(self.member_tenant_ids))
        return owned

    def _org_filter(self, capability: str, prefix: str) -> Q:
        """Orgs where ``capability`` holds: the admin tenants whole, plus each granting subtree minus the
        subtrees that an inheritance cut below the grant closes to it."""
        rows = self.subtree_rows
        condition = Q(**{f"{prefix}tenant_id__in": self.admin_tenant_ids}) if capability in _EVERYTHING else Q()
        if capability not in _EVERYTHING:
            condition = Q(pk__in=[])
        cuts = [r for r in rows if r.kind == "cut"]
        for grant in rows:
            if grant.kind not in ("user", "team") or capability not in grant.capabilities:
                continue
            subtree = Q(
                **{f"{prefix}tree_id": grant.tree_id, f"{prefix}lft__gte": grant.lft, f"{prefix}lft__lte": grant.rght}
            )
            for cut in cuts:
                if (
                    cut.tree_id == grant.tree_id
                    and grant.lft < cut.lft <= grant.rght  # type: ignore[operator]
                    and resolver.blocks(cut, grant)
                ):
                    subtree &= ~Q(**{f"{prefix}lft__gte": cut.lft, f"{prefix}lft__lte": cut.rght})
            condition |= subtree
        return condition

    # -- explanations ------------------------------------------------------------------------------------------
    def explain(self, capability: str, obj: models.Model) -> Explanation:
        kind = _KINDS.of(obj)
        fence = self.fence_at(self._org_of(obj)) if kind.rule is not Rule.TENANT else None
        if fence is not None:
            return Explanation(False, capability, [fence.detail], [])
        if kind.rule in (Rule.ORG, Rule.PROJECT):
            org = obj if kind.rule is Rule.ORG else getattr(obj, kind.within)
            project = obj if kind.rule is Rule.PROJECT else None
            if not self.is_authenticated:
                return Explanation(False, capability, ["Not signed in."], [])
            if org.deleted_at is not None:
                return Explanation(False, capability, ["The organization is deleted."], [])
            if self.is_superuser:
                return Explanation(True, capability, ["Superuser: holds every capability everywhere."], [])
            decision = _decide(self._rows_for(org, project), org)
            allowed = capability in decision.capabilities
            reasons = [line for line in decision.reasons if capability in line.capabilities or line.cut_by]
            text = [r.text for r in reasons] or ["No grant gives this capability here."]
            if decision.tenant_admin:
                text.insert(0, "Tenant administrator: holds every capability in the tenant.")
            return Explanation(allowed, capability, text, [r.as_dict() for r in decision.reasons])
        allowed = self.can(capability, obj)
        if kind.rule is Rule.TENANT:
            return Explanation(allowed, capability, ["Allowed." if allowed else "Tenant administrators only."], [])
        # A task, run or declaration: the roles where it lives, plus what only the object itself gives.
        team_kind = _TEAM_ONLY.get(capability)
        if team_kind is not None and team_kind.team is not None:
            text = [team_kind.team.exclusive_reason if allowed else team_kind.team.refusal]
            return Explanation(allowed, capability, text, [])
        while kind.rule is Rule.CHILD:
            obj = getattr(obj, kind.within)
            kind = _KINDS.of(obj)
        task = obj if kind.rule is Rule.TASK else None
        where = getattr(obj, kind.within)
        if where is None and kind.unowned is not None:
            if self.is_superuser:
                text = "Superuser: holds every capability everywhere."
            elif allowed:
                text = "The platform offers it to a tenant you belong to."
            else:
                text = "Only superusers hold this on the platform's own objects."
            return Explanation(allowed, capability, [text], [])
        base = self.explain(capability, where)
        reasons = list(base.reasons)
        if task is not None and capability in self.shares.get(task.pk, frozenset()):
            reasons.append(f"The task {task.name} is shared with you (or a team of yours) at a level that gives it.")  # type: ignore[attr-defined]
        if kind.rule is Rule.DECLARED and not base.allowed and allowed:
            reasons.append(f"You hold {capability} in an organization below {where.name}, where it applies.")
        if kind.team is not None and obj.pk in self.team_ids(kind):
            reasons.append(kind.team.member_reason)
        return Explanation(allowed, capability, reasons, base.grants)

    # -- who the user is at an org (issue #11 §1: "You here: …") ---------------------------------------------
    def standing(self, org: Organization) -> Standing:
        """Where the user's capabilities at ``org`` come from: the grants on its path (applying or cut), the
        tenant administration, and the user's project grants (``project_ids``: the caller keeps those of ``org``'s
        projects). Decided from the user's facts loaded once per request (``subtree_rows``, which the switcher of
        every org page loads anyway): no query of its own after them."""
        capabilities = self.capabilities(org)
        if not self.is_authenticated or org.deleted_at is not None:
            return Standing(capabilities=capabilities)
        if self.is_superuser:
            return Standing(capabilities=capabilities, superuser=True)
        fence = self.fence_at(org)
        if fence is not None:
            return Standing(capabilities=capabilities, fence=fence.detail)
        rows = [
            r
            for r in self.subtree_rows
            if r.kind in ("user", "team", "cut")
            and r.tree_id == org.tree_id
            and r.lft is not None
            and r.rght is not None
            and r.lft <= org.lft <= r.rght
        ]
        project_grants = [r for r in self.subtree_rows if r.kind in ("project_user", "project_team")]
        return Standing(
            capabilities=capabilities,
            tenant_admin=org.tenant_id in self.admin_tenant_ids,
            grants=_decide(rows, org).reasons,
            project_grants=project_grants,
            project_ids=frozenset(r.object_id for r in project_grants if r.object_id),
        )


class SystemAccess(Access):
    """What the platform itself may do (config.actors.SYSTEM): everything, without a query. Commands, bootstrap and
    scheduled jobs pass SYSTEM explicitly, so every service authorizes the same way whoever acts."""

    def __init__(self) -> None:
        super().__init__(None)
        self.is_authenticated = True
        self.is_superuser = True
        self._subtree_rows = []

    def is_tenant_admin(self, tenant_id: UUID) -> bool:
        return True

    def capabilities(self, obj: models.Model) -> frozenset[str]:
        return _EVERYTHING | {TENANT_PLAN} | {k.team.exclusive for k in _KINDS.all() if k.team is not None}

    def can(self, capability: str, obj: models.Model) -> bool:
        return True

    def visible(self, capability: str, queryset: models.QuerySet) -> models.QuerySet:
        return queryset

    def explain(self, capability: str, obj: models.Model) -> Explanation:
        return Explanation(True, capability, ["The system acts: it holds every capability."], [])


_SYSTEM_ACCESS = SystemAccess()


@dataclass(frozen=True)
class Explanation:
    allowed: bool
    capability: str
    reasons: list[str] = field(default_factory=list)
    grants: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Standing:
    """What ``standing`` answers: the user's capabilities at an org and where they come from. ``grants`` are the
    org grants on its path (``cut_by`` set when an inheritance cut stops one); ``project_grants`` every project
    grant the user holds (``object_id`` the project), ``project_ids`` their projects."""

    capabilities: frozenset[str]
    superuser: bool = False
    tenant_admin: bool = False
    fence: str = ""
    grants: list[_Reason] = field(default_factory=list)
    project_grants: list[resolver.Row] = field(default_factory=list)
    project_ids: frozenset[UUID] = frozenset()


@dataclass(frozen=True)
class _Reason:
    source: str  # user | team | project_user | project_team
    grant_id: UUID | None
    role: str
    org_id: UUID | None
    org_name: str
    team: str
    capabilities: frozenset[str]
    cut_by: str  # the name of the org whose access_inheritance stops this grant, or ""

    @property
    def text(self) -> str:
        holder = f"team {self.team}" if self.team else "a direct grant"
        where = f"on project" if self.source.startswith("project") else f"on {self.org_name}"  # noqa: F541
        if self.cut_by:
            return f"Role {self.role} {where} ({holder}) does not apply: {self.cut_by} does not inherit it."
        return f"Role {self.role} {where} ({holder}) applies."

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "grant": str(self.grant_id) if self.grant_id else None,
            "role": self.role,
            "org": str(self.org_id) if self.org_id else None,
            "org_name": self.org_name,
            "team": self.team or None,
            "applies": not self.cut_by,
            "cut_by": self.cut_by or None,
            "capabilities": sorted(self.capabilities),
        }


@dataclass(frozen=True)
class _Decision:
    capabilities: frozenset[str]
    tenant_admin: bool
    reasons: list[_Reason]


def _decide(rows: list[resolver.Row], org: Organization) -> _Decision:
    """Turn the facts of resolver.org_rows into capabilities: grants on the path apply unless an org between the
    grant's org (exclusive) and the target (inclusive) cuts them; project grants always apply to their project."""
    tenant_admin = any(r.kind == "tenant_admin" for r in rows)
    cuts = [r for r in rows if r.kind == "cut"]
    capabilities: set[str] = set(_EVERYTHING) if tenant_admin else set()
    reasons: list[_Reason] = []
    for row in rows:
        if row.kind not in ("user", "team", "project_user", "project_team"):
            continue
        cut_by = ""
        if row.kind in ("user", "team"):
            for cut in cuts:
                if cut.lft > row.lft and resolver.blocks(cut, row):  # type: ignore[operator]
                    cut_by = cut.object_name
                    break
        if not cut_by:
            capabilities |= row.capabilities
        reasons.append(
            _Reason(
                source=row.kind,
                grant_id=row.grant_id,
                role=row.key,
                org_id=row.object_id if row.kind in ("user", "team") else org.pk,
                org_name=row.object_name if row.kind in ("user", "team") else org.name,
                team=row.team_name,
                capabilities=row.capabilities,
                cut_by=cut_by,
            )
        )
    return _Decision(frozenset(capabilities), tenant_admin, reasons)


_CACHE_ATTR = "_canopy_access"


def access_for(user: Any) -> Access:
    """The user's Access, built once per user instance (so once per request: each request loads its user).
    ``SYSTEM`` holds everything; ``None`` is a programming error (TypeError), never "skip the check"."""
    if user is SYSTEM:
        return _SYSTEM_ACCESS
    require_actor(user)
    access = getattr(user, _CACHE_ATTR, None)
    if access is None:
        access = Access(user)
        with contextlib.suppress(AttributeError):  # AnonymousUser-like objects that refuse attributes
            setattr(user, _CACHE_ATTR, access)
    return access


def by_roles(user: Any) -> Access:
    """What ``user`` may do by their roles alone, without the authentication fences (access/fences.py): for a user
    who is not the one making this request, or whose sign-in is being decided (a break-glass code or a test sign-in
    is what opens an enforcing tenant to them). Not cached on the user: the request's own decisions keep their
    fences."""
    require_actor(user)
    access = Access(user)
    access._fences_off = True
    return access


def forget(user: Any) -> None:
    """Drop the cached Access, e.g. after a service changed this user's own grants within the request."""
    if user is not None and user is not SYSTEM and hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def can(user: Any, capability: str, obj: models.Model) -> bool:
    return access_for(user).can(capability, obj)


def capabilities(user: Any, obj: models.Model) -> frozenset[str]:
    return access_for(user).capabilities(obj)


def capabilities_of_many(user: Any, orgs: list[Organization]) -> dict[UUID, frozenset[str]]:
    """Capabilities in each org of a page, from the user's grants loaded once (one query for the whole page)."""
    access = access_for(user)
    if access.is_authenticated and not access.is_superuser:
        access.subtree_rows  # noqa: B018 - load the grants once, so each org below is decided without a query
    return {org.pk: access.org_capabilities(org) for org in orgs}


def visible(user: Any, capability: str, queryset: models.QuerySet) -> models.QuerySet:
    return access_for(user).visible(capability, queryset)


def explain(user: Any, capability: str, obj: models.Model) -> Explanation:
    return access_for(user).explain(capability, obj)


def standing(user: Any, org: Organization) -> Standing:
    """Where ``user``'s capabilities at ``org`` come from (``Access.standing``)."""
    return access_for(user).standing(org)


def is_tenant_admin(user: Any, tenant_id: UUID) -> bool:
    return access_for(user).is_tenant_admin(tenant_id)


def sees_whole_tenant(user: Any, tenant_id: UUID) -> bool:
    """Whether ``user`` holds every capability on everything of the tenant in this request: a tenant administrator
    whom no fence closes a region of the tenant to (a session without the second factor a region requires sees
    less). All such viewers see one and the same tenant, whatever other grants they hold."""
    access = access_for(user)
    return access.is_tenant_admin(tenant_id) and not access.fences_in([tenant_id])


# -- delegation: one rule for every path that changes what someone can do (docs/DESIGN.md §4.8) ---------------------


def delegation_gaps(actor: Any, capabilities: frozenset[str] | set[str], place: models.Model) -> frozenset[str]:
    """The part of ``capabilities`` that ``actor`` does not hold at ``place`` (an org, a project or a task).

    Conferring, removing or changing a capability at a place is allowed only to whoever holds it there: granting a
    role, adding someone to a team (at every place the team holds a role), editing a custom role (at every place it
    is granted), inviting (when issued and again when accepted), sharing a task, cutting inheritance. Tenant
    administrators hold every capability of their tenant and superusers every capability, so nothing is missing for
    them, nor for SYSTEM (commands, bootstrap), which holds everything."""
    return frozenset(capabilities) - access_for(actor).capabilities(place)


def authorize_delegation(
    actor: Any, capabilities: frozenset[str] | set[str], place: models.Model, *, action: str
) -> None:
    """Raise Forbidden (code ``escalation``) unless ``actor`` holds every one of ``capabilities`` at ``place``."""
    missing = delegation_gaps(actor, capabilities, place)
    if missing:
        where = getattr(place, "name", str(place))
        named = ", ".join(f"{entry.label} ({entry.key})" for entry in vocabulary.in_order(missing))
        raise Forbidden(
            f"You cannot {action}: it confers or removes capabilities you do not hold in {where}: {named}.",
            code="escalation",
        )


def authorize(user: Any, capability: str, obj: models.Model) -> None:
    """Raise NotFound if the user may not see ``obj`` at all, Forbidden if they see it but lack ``capability``."""
    access = access_for(user)
    kind = _KINDS.find(obj)
    if kind is not None and not access.can(kind.view, obj):
        fence = access.blocking_fence(obj)
        if fence is not None:
            raise fences.FenceRefusal(fence)
        raise NotFound()
    if not access.can(capability, obj):
        raise Forbidden("You do not have permission to do this here.", code="permission_denied", capability=capability)


def get_for(user: Any, capability: str, queryset: models.QuerySet, **lookup: Any) -> Any:
    """Fetch and authorize in one call: 404 for missing or invisible, 403 for visible without ``capability``."""
    try:
        obj = queryset.get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, models.ObjectDoesNotExist):
        raise NotFound() from None
    except ValidationError:  # a malformed UUID raises ValidationError on some backends
        raise NotFound() from None
    authorize(user, capability, obj)
    return obj
