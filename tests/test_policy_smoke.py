import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from access import fences, policy
from access.roles import BUILTIN_ROLES
from access.services.grants import grant_role
from config.actors import SYSTEM
from orgs.services import update_org
from tests.factories import UserFactory, add_to_tenant, make_chain


@pytest.mark.parametrize("role", ["admin", "integrator", "guest"])
def test_a_role_on_an_org_flows_to_its_descendants(world, role):
    user = UserFactory()
    add_to_tenant(user, world.acme)
    grant_role(actor=world.tenant_admin, target=world.marketing, role=role, user=user)
    assert policy.capabilities(user, world.campaigns) == BUILTIN_ROLES[role]
    policy.forget(user)
    assert policy.capabilities(user, world.logistics) == frozenset()
    assert set(policy.visible(user, "org.view", world.root.__class__.objects.all())) == {
        world.marketing,
        world.emea,
        world.campaigns,
    }


def test_cuts(world):
    user = UserFactory()
    add_to_tenant(user, world.acme)
    grant_role(actor=SYSTEM, target=world.root, role="integrator", user=user)
    update_org(actor=SYSTEM, org=world.emea, access_inheritance="none")
    world.refresh()
    assert policy.can(user, "task.run", world.marketing)
    assert not policy.can(user, "org.view", world.campaigns)
    assert set(policy.visible(user, "org.view", world.root.__class__.objects.all())) == {
        world.root,
        world.marketing,
        world.logistics,
    }


def test_can_costs_one_query_whatever_the_depth(world):
    user = UserFactory()
    add_to_tenant(user, world.acme)
    grant_role(actor=SYSTEM, target=world.root, role="guest", user=user)
    chain = make_chain(world.root, 30)
    fences.enforcing([world.acme.pk])  # the tenant's authentication rules cached, as after a server's first request
    counts = []
    for org in (chain[0], chain[-1]):
        policy.forget(user)
        with CaptureQueriesContext(connection) as ctx:
            assert policy.can(user, "org.view", org)
            assert policy.can(user, "task.view", org)
        counts.append(len(ctx))
    assert counts == [1, 1]


def test_on_postgresql_the_decision_is_prepared_once_per_connection_and_stays_one_query(world, postgres_only):
    user = UserFactory()
    add_to_tenant(user, world.acme)
    grant_role(actor=SYSTEM, target=world.root, role="integrator", user=user)
    deep = make_chain(world.root, 5)[-1]
    fences.enforcing([world.acme.pk])  # the tenant's authentication rules cached, as after a server's first request
    counts = []
    for _ in range(3):
        policy.forget(user)
        with CaptureQueriesContext(connection) as ctx:
            assert policy.can(user, "task.run", deep) and not policy.can(user, "member.manage", deep)
        counts.append(len(ctx))
    assert counts == [1, 1, 1]
    assert "PREPARE canopy_" in ctx.captured_queries[0]["sql"] or "EXECUTE canopy_" in ctx.captured_queries[0]["sql"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'canopy_%%'")
        assert cursor.fetchone()[0] >= 1


def test_without_prepared_statements_the_decision_is_the_same(world, postgres_only, settings):
    settings.DB_PREPARED_STATEMENTS = False
    user = UserFactory()
    add_to_tenant(user, world.acme)
    grant_role(actor=SYSTEM, target=world.emea, role="guest", user=user)
    fences.enforcing([world.acme.pk])  # the tenant's authentication rules cached, as after a server's first request
    with CaptureQueriesContext(connection) as ctx:
        assert policy.can(user, "task.view", world.campaigns) and not policy.can(user, "task.view", world.root)
    assert len(ctx) == 2 and "PREPARE" not in ctx.captured_queries[0]["sql"]
