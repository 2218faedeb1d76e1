"""The access core through the API: members, escalation, mass assignment, teams, roles, invitations, explain, audit."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from access.models import AuditEvent, Invitation, OrgUserGrant, Role
from access.services.teams import create_team
from config.actors import SYSTEM
from orgs.services import update_org
from tests.factories import PASSWORD


def members_url(org):
    return f"/api/v1/orgs/{org.pk}/members"


# -- members -------------------------------------------------------------------------------------------------------


def test_members_lists_direct_and_inherited_grants(world, people, api_as, django_assert_max_num_queries):
    client = api_as(people["guest"])
    client.get("/api/v1/me")
    with django_assert_max_num_queries(9):
        body = (response := client.get(members_url(world.emea))).json()
        assert response.status_code == 200 and body["results"]
    rows = {(m["user"]["username"] if m["user"] else m["team"]["name"]): m for m in body["results"]}
    assert rows["admin-m"]["inherited"] is True and rows["admin-m"]["org_name"] == "Marketing"
    assert rows["alice"]["role"] == "admin" and rows["alice"]["org"] == str(world.root.pk)
    assert {"id", "user", "role", "org", "inherited"} <= set(rows["guest-m"])


def test_members_of_an_org_that_cuts_inheritance_leave_out_the_cut_grants(world, people, api_as):
    update_org(actor=SYSTEM, org=world.emea, access_inheritance="admins_only")
    names = [m["user"]["username"] for m in api_as(world.tenant_admin).get(members_url(world.emea)).json()["results"]]
    assert "admin-m" in names and "guest-m" not in names and "integrator-m" not in names


def test_outsiders_and_other_tenants_get_404_for_members(world, people, api_as):
    for user in (world.outsider, world.other_admin, world.member):
        assert api_as(user).get(members_url(world.marketing)).status_code == 404


def test_an_admin_adds_a_member_by_username(world, people, api_as):
    response = api_as(people["admin"]).post(
        members_url(world.emea), {"user": "newcomer", "role": "integrator"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["role"] == "integrator" and response.json()["inherited"] is False
    assert OrgUserGrant.objects.filter(user=people["newcomer"], content_object=world.emea).exists()


def test_adding_someone_outside_the_tenant_is_a_field_error(world, people, api_as):
    response = api_as(people["admin"]).post(members_url(world.emea), {"user": "gina", "role": "guest"}, format="json")
    assert response.status_code == 400 and "user" in response.json()
    assert not OrgUserGrant.objects.filter(user=world.other_admin, content_object=world.emea).exists()


def test_an_integrator_cannot_add_members(world, people, api_as):
    response = api_as(people["integrator"]).post(
        members_url(world.emea), {"user": "newcomer", "role": "guest"}, format="json"
    )
    assert response.status_code == 403
    assert not OrgUserGrant.objects.filter(user=people["newcomer"]).exists()


def test_an_admin_of_a_child_cannot_grant_on_its_parent(world, people, api_as):
    response = api_as(people["admin"]).post(
        members_url(world.root), {"user": "newcomer", "role": "guest"}, format="json"
    )
    assert response.status_code == 404


def test_nobody_grants_beyond_what_they_hold(world, people, api_as):
    api_as(world.tenant_admin).post(
        f"/api/v1/orgs/{world.root.pk}/roles",
        {"name": "Creator", "key": "creator", "capabilities": ["org.view", "org.create_child"]},
        format="json",
    )
    response = api_as(people["admin"]).post(
        members_url(world.emea), {"user": "newcomer", "role": "creator"}, format="json"
    )
    assert response.status_code == 403 and response.json()["code"] == "escalation"


def test_no_field_lets_a_caller_set_their_own_role_tenant_or_org(world, people, api_as):
    client = api_as(people["guest"])
    grant = OrgUserGrant.objects.get(user=people["guest"])
    response = client.patch(f"/api/v1/members/{grant.pk}", {"role": "admin"}, format="json")
    assert response.status_code == 403
    response = client.patch(
        f"/api/v1/orgs/{world.marketing.pk}",
        {"tenant": str(world.globex.pk), "capabilities": ["org.manage"], "parent": None},
        format="json",
    )
    assert response.status_code == 403
    me = api_as(people["guest"])
    me.patch("/api/v1/me", {"username": "boss", "is_superuser": True}, format="json")
    guest = type(people["guest"]).objects.get(pk=people["guest"].pk)
    assert guest.username == "guest-m" and not guest.is_superuser
    assert OrgUserGrant.objects.get(pk=grant.pk).role.key == "guest"


def test_changing_a_role_is_seen_by_the_next_request(world, people, api_as):
    guest_client = api_as(people["guest"])
    assert "task.run" not in guest_client.get(f"/api/v1/orgs/{world.emea.pk}").json()["capabilities"]
    grant = OrgUserGrant.objects.get(user=people["guest"])
    assert (
        api_as(people["admin"]).patch(f"/api/v1/members/{grant.pk}", {"role": "integrator"}, format="json").status_code
        == 200
    )
    assert "task.run" in guest_client.get(f"/api/v1/orgs/{world.emea.pk}").json()["capabilities"]
    assert api_as(people["admin"]).delete(f"/api/v1/members/{grant.pk}").status_code == 204
    assert guest_client.get(f"/api/v1/orgs/{world.emea.pk}").status_code == 404


def test_a_member_of_another_tenant_is_not_found_by_id(world, people, api_as):
    gina_grant = OrgUserGrant.objects.get(user=world.other_admin)
    assert api_as(world.tenant_admin).delete(f"/api/v1/members/{gina_grant.pk}").status_code == 404
    assert OrgUserGrant.objects.filter(pk=gina_grant.pk).exists()


def test_an_unknown_role_is_a_field_error(world, people, api_as):
    response = api_as(world.tenant_admin).post(
        members_url(world.emea), {"user": "newcomer", "role": "god"}, format="json"
    )
    assert response.status_code == 400 and "role" in response.json()


def test_an_expired_grant_is_listed_nowhere_and_gives_nothing(world, people, api_as):
    response = api_as(world.tenant_admin).post(
        members_url(world.logistics),
        {"user": "newcomer", "role": "guest", "expires_at": (timezone.now() + timedelta(hours=1)).isoformat()},
        format="json",
    )
    assert response.status_code == 201
    OrgUserGrant.objects.filter(pk=response.json()["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api_as(people["newcomer"]).get(f"/api/v1/orgs/{world.logistics.pk}").status_code == 404


def test_project_members_get_that_project_only(world, people, api_as):
    client = api_as(world.tenant_admin)
    response = client.post(
        f"/api/v1/projects/{world.website.pk}/members", {"user": "newcomer", "role": "integrator"}, format="json"
    )
    assert response.status_code == 201
    body = client.get(f"/api/v1/projects/{world.website.pk}/members").json()
    assert [m["user"]["username"] for m in body["results"]] == ["newcomer"]
    newcomer = api_as(people["newcomer"])
    assert newcomer.get(f"/api/v1/projects/{world.website.pk}").status_code == 200
    assert newcomer.get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 404


# -- teams and roles -----------------------------------------------------------------------------------------------


def test_teams_hold_roles_like_users(world, people, api_as):
    admin = api_as(people["admin"])
    team = admin.post(f"/api/v1/orgs/{world.marketing.pk}/teams", {"name": "Web"}, format="json").json()
    assert admin.post(f"/api/v1/teams/{team['id']}/members", {"user": "newcomer"}, format="json").status_code == 201
    response = admin.post(members_url(world.emea), {"team": team["id"], "role": "integrator"}, format="json")
    assert response.status_code == 201 and response.json()["team"]["name"] == "Web"
    assert "task.run" in api_as(people["newcomer"]).get(f"/api/v1/orgs/{world.campaigns.pk}").json()["capabilities"]
    assert admin.delete(f"/api/v1/teams/{team['id']}/members/newcomer").status_code == 204
    assert api_as(people["newcomer"]).get(f"/api/v1/orgs/{world.campaigns.pk}").status_code == 404


def test_a_guest_cannot_create_teams_and_outsiders_cannot_see_them(world, people, api_as):
    assert (
        api_as(people["guest"])
        .post(f"/api/v1/orgs/{world.marketing.pk}/teams", {"name": "X"}, format="json")
        .status_code
        == 403
    )
    team = create_team(actor=SYSTEM, org=world.marketing, name="Hidden")
    assert api_as(world.other_admin).get(f"/api/v1/teams/{team.pk}").status_code == 404
    assert api_as(people["guest"]).get(f"/api/v1/teams/{team.pk}").status_code == 200


def test_roles_list_built_in_and_custom_and_custom_ones_are_editable(world, people, api_as):
    client = api_as(world.tenant_admin)
    response = client.post(
        f"/api/v1/orgs/{world.root.pk}/roles",
        {"name": "Security officer", "capabilities": ["org.view", "audit.view"]},
        format="json",
    )
    assert response.status_code == 201 and response.json()["key"] == "security-officer"
    keys = [r["key"] for r in client.get(f"/api/v1/orgs/{world.emea.pk}/roles").json()["results"]]
    assert {"admin", "integrator", "guest", "security-officer"} <= set(keys)
    role_id = response.json()["id"]
    assert client.patch(f"/api/v1/roles/{role_id}", {"capabilities": ["org.view"]}, format="json").status_code == 200
    assert Role.objects.get(pk=role_id).custom_capabilities == ["org.view"]
    assert (
        client.post(
            f"/api/v1/orgs/{world.root.pk}/roles", {"name": "Bad", "capabilities": ["fly"]}, format="json"
        ).status_code
        == 400
    )
    assert api_as(world.other_admin).get(f"/api/v1/roles/{role_id}").status_code == 404
    builtin = Role.objects.get(key="admin", tenant__isnull=True)
    assert client.patch(f"/api/v1/roles/{builtin.pk}", {"name": "Root"}, format="json").status_code == 404


# -- invitations ---------------------------------------------------------------------------------------------------


def test_invite_then_accept_as_a_new_user(world, people, api_as, api, mailoutbox):
    response = api_as(people["admin"]).post(
        f"/api/v1/orgs/{world.marketing.pk}/invitations",
        {"email": "dana@example.com", "role": "integrator"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert {"id", "email", "role", "expires_at", "accept_url"} <= set(body)
    path, token = body["accept_url"].split("#", 1)
    assert path.endswith("/invitations/accept/") and token.startswith("inv_")  # the code never travels in a path
    assert not Invitation.objects.filter(token_hash=token).exists()
    accepted = api.post(
        "/api/v1/invitations/accept", {"token": token, "username": "dana", "password": PASSWORD}, format="json"
    )
    assert accepted.status_code == 200 and accepted.json()["role"] == "integrator"
    again = api.post(
        "/api/v1/invitations/accept", {"token": token, "username": "dana2", "password": PASSWORD}, format="json"
    )
    assert again.status_code == 409 and again.json()["code"] == "invitation_used"


def test_a_signed_in_user_accepts_with_an_empty_body(world, people, api_as):
    body = (
        api_as(world.tenant_admin)
        .post(
            f"/api/v1/orgs/{world.logistics.pk}/invitations",
            {"email": "charlie@example.com", "role": "guest"},
            format="json",
        )
        .json()
    )
    token = body["accept_url"].split("#", 1)[1]
    client = api_as(world.outsider)
    assert client.post("/api/v1/invitations/accept", {"token": token}, format="json").status_code == 200
    assert client.get(f"/api/v1/orgs/{world.logistics.pk}").status_code == 200


def test_the_deprecated_accept_path_still_works(world, api_as):
    body = api_as(world.tenant_admin).post(
        f"/api/v1/orgs/{world.logistics.pk}/invitations", {"email": "charlie@example.com", "role": "guest"},
        format="json",
    ).json()  # fmt: skip
    token = body["accept_url"].split("#", 1)[1]
    accepted = api_as(world.outsider).post(f"/api/v1/invitations/{token}/accept", {}, format="json")
    assert accepted.status_code == 200
    assert accepted["Sunset"] == "Tue, 01 Jun 2027 00:00:00 GMT"  # and it says so, with where to go instead
    assert accepted["Link"] == '</api/v1/docs/#/invitations/acceptInvitation>; rel="deprecation"'


def test_a_guest_cannot_invite(world, people, api_as):
    response = api_as(people["guest"]).post(
        f"/api/v1/orgs/{world.marketing.pk}/invitations", {"email": "x@example.com", "role": "guest"}, format="json"
    )
    assert response.status_code == 403 and not Invitation.objects.exists()


def test_invitations_are_listed_and_revoked(world, people, api_as, django_assert_max_num_queries):
    client = api_as(world.tenant_admin)
    created = client.post(
        f"/api/v1/orgs/{world.marketing.pk}/invitations",
        {"email": "r@example.com", "role": "guest", "expires_in_days": 3},
        format="json",
    ).json()
    with django_assert_max_num_queries(6):
        listed = (response := client.get(f"/api/v1/orgs/{world.marketing.pk}/invitations")).json()
        assert response.status_code == 200 and listed["results"]
    assert [i["email"] for i in listed["results"]] == ["r@example.com"]
    assert client.delete(f"/api/v1/invitations/{created['id']}").json()["status"] == "revoked"
    token = created["accept_url"].split("#", 1)[1]
    response = api_as(world.outsider).post("/api/v1/invitations/accept", {"token": token}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "invitation_revoked"


def test_an_invitation_longer_than_30_days_is_refused(world, api_as):
    response = api_as(world.tenant_admin).post(
        f"/api/v1/orgs/{world.marketing.pk}/invitations",
        {"email": "l@example.com", "role": "guest", "expires_in_days": 31},
        format="json",
    )
    assert response.status_code == 400 and "expires_in_days" in response.json()


def test_an_unknown_invitation_token_is_404(db, api):
    assert api.post("/api/v1/invitations/inv_nope/accept", {}, format="json").status_code == 404


# -- explain and audit ---------------------------------------------------------------------------------------------


def test_explain_names_the_deciding_grant_and_the_cut(world, people, api_as):
    client = api_as(world.tenant_admin)
    body = client.get(
        f"/api/v1/orgs/{world.campaigns.pk}/explain", {"user": "integrator-m", "capability": "task.run"}
    ).json()
    assert body["allowed"] is True
    assert any("Marketing" in reason for reason in body["reasons"])
    update_org(actor=SYSTEM, org=world.emea, access_inheritance="none")
    body = client.get(
        f"/api/v1/orgs/{world.campaigns.pk}/explain", {"user": "integrator-m", "capability": "task.run"}
    ).json()
    assert body["allowed"] is False
    assert any("EMEA" in reason for reason in body["reasons"])


def test_explain_validates_its_parameters(world, people, api_as):
    client = api_as(world.tenant_admin)
    response = client.get(f"/api/v1/orgs/{world.emea.pk}/explain", {"user": "gina", "capability": "fly"})
    assert response.status_code == 400 and {"capability"} <= set(response.json())
    assert (
        api_as(world.outsider)
        .get(f"/api/v1/orgs/{world.emea.pk}/explain", {"user": "alice", "capability": "org.view"})
        .status_code
        == 404
    )


def test_the_audit_log_needs_audit_view_and_filters(world, people, api_as, django_assert_max_num_queries):
    assert api_as(people["integrator"]).get(f"/api/v1/orgs/{world.marketing.pk}/audit-events").status_code == 403
    client = api_as(people["admin"])
    client.post(f"/api/v1/orgs/{world.marketing.pk}/projects", {"name": "Blog"}, format="json")
    with django_assert_max_num_queries(8):
        body = (response := client.get(f"/api/v1/orgs/{world.marketing.pk}/audit-events")).json()
        assert response.status_code == 200 and body["results"]
    assert body["results"][0]["action"] == "project.create"
    assert all(e["org_name"] in ("Marketing", "EMEA", "Campaigns") for e in body["results"])
    only = client.get(f"/api/v1/orgs/{world.marketing.pk}/audit-events", {"actor": "admin-m"}).json()
    assert [e["action"] for e in only["results"]] == ["project.create"]
    grants = client.get(f"/api/v1/orgs/{world.marketing.pk}/audit-events", {"action": "grant."}).json()
    assert grants["count"] == 3
    assert client.get(f"/api/v1/orgs/{world.marketing.pk}/audit-events", {"since": "yesterday"}).status_code == 400
    assert not AuditEvent.objects.filter(changes__icontains="password").exists()


def test_the_audit_log_filters_by_subtree_target_and_until(world, people, api_as):
    """#11 §4: the console's org-subtree and target filters, in the API too."""
    client = api_as(people["admin"])
    base = f"/api/v1/orgs/{world.marketing.pk}/audit-events"
    client.post(f"/api/v1/orgs/{world.emea.pk}/projects", {"name": "Blog"}, format="json")
    client.post(f"/api/v1/orgs/{world.campaigns.pk}/projects", {"name": "Promo"}, format="json")
    names = lambda params: {e["target_name"] for e in client.get(base, params).json()["results"]}  # noqa: E731
    assert {"Blog", "Promo"} <= names({"org": str(world.emea.pk)})
    assert "Promo" not in names({"org": str(world.emea.pk), "descendants": "false"})
    assert names({"target_type": "orgs.project", "target": "pro"}) == {"Promo"}
    assert names({"until": "2000-01-01"}) == set()
    for bad in ({"org": str(world.logistics.pk)}, {"org": "nope"}, {"until": "later"},
                {"since": "2026-11-02", "until": "2026-11-01"}):  # fmt: skip
        response = client.get(base, bad)
        assert response.status_code == 400 and set(response.json()) & {"org", "until"}, bad
