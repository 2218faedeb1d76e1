"""Organizations, tenants and projects through the API: the contract's fields and status codes."""

from __future__ import annotations

import pytest

from access.models import AuditEvent
from access.services.grants import grant_role
from config.actors import SYSTEM
from orgs.models import Organization, Project, Tenant
from tests.factories import UserFactory, add_to_tenant, make_org


@pytest.fixture
def guest(world):
    """A Guest on Marketing: sees Marketing and below, may change nothing."""
    user = UserFactory(username="gus")
    add_to_tenant(user, world.acme)
    grant_role(actor=SYSTEM, target=world.marketing, role="guest", user=user)
    return user


def org_url(org, suffix=""):
    return f"/api/v1/orgs/{org.pk}{suffix}"


# -- read ----------------------------------------------------------------------------------------------------------


def test_the_detail_has_the_contract_fields_path_and_capabilities(world, api_as):
    body = api_as(world.tenant_admin).get(org_url(world.campaigns)).json()
    assert {
        "id",
        "name",
        "description",
        "tenant",
        "parent",
        "depth",
        "path",
        "access_inheritance",
        "capabilities",
    } <= set(body)
    assert body["depth"] == 3 and body["parent"] == str(world.emea.pk) and body["tenant"] == str(world.acme.pk)
    assert [p["name"] for p in body["path"]] == ["Acme", "Marketing", "EMEA", "Campaigns"]
    assert "org.manage" in body["capabilities"] and "tenant.admin" in body["capabilities"]


def test_a_guest_sees_their_subtree_with_their_capabilities(world, api_as, guest):
    client = api_as(guest)
    body = client.get(org_url(world.emea)).json()
    assert "org.view" in body["capabilities"] and "org.manage" not in body["capabilities"]
    names = [o["name"] for o in client.get("/api/v1/orgs").json()["results"]]
    assert names == ["Marketing", "EMEA", "Campaigns"]


@pytest.mark.parametrize("who", ["outsider", "other_admin", "member"])
def test_orgs_of_another_tenant_or_without_a_grant_answer_404(world, api_as, who):
    client = api_as(getattr(world, who))
    for path in (
        org_url(world.marketing),
        org_url(world.marketing, "/children"),
        org_url(world.marketing, "/projects"),
    ):
        assert client.get(path).status_code == 404, path
    assert client.patch(org_url(world.marketing), {"name": "X"}, format="json").status_code == 404
    assert client.delete(org_url(world.marketing)).status_code == 404
    assert Organization.objects.get(pk=world.marketing.pk).name == "Marketing"


def test_a_malformed_id_answers_404(world, api_as):
    assert api_as(world.tenant_admin).get("/api/v1/orgs/not-a-uuid").status_code == 404


