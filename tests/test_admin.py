"""The Django admin: scoped to the tenant administrator's tenants, every write through the services."""

from __future__ import annotations

import pytest

from access.models import AuditEvent, OrgUserGrant, Role, TenantMembership
from access.services.grants import grant_role
from config.actors import SYSTEM
from orgs.integrity import tree_problems
from orgs.models import Organization, Project, Tenant
from tests.factories import UserFactory, add_to_tenant


@pytest.fixture
def admin_client_of(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def test_a_tenant_admin_lists_only_their_tenants_orgs(world, admin_client_of, django_assert_max_num_queries):
    client = admin_client_of(world.tenant_admin)
    with django_assert_max_num_queries(15):
        html = client.get("/admin/orgs/organization/").content.decode()
    assert "Campaigns" in html and "Globex" not in html


def test_another_tenants_org_answers_404_in_the_admin(world, admin_client_of):
    client = admin_client_of(world.tenant_admin)
    assert client.get(f"/admin/orgs/organization/{world.globex_root.pk}/change/").status_code in (302, 404)
    response = client.get(f"/admin/orgs/organization/{world.globex_root.pk}/change/", follow=True)
    assert "doesn’t exist" in response.content.decode() or response.status_code == 404
    assert client.get(f"/admin/orgs/project/{world.globex_project.pk}/change/", follow=True).status_code in (200, 404)
    assert "Secret plans" not in client.get("/admin/orgs/project/").content.decode()


def test_staff_without_a_tenant_sees_nothing(world, admin_client_of):
    staff = UserFactory(username="staffer", is_staff=True)
    client = admin_client_of(staff)
    response = client.get("/admin/orgs/organization/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert "Organizations" not in client.get("/admin/", follow=True).content.decode()


def test_a_tenant_administrator_uses_the_admin_without_any_staff_bit(world, admin_client_of):
    assert not world.tenant_admin.is_staff
    assert admin_client_of(world.tenant_admin).get("/admin/orgs/organization/").status_code == 200


def test_a_superuser_sees_every_tenant_and_sets_plans(world, admin_client_of):
    client = admin_client_of(world.superuser)
    assert "Globex" in client.get("/admin/orgs/tenant/").content.decode()
    response = client.post(f"/admin/orgs/tenant/{world.globex.pk}/change/", {"name": "Globex", "plan": "paid"})
    assert response.status_code == 302
    assert Tenant.objects.get(pk=world.globex.pk).plan == "paid"


def test_the_plan_is_read_only_for_a_tenant_admin(world, admin_client_of):
    client = admin_client_of(world.tenant_admin)
    client.post(f"/admin/orgs/tenant/{world.acme.pk}/change/", {"name": "Acme Inc", "plan": "free"})
    acme = Tenant.objects.get(pk=world.acme.pk)
    assert (acme.name, acme.plan) == ("Acme Inc", "paid")


def test_adding_an_org_goes_through_the_service(world, admin_client_of):
    client = admin_client_of(world.tenant_admin)
    response = client.post(
        "/admin/orgs/organization/add/",
        {"parent": str(world.marketing.pk), "name": "APAC", "description": "", "access_inheritance": "all"},
    )
    assert response.status_code == 302
    org = Organization.objects.get(name="APAC")
    assert org.parent_id == world.marketing.pk
    assert AuditEvent.objects.filter(action="org.create", target_id=str(org.pk), actor=world.tenant_admin).exists()
    assert tree_problems() == []


def test_changing_the_parent_in_the_form_moves_through_the_service(world, admin_client_of):
    client = admin_client_of(world.tenant_admin)
    response = client.post(
        f"/admin/orgs/organization/{world.emea.pk}/change/",
        {"parent": str(world.logistics.pk), "name": "EMEA", "description": "", "access_inheritance": "all"},
    )
    assert response.status_code == 302
    assert Organization.objects.get(pk=world.emea.pk).parent_id == world.logistics.pk
    assert AuditEvent.objects.filter(action="org.move").exists()
    assert tree_problems() == []


def _drag(client, node, target, position):
    return client.post(
        "/admin/orgs/organization/",
        {"cmd": "move_node", "cut_item": str(node.pk), "pasted_on": str(target.pk), "position": position},
    )


def test_drag_and_drop_moves_through_the_service(world, admin_client_of):
    client = admin_client_of(world.tenant_admin)
    assert _drag(client, world.emea, world.logistics, "last-child").content == b"OK, moved."
    assert Organization.objects.get(pk=world.emea.pk).parent_id == world.logistics.pk
    assert _drag(client, world.emea, world.marketing, "left").content == b"OK, moved."
    assert Organization.objects.get(pk=world.emea.pk).parent_id == world.root.pk
    assert AuditEvent.objects.filter(action="org.move").count() == 2
    assert tree_problems() == []


def test_drag_and_drop_into_the_own_subtree_is_refused(world, admin_client_of):
    client = admin_client_of(world.tenant_admin)
    assert _drag(client, world.marketing, world.campaigns, "last-child").content.startswith(b"FAIL")
    assert Organization.objects.get(pk=world.marketing.pk).parent_id == world.root.pk
    assert _drag(client, world.marketing, world.root, "left").content.startswith(b"FAIL")
    assert tree_problems() == []


def test_drag_and_drop_cannot_reach_another_tenant(world, admin_client_of):
    client = admin_client_of(world.tenant_admin)
    assert _drag(client, world.marketing, world.globex_root, "last-child").content.startswith(b"FAIL")
    assert Organization.objects.get(pk=world.marketing.pk).parent_id == world.root.pk


def test_deleting_in_the_admin_is_a_soft_delete_and_restorable(world, admin_client_of):
    client = admin_client_of(world.tenant_admin)
    response = client.post(f"/admin/orgs/organization/{world.emea.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert Organization.objects.get(pk=world.campaigns.pk).is_deleted
    response = client.post(
        "/admin/orgs/organization/?deleted=1",
        {"action": "restore_selected", "_selected_action": [str(world.emea.pk)]},
    )
    assert response.status_code == 302
    assert not Organization.objects.get(pk=world.campaigns.pk).is_deleted


def test_the_root_cannot_be_deleted_in_the_admin(world, admin_client_of):
    client = admin_client_of(world.tenant_admin)
    client.post(f"/admin/orgs/organization/{world.root.pk}/delete/", {"post": "yes"})
    assert not Organization.objects.get(pk=world.root.pk).is_deleted


def test_projects_in_the_admin_go_through_the_services(world, admin_client_of):
    client = admin_client_of(world.tenant_admin)
    response = client.post("/admin/orgs/project/add/", {"org": str(world.logistics.pk), "name": "Tracking"})
    assert response.status_code == 302
    project = Project.objects.get(name="Tracking")
    assert AuditEvent.objects.filter(action="project.create", target_id=str(project.pk)).exists()
    client.post(f"/admin/orgs/project/{project.pk}/delete/", {"post": "yes"})
    assert not Project.objects.filter(pk=project.pk).exists()


def test_the_audit_log_is_read_only_for_everyone(world, admin_client_of):
    client = admin_client_of(world.superuser)
    event = AuditEvent.objects.first()
    assert client.get("/admin/access/auditevent/").status_code == 200
    assert client.get("/admin/access/auditevent/add/").status_code == 403
    assert client.post(f"/admin/access/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/access/auditevent/{event.pk}/change/", {"action": "forged"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk, action=event.action).exists()


def test_a_tenant_admin_sees_only_their_tenants_audit_events(world, admin_client_of):
    html = admin_client_of(world.other_admin).get("/admin/access/auditevent/").content.decode()
    assert "Globex" in html and "Marketing" not in html


def test_a_tenant_admin_cannot_make_anyone_superuser(world, admin_client_of):
    client = admin_client_of(world.tenant_admin)
    client.post(
        f"/admin/access/user/{world.member.pk}/change/",
        {
            "username": "bob",
            "email": "bob@example.com",
            "is_active": "on",
            "is_superuser": "on",
            "is_staff": "on",
            "tenant_memberships-TOTAL_FORMS": "0",
            "tenant_memberships-INITIAL_FORMS": "0",
        },
    )
    member = type(world.member).objects.get(pk=world.member.pk)
    assert not member.is_superuser and not member.is_staff
    assert client.get(f"/admin/access/user/{world.other_admin.pk}/change/", follow=True).status_code in (200, 404)
    assert ">gina<" not in client.get("/admin/access/user/").content.decode()


def test_grants_in_the_admin_go_through_the_grant_service(world, admin_client_of):
    client = admin_client_of(world.tenant_admin)
    guest = Role.objects.get(key="guest", tenant__isnull=True)
    response = client.post(
        "/admin/access/orgusergrant/add/",
        {"user": str(world.member.pk), "content_object": str(world.logistics.pk), "role": str(guest.pk)},
    )
    assert response.status_code == 302
    grant = OrgUserGrant.objects.get(user=world.member, content_object=world.logistics)
    assert grant.granted_by == world.tenant_admin
    assert AuditEvent.objects.filter(action="grant.create", target_id=str(grant.pk), org=world.logistics).exists()
    client.post(f"/admin/access/orgusergrant/{grant.pk}/delete/", {"post": "yes"})
    assert not OrgUserGrant.objects.filter(pk=grant.pk).exists()


def test_another_tenants_grants_are_invisible_in_the_admin(world, admin_client_of):
    gina_grant = OrgUserGrant.objects.get(user=world.other_admin)
    html = admin_client_of(world.tenant_admin).get("/admin/access/orgusergrant/").content.decode()
    assert ">gina<" not in html and "gina is" not in html
    response = admin_client_of(world.tenant_admin).post(
        f"/admin/access/orgusergrant/{gina_grant.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code in (302, 404)
    assert OrgUserGrant.objects.filter(pk=gina_grant.pk).exists()


def test_the_last_tenant_administrator_cannot_be_demoted_in_the_admin(world, admin_client_of):
    client = admin_client_of(world.tenant_admin)
    membership = TenantMembership.objects.get(user=world.tenant_admin, tenant=world.acme)
    client.post(f"/admin/access/tenantmembership/{membership.pk}/change/", {})
    assert TenantMembership.objects.get(pk=membership.pk).is_admin


def test_a_member_with_an_org_role_but_no_tenant_admin_has_no_admin(world, admin_client_of):
    user = UserFactory(username="org-admin", is_staff=True)
    add_to_tenant(user, world.acme)
    grant_role(actor=SYSTEM, target=world.marketing, role="admin", user=user)
    assert admin_client_of(user).get("/admin/orgs/organization/").status_code == 302  # to the admin's log-in
