"""The tenant's people: its administrators make or unmake tenant administrators and remove people, in the console
and the API; nobody else sees the list, and nothing here touches an account."""

from __future__ import annotations

from access.models import OrgUserGrant, TenantMembership
from tests.factories import UserFactory, add_to_tenant


def test_a_tenant_admin_lists_the_people_with_a_query_budget(world, people, api_as, django_assert_max_num_queries):
    client = api_as(world.tenant_admin)
    with django_assert_max_num_queries(6):
        small = client.get(f"/api/v1/tenants/{world.acme.pk}/members")
    for i in range(20):
        add_to_tenant(UserFactory(username=f"extra{i}"), world.acme)
    with django_assert_max_num_queries(6):
        large = client.get(f"/api/v1/tenants/{world.acme.pk}/members")
    assert small.status_code == large.status_code == 200
    assert large.json()["count"] == small.json()["count"] + 20
    first = small.json()["results"][0]
    assert first["user"]["username"] == "alice" and first["is_admin"] is True
    found = client.get(f"/api/v1/tenants/{world.acme.pk}/members", {"search": "EXTRA1"}).json()
    assert {m["user"]["username"] for m in found["results"]} >= {"extra1", "extra10"}


def test_others_get_404_and_org_admins_403_nothing_changes(world, people, api_as):
    bob = world.member
    assert api_as(world.other_admin).get(f"/api/v1/tenants/{world.acme.pk}/members").status_code == 404
    response = api_as(people["admin"]).delete(f"/api/v1/tenants/{world.acme.pk}/members/{bob.pk}")
    assert response.status_code == 404  # an org Admin is not a tenant administrator: the tenant is invisible
    assert TenantMembership.objects.filter(tenant=world.acme, user=bob).exists()


def test_a_tenant_admin_makes_and_unmakes_an_administrator(world, api_as):
    client = api_as(world.tenant_admin)
    url = f"/api/v1/tenants/{world.acme.pk}/members/{world.member.pk}"
    assert client.patch(url, {"is_admin": True}, format="json").json()["is_admin"] is True
    assert client.patch(url, {"is_admin": False}, format="json").json()["is_admin"] is False
    last = client.patch(f"/api/v1/tenants/{world.acme.pk}/members/{world.tenant_admin.pk}", {"is_admin": False},
                        format="json")  # fmt: skip
    assert last.status_code == 409 and last.json()["code"] == "last_tenant_admin"
    assert client.patch(url, {"is_admin": "maybe"}, format="json").status_code == 400
    assert client.patch(f"/api/v1/tenants/{world.acme.pk}/members/{world.outsider.pk}", {"is_admin": True},
                        format="json").status_code == 404  # fmt: skip


def test_a_tenant_admin_removes_someone_and_every_grant_goes(world, people, api_as):
    client = api_as(world.tenant_admin)
    victim = people["integrator"]
    assert client.delete(f"/api/v1/tenants/{world.acme.pk}/members/{victim.pk}").status_code == 204
    assert not TenantMembership.objects.filter(tenant=world.acme, user=victim).exists()
    assert not OrgUserGrant.objects.filter(user=victim).exists()
    assert api_as(victim).get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 404


def test_the_people_page_is_for_tenant_admins(world, people, as_user, django_assert_max_num_queries):
    url = f"/o/{world.marketing.pk}/people/"
    client = as_user(world.tenant_admin)
    with django_assert_max_num_queries(14):
        page = client.get(url)
    assert page.status_code == 200 and "People of Acme" in page.content.decode()
    assert ">People<" in client.get(f"/o/{world.marketing.pk}/").content.decode()
    assert as_user(people["admin"]).get(url).status_code == 403
    assert ">People<" not in as_user(people["admin"]).get(f"/o/{world.marketing.pk}/").content.decode()
    assert as_user(world.other_admin).get(url).status_code == 404


def test_removing_from_the_console_needs_the_confirmation(world, people, as_user):
    client = as_user(world.tenant_admin)
    url = f"/o/{world.marketing.pk}/people/"
    victim = people["guest"]
    asked = client.post(url, {"action": "remove", "user": str(victim.pk)})
    assert asked.status_code == 200 and f"Remove {victim.username} from Acme?" in asked.content.decode()
    assert TenantMembership.objects.filter(tenant=world.acme, user=victim).exists()
    client.post(url, {"action": "remove", "user": str(victim.pk), "confirmed": "1"})
    assert not TenantMembership.objects.filter(tenant=world.acme, user=victim).exists()
    assert client.post(url, {"action": "remove", "user": str(world.outsider.pk), "confirmed": "1"}).status_code == 404
    client.post(url, {"action": "make-admin", "user": str(world.member.pk)})
    assert TenantMembership.objects.get(tenant=world.acme, user=world.member).is_admin