def test_the_list_is_tenant_scoped_filterable_and_paginated(world, api_as):
    client = api_as(world.tenant_admin)
    body = client.get("/api/v1/orgs").json()
    assert {"count", "next", "previous", "results"} <= set(body)
    assert body["count"] == 5 and "Globex" not in [o["name"] for o in body["results"]]
    children = client.get("/api/v1/orgs", {"parent": str(world.root.pk)}).json()["results"]
    assert [o["name"] for o in children] == ["Logistics", "Marketing"] or [o["name"] for o in children] == [
        "Marketing",
        "Logistics",
    ]
    assert [o["name"] for o in client.get("/api/v1/orgs", {"search": "amp"}).json()["results"]] == ["Campaigns"]
    page = client.get("/api/v1/orgs", {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]


def test_the_list_costs_the_same_queries_for_10_and_100_orgs(world, api_as, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = api_as(world.tenant_admin)
    client.get("/api/v1/me")  # the token's first use writes last_used_at; measure the steady state
    counts = []
    for total in (10, 100):
        while Organization.objects.filter(tenant=world.acme).count() < total:
            make_org(world.logistics, f"depot-{Organization.objects.count()}")
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/api/v1/orgs", {"page_size": 200}).status_code == 200
        counts.append(len(ctx))
    assert counts[0] == counts[1]
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/orgs", {"page_size": 200})
        assert response.status_code == 200 and len(response.json()["results"]) == 100


def test_children_lists_direct_live_children(world, api_as, django_assert_max_num_queries):
    client = api_as(world.tenant_admin)
    with django_assert_max_num_queries(8):
        body = (response := client.get(org_url(world.root, "/children"))).json()
        assert response.status_code == 200 and body["results"]
    assert sorted(o["name"] for o in body["results"]) == ["Logistics", "Marketing"]


# -- create --------------------------------------------------------------------------------------------------------


def test_a_tenant_admin_creates_a_child_org(world, api_as):
    response = api_as(world.tenant_admin).post(
        "/api/v1/orgs", {"name": "APAC", "parent": str(world.marketing.pk), "description": "Asia"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["path"][-1]["name"] == "APAC"
    assert AuditEvent.objects.filter(action="org.create", target_name="APAC").exists()


def test_a_guest_cannot_create_an_org_where_they_see_the_parent(world, api_as, guest):
    response = api_as(guest).post("/api/v1/orgs", {"name": "Nope", "parent": str(world.marketing.pk)}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not Organization.objects.filter(name="Nope").exists()


def test_a_parent_the_caller_cannot_see_is_a_field_error(world, api_as):
    response = api_as(world.other_admin).post(
        "/api/v1/orgs", {"name": "Spy", "parent": str(world.root.pk)}, format="json"
    )
    assert response.status_code == 400
    assert "parent" in response.json()
    assert not Organization.objects.filter(name="Spy").exists()


def test_the_free_plan_answers_403_plan_limit(world, api_as):
    response = api_as(world.other_admin).post(
        "/api/v1/orgs", {"name": "Sales", "parent": str(world.globex_root.pk)}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "plan_limit"
    assert "Paid plan" in response.json()["detail"]
    assert Organization.objects.filter(tenant=world.globex).count() == 1


def test_a_duplicate_sibling_name_answers_409(world, api_as):
    response = api_as(world.tenant_admin).post(
        "/api/v1/orgs", {"name": "marketing", "parent": str(world.root.pk)}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "name_taken"


def test_bad_fields_answer_400_and_create_nothing(world, api_as):
    before = Organization.objects.count()
    response = api_as(world.tenant_admin).post("/api/v1/orgs", {"name": "", "parent": "nope"}, format="json")
    assert response.status_code == 400
    assert {"name", "parent"} <= set(response.json())
    assert Organization.objects.count() == before


# -- update, move, delete, restore ---------------------------------------------------------------------------------


def test_patch_changes_the_writable_fields_only(world, api_as):
    response = api_as(world.tenant_admin).patch(
        org_url(world.emea),
        {
            "name": "Europe",
            "access_inheritance": "admins_only",
            "tenant": str(world.globex.pk),
            "parent": str(world.root.pk),
            "id": "00000000-0000-0000-0000-000000000000",
            "depth": 0,
        },
        format="json",
    )
    assert response.status_code == 200
    emea = Organization.objects.get(pk=world.emea.pk)
    assert (emea.name, emea.access_inheritance) == ("Europe", "admins_only")
    assert (emea.tenant_id, emea.parent_id) == (world.acme.pk, world.marketing.pk)


def test_a_guest_cannot_patch(world, api_as, guest):
    response = api_as(guest).patch(org_url(world.emea), {"name": "Mine"}, format="json")
    assert response.status_code == 403
    assert Organization.objects.get(pk=world.emea.pk).name == "EMEA"


def test_a_bad_access_inheritance_answers_400(world, api_as):
    response = api_as(world.tenant_admin).patch(org_url(world.emea), {"access_inheritance": "some"}, format="json")
    assert response.status_code == 400 and "access_inheritance" in response.json()


def test_move_reparents_the_subtree(world, api_as):
    response = api_as(world.tenant_admin).post(
        org_url(world.emea, "/move"), {"parent": str(world.logistics.pk)}, format="json"
    )
    assert response.status_code == 200
    assert [p["name"] for p in response.json()["path"]] == ["Acme", "Logistics", "EMEA"]
    assert Organization.objects.get(pk=world.campaigns.pk).parent_id == world.emea.pk


def test_a_move_into_the_own_subtree_answers_409(world, api_as):
    response = api_as(world.tenant_admin).post(
        org_url(world.marketing, "/move"), {"parent": str(world.campaigns.pk)}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "cycle"
    assert Organization.objects.get(pk=world.marketing.pk).parent_id == world.root.pk


def test_a_move_to_another_tenant_is_refused(world, api_as):
    response = api_as(world.superuser).post(
        org_url(world.marketing, "/move"), {"parent": str(world.globex_root.pk)}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "cross_tenant"


def test_a_guest_cannot_move(world, api_as, guest):
    response = api_as(guest).post(org_url(world.campaigns, "/move"), {"parent": str(world.marketing.pk)}, format="json")
    assert response.status_code == 403


def test_delete_is_soft_and_restore_brings_the_subtree_back(world, api_as):
    client = api_as(world.tenant_admin)
    assert client.delete(org_url(world.marketing)).status_code == 204
    assert client.get(org_url(world.emea)).status_code == 404
    assert Organization.objects.filter(pk=world.emea.pk).exists()
    response = client.post(org_url(world.marketing, "/restore"))
    assert response.status_code == 200
    assert client.get(org_url(world.campaigns)).status_code == 200


def test_a_guest_cannot_delete_and_others_cannot_restore(world, api_as, guest):
    assert api_as(guest).delete(org_url(world.emea)).status_code == 403
    api_as(world.tenant_admin).delete(org_url(world.emea))
    assert api_as(world.other_admin).post(org_url(world.emea, "/restore")).status_code == 404
    assert api_as(guest).post(org_url(world.emea, "/restore")).status_code == 404


def test_the_root_cannot_be_deleted(world, api_as):
    response = api_as(world.tenant_admin).delete(org_url(world.root))
    assert response.status_code == 409 and response.json()["code"] == "root"


# -- tenants -------------------------------------------------------------------------------------------------------


def test_tenants_list_what_the_caller_administers(world, api_as, django_assert_max_num_queries):
    client = api_as(world.tenant_admin)
    with django_assert_max_num_queries(5):
        body = (response := client.get("/api/v1/tenants")).json()
        assert response.status_code == 200 and body["results"]
    assert [t["name"] for t in body["results"]] == ["Acme"]
    assert body["results"][0]["root_org"] == str(world.root.pk)
    assert [t["name"] for t in api_as(world.superuser).get("/api/v1/tenants").json()["results"]] == ["Acme", "Globex"]
    assert api_as(world.member).get("/api/v1/tenants").json()["count"] == 0


def test_a_tenant_admin_renames_but_cannot_change_the_plan(world, api_as):
    client = api_as(world.tenant_admin)
    assert client.patch(f"/api/v1/tenants/{world.acme.pk}", {"name": "Acme Corp"}, format="json").status_code == 200
    response = client.patch(f"/api/v1/tenants/{world.acme.pk}", {"plan": "free"}, format="json")
    assert response.status_code == 403
    assert Tenant.objects.get(pk=world.acme.pk).plan == "paid"
    assert client.get(f"/api/v1/tenants/{world.globex.pk}").status_code == 404


def test_a_superuser_upgrades_a_plan(world, api_as):
    response = api_as(world.superuser).patch(f"/api/v1/tenants/{world.globex.pk}", {"plan": "paid"}, format="json")
    assert response.status_code == 200 and response.json()["plan"] == "paid"


# -- projects ------------------------------------------------------------------------------------------------------


def test_projects_are_listed_created_changed_and_deleted(world, api_as, django_assert_max_num_queries):
    client = api_as(world.tenant_admin)
    response = client.post(org_url(world.marketing, "/projects"), {"name": "Blog"}, format="json")
    assert response.status_code == 201 and response.json()["org"] == str(world.marketing.pk)
    with django_assert_max_num_queries(6):
        listed = client.get(org_url(world.marketing, "/projects"))
        names = [p["name"] for p in listed.json()["results"]]
        assert listed.status_code == 200 and names
    assert names == ["Blog", "Website"]
    project_id = response.json()["id"]
    assert client.patch(f"/api/v1/projects/{project_id}", {"name": "Journal"}, format="json").status_code == 200
    assert client.delete(f"/api/v1/projects/{project_id}").status_code == 204
    assert not Project.objects.filter(pk=project_id).exists()


def test_a_guest_reads_projects_but_cannot_change_them(world, api_as, guest):
    client = api_as(guest)
    assert client.get(f"/api/v1/projects/{world.website.pk}").status_code == 200
    assert client.post(org_url(world.marketing, "/projects"), {"name": "X"}, format="json").status_code == 403
    assert client.patch(f"/api/v1/projects/{world.website.pk}", {"name": "X"}, format="json").status_code == 403
    assert client.delete(f"/api/v1/projects/{world.website.pk}").status_code == 403


def test_another_tenants_project_answers_404(world, api_as):
    client = api_as(world.tenant_admin)
    assert client.get(f"/api/v1/projects/{world.globex_project.pk}").status_code == 404
    assert client.delete(f"/api/v1/projects/{world.globex_project.pk}").status_code == 404
    assert Project.objects.filter(pk=world.globex_project.pk).exists()


def test_a_duplicate_project_name_answers_409_and_a_blank_one_400(world, api_as):
    client = api_as(world.tenant_admin)
    assert client.post(org_url(world.marketing, "/projects"), {"name": "website"}, format="json").status_code == 409
    assert client.post(org_url(world.marketing, "/projects"), {"name": ""}, format="json").status_code == 400


def test_a_project_member_sees_only_that_project(world, api_as):
    user = UserFactory(username="contractor")
    add_to_tenant(user, world.acme)
    grant_role(actor=SYSTEM, target=world.website, role="integrator", user=user)
    other = make_org(world.marketing, "Other")
    from orgs.services import create_project

    create_project(actor=SYSTEM, org=world.marketing, name="Secret")
    client = api_as(user)
    assert client.get(f"/api/v1/projects/{world.website.pk}").status_code == 200
    assert [p["name"] for p in client.get(org_url(world.marketing, "/projects")).json()["results"]] == ["Website"]
    assert client.get(org_url(world.marketing)).status_code == 404
    assert client.get(org_url(other)).status_code == 404
    assert client.get("/api/v1/orgs").json()["count"] == 0


def test_an_admin_restricts_invitation_domains_with_the_setting_and_a_lock_binds_below(world, api_as):
    from resources.settings_registry import setting_value

    client = api_as(world.tenant_admin)
    url = f"/api/v1/orgs/{world.marketing.pk}/settings/allowed_invite_domains"
    response = client.put(url, {"value": ["ACME.com", "@acme.de"], "locked": True}, format="json")
    assert response.status_code == 200 and response.json()["value"] == ["acme.com", "acme.de"]
    response = client.put(url, {"value": ["not a domain"]}, format="json")
    assert response.status_code == 400 and "is not a domain" in response.content.decode()
    assert setting_value(world.campaigns, "allowed_invite_domains") == ["acme.com", "acme.de"]
    widen = client.put(f"/api/v1/orgs/{world.emea.pk}/settings/allowed_invite_domains", {"value": []}, format="json")
    assert widen.status_code == 409 and widen.json()["code"] == "locked"
    assert "invite_domains" not in client.get(org_url(world.marketing)).json()
