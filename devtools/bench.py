"""Peers for the benchmark: the same authorization decisions answered by other engines on the same data.
Development only (the devtools app; cedarpy and pycasbin are dev requirements).

- ``NaiveGuardian`` walks the ancestors one by one with guardian's ObjectPermissionChecker (what a straightforward
  django-guardian app does): a query per level.
- ``CedarPeer`` (cedarpy): orgs as an entity hierarchy, one static policy per role
  (``resource in principal.<role>Orgs``), every entity parsed once into a reusable handle.
- ``CasbinPeer`` (pycasbin): RBAC where holding role R on org X is the role ``X/R``, each org's ``/R`` inheriting its
  parent's (an org hierarchy in the role graph), policies ``p, R, capability``.

They model grants and the org tree only (no inheritance cuts, no teams, no tenant administrators): the benchmark's
data has none of those, and every peer's answers are checked against Canopy's before anything is timed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import casbin
import cedarpy
from casbin.model import Model
from guardian.core import ObjectPermissionChecker

from access.models import OrgUserGrant
from access.roles import BUILTIN_ROLES
from orgs.models import Organization


def rss_mb() -> float:
    """Resident memory of this process, in MB (Linux)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:  # pragma: no cover - not Linux
        return 0.0


def tenant_facts(tenant: Any) -> tuple[list[tuple[str, str | None]], list[tuple[str, str, str]]]:
    """(org id, parent id) for every org and (user id, org id, role key) for every built-in grant in the tenant."""
    orgs = [(str(o), str(p) if p else None) for o, p in Organization.objects.filter(tenant=tenant).values_list(
        "pk", "parent_id")]  # fmt: skip
    grants = [
        (str(u), str(o), key)
        for u, o, key in OrgUserGrant.objects.filter(
            content_object__tenant=tenant, role__tenant__isnull=True
        ).values_list("user_id", "content_object_id", "role__key")
    ]
    return orgs, grants


class NaiveGuardian:
    name = "naive_guardian"

    def __init__(self) -> None:
        self.load_s = 0.0
        self.memory_mb = 0.0

    def can(self, user: Any, capability: str, org: Any) -> bool:
        checker = ObjectPermissionChecker(user)
        node = org
        while node is not None:
            if checker.has_perm("hold_role", node):
                grant = OrgUserGrant.objects.select_related("role").get(user=user, content_object=node)
                if capability in grant.role.capabilities:
                    return True
            node = node.parent  # a query per level: the walk a plain guardian app does
        return False


class CedarPeer:
    name = "cedarpy"

    def __init__(self, tenant: Any) -> None:
        before, started = rss_mb(), time.perf_counter()
        orgs, grants = tenant_facts(tenant)
        held: dict[str, dict[str, list[dict[str, str]]]] = {}
        for user_id, org_id, role in grants:
            held.setdefault(user_id, {}).setdefault(f"{role}Orgs", []).append(
                {"__entity": {"type": "Org", "id": org_id}}
            )
        entities = [
            {"uid": {"type": "Org", "id": org_id}, "attrs": {},
             "parents": [{"type": "Org", "id": parent}] if parent else []}
            for org_id, parent in orgs
        ]  # fmt: skip
        for user_id, sets in held.items():
            attrs = {key: sets.get(key, []) for key in ("adminOrgs", "integratorOrgs", "guestOrgs")}
            entities.append({"uid": {"type": "User", "id": user_id}, "attrs": attrs, "parents": []})
        policies = "\n".join(
            f"permit(principal, action in [{', '.join(f'Action::{json.dumps(c)}' for c in sorted(caps))}], "
            f"resource) when {{ resource in principal.{role}Orgs }};"
            for role, caps in BUILTIN_ROLES.items()
        )
        self.entities = cedarpy.Entities.from_json_str(json.dumps(entities))
        self.policies = cedarpy.PolicySet.from_str(policies)
        self.known_users = set(held)
        self.load_s = time.perf_counter() - started
        self.memory_mb = rss_mb() - before

    def can(self, user: Any, capability: str, org: Any) -> bool:
        if str(user.pk) not in self.known_users:
            return False
        request = {
            "principal": {"type": "User", "id": str(user.pk)},
            "action": {"type": "Action", "id": capability},
            "resource": {"type": "Org", "id": str(org.pk)},
            "context": {},
        }
        return cedarpy.is_authorized(request, self.policies, self.entities).decision == cedarpy.Decision.Allow


CASBIN_MODEL = """
[request_definition]
r = sub, org, act

[policy_definition]
p = role, act

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, r.org + "/" + p.role) && r.act == p.act
"""


class CasbinPeer:
    name = "pycasbin"

    def __init__(self, tenant: Any, max_depth: int) -> None:
        logging.getLogger("casbin").setLevel(logging.WARNING)  # it prints its whole model at INFO

        before, started = rss_mb(), time.perf_counter()
        orgs, grants = tenant_facts(tenant)
        model = Model()
        model.load_model_from_text(CASBIN_MODEL)
        enforcer = casbin.Enforcer(model)
        # pycasbin's default max_hierarchy_level is 10: deeper paths would be silently denied.
        enforcer.get_role_manager().max_hierarchy_level = max_depth + 5
        enforcer.enable_auto_build_role_links(False)
        for role, caps in BUILTIN_ROLES.items():
            enforcer.add_policies([[role, cap] for cap in sorted(caps)])
        links = [[user_id, f"{org_id}/{role}"] for user_id, org_id, role in grants]
        for org_id, parent in orgs:
            if parent:
                links.extend([f"{parent}/{role}", f"{org_id}/{role}"] for role in BUILTIN_ROLES)
        enforcer.add_grouping_policies(links)
        enforcer.build_role_links()
        self.enforcer = enforcer
        self.load_s = time.perf_counter() - started
        self.memory_mb = rss_mb() - before

    def can(self, user: Any, capability: str, org: Any) -> bool:
        return self.enforcer.enforce(str(user.pk), str(org.pk), capability)
