"""Hypothesis: for random trees, cuts and grants, ``can(u, c, o)`` ⇔ ``o in visible(u, c, all orgs)``, and both agree
with a naive reference that walks the path in Python."""

from __future__ import annotations

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from access import policy
from access.models import OrgUserGrant
from access.roles import BUILTIN_ROLES
from access.services.grants import grant_role
from config.actors import SYSTEM
from orgs.models import Organization
from orgs.services import update_org
from tests.factories import UserFactory, add_to_tenant, make_org, make_tenant, root_of

CAPS = ["org.view", "task.run", "envvar.manage", "member.manage"]

trees = st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=12)  # parent index (mod existing)
cuts = st.lists(st.sampled_from(["all", "all", "none", "admins_only"]), min_size=13, max_size=13)
grants = st.lists(
    st.tuples(st.integers(min_value=0, max_value=30), st.sampled_from(["guest", "integrator", "admin"])),
    max_size=4,
)


def _reference(org: Organization, user_grants: dict, capability: str, path_cache: dict) -> bool:
    """Walk from the org up to the root: a grant applies unless an org below it (up to the target) cuts it."""
    path = path_cache[org.pk]
    for i, node in enumerate(path):
        role = user_grants.get(node.pk)
        if role is None:
            continue
        below = path[i + 1 :]
        blocked = any(n.access_inheritance == "none" for n in below) or (
            role != "admin" and any(n.access_inheritance == "admins_only" for n in below)
        )
        if not blocked and capability in BUILTIN_ROLES[role]:
            return True
    return False


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parents=trees, inheritance=cuts, given_grants=grants)
def test_can_and_visible_agree_with_each_other_and_with_a_naive_walk(parents, inheritance, given_grants) -> None:
    sid = transaction.savepoint()
    try:
        tenant = make_tenant("Oracle", admin=UserFactory(username="oracle-admin"))
        nodes = [root_of(tenant)]
        for i, parent_index in enumerate(parents):
            nodes.append(make_org(nodes[parent_index % len(nodes)], f"n{i}"))
        for node, mode in zip(nodes[1:], inheritance, strict=False):
            if mode != "all":
                update_org(actor=SYSTEM, org=node, access_inheritance=mode)
        user = UserFactory(username="oracle-user")
        add_to_tenant(user, tenant)
        user_grants = {}
        for index, role in given_grants:
            node = nodes[index % len(nodes)]
            if node.pk in user_grants:
                continue
            grant_role(actor=SYSTEM, target=node, role=role, user=user)
            user_grants[node.pk] = role
        orgs = list(Organization.objects.filter(tenant=tenant))
        paths = {o.pk: o.path() for o in orgs}
        for capability in CAPS:
            policy.forget(user)
            visible = set(policy.visible(user, capability, Organization.objects.all()).values_list("pk", flat=True))
            for org in orgs:
                expected = _reference(org, user_grants, capability, paths)
                # Decided from the grants visible() loaded, then from the per-org query of a fresh request.
                assert policy.can(user, capability, org) == expected, (org.name, capability)
                fresh = type(user).objects.get(pk=user.pk)
                assert policy.can(fresh, capability, org) == expected, (org.name, capability)
                assert (org.pk in visible) == expected, (org.name, capability)
        assert OrgUserGrant.objects.filter(user=user).count() == len(user_grants)
    finally:
        transaction.savepoint_rollback(sid)
