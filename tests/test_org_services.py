"""The tree services: create, rename, move, delete and restore, plan limits, permissions, and a 200-deep chain.
After every change the tree must still be a sound nested set (orgs.integrity)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from access.models import AuditEvent
from config.errors import Conflict, NotFound, PlanLimit
from orgs import services
from orgs.integrity import tree_problems
from orgs.models import Organization, Project, Tenant
from tests.factories import make_chain, make_org


@pytest.fixture(autouse=True)
def _tree_stays_sound(db):
    yield
    assert tree_problems() == []


def fresh(org: Organization) -> Organization:
    return Organization.objects.get(pk=org.pk)


def test_creating_a_child_writes_its_audit_event(world):
    org = services.create_org(actor=world.tenant_admin, parent=world.emea, name="  Nordics  ")
    assert org.name == "Nordics" and org.level == 3
    event = AuditEvent.objects.get(action="org.create", target_id=str(org.pk))
    assert event.actor == world.tenant_admin and event.tenant_id == world.acme.pk


def test_sibling_names_are_unique_ignoring_case(world):
    with pytest.raises(Conflict) as excinfo:
        services.create_org(actor=world.tenant_admin, parent=world.root, name="MARKETING")
    assert excinfo.value.code == "name_taken"
    services.create_org(actor=world.tenant_admin, parent=world.logistics, name="Marketing")


@pytest.mark.parametrize("name", ["", "   ", "a" * 101, "with/slash", "tab\there"])
def test_a_bad_name_is_a_field_error_and_creates_nothing(world, name):
    before = Organization.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        services.create_org(actor=world.tenant_admin, parent=world.root, name=name)
    assert "name" in excinfo.value.message_dict
    assert Organization.objects.count() == before


def test_renaming_keeps_the_tree_and_refuses_a_taken_name(world):
    services.update_org(actor=world.tenant_admin, org=world.emea, name="Europe", description="EU")
    assert fresh(world.emea).name == "Europe"
    with pytest.raises(Conflict):
        services.update_org(actor=world.tenant_admin, org=world.logistics, name="marketing")
    assert fresh(world.logistics).name == "Logistics"


def test_the_root_has_nothing_to_inherit_from(world):
    with pytest.raises(Conflict):
        services.update_org(actor=world.tenant_admin, org=world.root, access_inheritance="none")


def test_moving_takes_the_subtree_along(world):
    services.move_org(actor=world.tenant_admin, org=world.emea, parent=world.logistics)
    assert [o.name for o in fresh(world.campaigns).path()] == ["Acme", "Logistics", "EMEA", "Campaigns"]
    assert fresh(world.campaigns).level == 3
    assert AuditEvent.objects.filter(action="org.move", target_id=str(world.emea.pk)).exists()


def test_moving_into_the_own_subtree_is_refused(world):
    for target in (world.marketing, world.emea, world.campaigns):
        with pytest.raises(Conflict) as excinfo:
            services.move_org(actor=world.tenant_admin, org=world.marketing, parent=target)
        assert excinfo.value.code == "cycle"
    assert fresh(world.marketing).parent_id == world.root.pk


def test_moving_to_another_tenant_is_refused(world):
    with pytest.raises(Conflict) as excinfo:
        services.move_org(actor=world.superuser, org=world.marketing, parent=world.globex_root)
    assert excinfo.value.code == "cross_tenant"


def test_the_root_does_not_move(world):
    with pytest.raises(Conflict) as excinfo:
        services.move_org(actor=world.tenant_admin, org=world.root, parent=world.logistics)
    assert excinfo.value.code in ("root", "cycle")


def test_a_move_onto_a_taken_name_is_refused(world):
    make_org(world.logistics, "EMEA")
    with pytest.raises(Conflict) as excinfo:
        services.move_org(actor=world.tenant_admin, org=world.emea, parent=world.logistics)
    assert excinfo.value.code == "name_taken"


def test_a_move_into_a_deleted_org_is_refused(world):
    services.delete_org(actor=world.tenant_admin, org=world.logistics)
    with pytest.raises(Conflict):
        services.move_org(actor=world.tenant_admin, org=world.emea, parent=world.logistics)


def test_delete_hides_the_subtree_and_restore_brings_it_back(world):
    services.delete_org(actor=world.tenant_admin, org=world.marketing)
    assert set(Organization.objects.alive().filter(tenant=world.acme)) == {world.root, world.logistics}
    services.restore_org(actor=world.tenant_admin, org=world.marketing)
    assert Organization.objects.alive().filter(tenant=world.acme).count() == 5
    assert AuditEvent.objects.filter(action__in=["org.delete", "org.restore"]).count() == 2


def test_a_child_deleted_before_its_parent_stays_deleted_on_restore(world):
    services.delete_org(actor=world.tenant_admin, org=world.campaigns)
    services.delete_org(actor=world.tenant_admin, org=world.marketing)
    services.restore_org(actor=world.tenant_admin, org=world.marketing)
    assert fresh(world.campaigns).is_deleted and not fresh(world.emea).is_deleted
    with pytest.raises(Conflict) as excinfo:
        services.restore_org(actor=world.tenant_admin, org=world.emea)
    assert excinfo.value.code == "not_deleted"


def test_a_node_deleted_with_its_parent_is_restored_through_the_parent(world):
    services.delete_org(actor=world.tenant_admin, org=world.marketing)
    with pytest.raises(Conflict) as excinfo:
        services.restore_org(actor=world.tenant_admin, org=world.emea)
    assert excinfo.value.code == "deleted_with_parent"


def test_restoring_onto_a_taken_name_is_refused(world):
    services.delete_org(actor=world.tenant_admin, org=world.logistics)
    make_org(world.root, "Logistics")
    with pytest.raises(Conflict) as excinfo:
        services.restore_org(actor=world.tenant_admin, org=world.logistics)
    assert excinfo.value.code == "name_taken"


def test_restoring_after_the_window_is_refused(world, settings):
    services.delete_org(actor=world.tenant_admin, org=world.logistics)
    Organization.objects.filter(pk=world.logistics.pk).update(deleted_at=timezone.now() - timedelta(days=31))
    with pytest.raises(Conflict) as excinfo:
        services.restore_org(actor=world.tenant_admin, org=world.logistics)
    assert excinfo.value.code == "restore_window"


def test_the_root_cannot_be_deleted(world):
    with pytest.raises(Conflict):
        services.delete_org(actor=world.tenant_admin, org=world.root)


def test_the_free_plan_has_the_root_only(world):
    with pytest.raises(PlanLimit) as excinfo:
        services.create_org(actor=world.other_admin, parent=world.globex_root, name="Sales")
    assert excinfo.value.code == "plan_limit" and "Upgrade" in excinfo.value.detail
    services.update_tenant(actor=world.superuser, tenant=world.globex, plan="paid")
    services.create_org(actor=world.other_admin, parent=world.globex_root, name="Sales")


def test_a_tenant_with_children_cannot_go_back_to_free(world):
    with pytest.raises(Conflict):
        services.update_tenant(actor=world.superuser, tenant=world.acme, plan="free")
    assert Tenant.objects.get(pk=world.acme.pk).plan == "paid"


@pytest.mark.parametrize("who", ["member", "outsider", "other_admin"])
def test_people_outside_the_org_get_not_found_from_every_service(world, who):
    actor = getattr(world, who)
    for call in (
        lambda: services.create_org(actor=actor, parent=world.marketing, name="X"),
        lambda: services.update_org(actor=actor, org=world.marketing, name="X"),
        lambda: services.move_org(actor=actor, org=world.emea, parent=world.logistics),
        lambda: services.delete_org(actor=actor, org=world.emea),
        lambda: services.create_project(actor=actor, org=world.marketing, name="X"),
        lambda: services.delete_project(actor=actor, project=world.website),
    ):
        with pytest.raises(NotFound):
            call()
    assert fresh(world.marketing).name == "Marketing" and Project.objects.filter(pk=world.website.pk).exists()


def test_a_chain_200_deep_keeps_one_query_paths_and_moves_cleanly(world, django_assert_num_queries):
    chain = make_chain(world.logistics, 200)
    deepest = fresh(chain[-1])
    assert deepest.level == 201
    with django_assert_num_queries(1):
        path = deepest.path()
    assert len(path) == 202 and path[0] == world.root and path[-1] == deepest
    services.move_org(actor=world.tenant_admin, org=chain[100], parent=world.campaigns)
    assert fresh(chain[-1]).level == 3 + 100
    assert tree_problems() == []


def test_projects_are_unique_by_name_in_their_org(world):
    with pytest.raises(Conflict):
        services.create_project(actor=world.tenant_admin, org=world.marketing, name="WEBSITE")
    project = services.create_project(actor=world.tenant_admin, org=world.logistics, name="Website")
    services.update_project(actor=world.tenant_admin, project=project, name="Portal")
    services.delete_project(actor=world.tenant_admin, project=project)
    assert AuditEvent.objects.filter(action__startswith="project.").count() >= 3


def test_purge_removes_old_deletions_for_good(world):
    services.delete_org(actor=world.tenant_admin, org=world.marketing)
    services.delete_org(actor=world.tenant_admin, org=world.logistics)
    Organization.objects.filter(deleted_with=world.marketing).update(deleted_at=timezone.now() - timedelta(days=31))
    assert services.purge_deleted_orgs() == 3
    assert not Organization.objects.filter(pk__in=[world.marketing.pk, world.campaigns.pk]).exists()
    assert not Project.objects.filter(pk=world.website.pk).exists()
    services.restore_org(actor=world.tenant_admin, org=world.logistics)
