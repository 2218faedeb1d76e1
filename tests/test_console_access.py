"""Console pages of the access core: members (and CSV), teams, roles, invitations, explain, audit log."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from access.models import AuditEvent, Invitation, OrgUserGrant, Role, Team
from access.services.invitations import invite
from tests.factories import PASSWORD


def page(org, name):
    return f"/o/{org.pk}/{name}/"


PAGES = ["members", "teams", "roles", "invitations", "explain", "audit"]


@pytest.mark.parametrize("name", PAGES)
def test_other_tenants_and_outsiders_get_404(world, people, as_user, name):
    for user in (world.other_admin, world.outsider):
        assert as_user(user).get(page(world.marketing, name)).status_code == 404


@pytest.mark.parametrize(
    ("name", "guest_status"),
    [("members", 200), ("teams", 200), ("roles", 200), ("explain", 200), ("invitations", 403), ("audit", 403)],
)
def test_a_guest_reads_what_member_view_allows(world, people, as_user, name, guest_status):
    assert as_user(people["guest"]).get(page(world.emea, name)).status_code == guest_status
    assert as_user(people["admin"]).get(page(world.emea, name)).status_code == 200


def test_the_tabs_follow_the_capabilities(world, people, as_user):
    guest_html = as_user(people["guest"]).get(page(world.emea, "members")).content.decode()
    assert "Members" in guest_html and "Audit log" not in guest_html and "Invitations" not in guest_html
    admin_html = as_user(people["admin"]).get(f"/o/{world.emea.pk}/").content.decode()
    assert "Audit log" in admin_html and "Invitations" in admin_html


def test_members_page_lists_inherited_members_and_offers_actions_to_admins_only(
    world, people, as_user, django_assert_max_num_queries
):
    client = as_user(people["guest"])
    client.get(f"/o/{world.emea.pk}/")
    with django_assert_max_num_queries(14):
        html = (response := client.get(page(world.emea, "members"))).content.decode()
        assert response.status_code == 200 and "admin-m" in html
    assert "admin-m" in html and "inherited" in html and "Add a member" not in html
    assert "Add a member" in as_user(people["admin"]).get(page(world.emea, "members")).content.decode()


def test_an_admin_adds_changes_and_removes_a_member(world, people, as_user):
    client = as_user(people["admin"])
    response = client.post(page(world.emea, "members"), {"user": str(people["newcomer"].pk), "role": "guest"})
    assert response.status_code == 302
    grant = OrgUserGrant.objects.get(user=people["newcomer"], content_object=world.emea)
    client.post(f"/o/{world.emea.pk}/members/{grant.pk}/role", {"role": "integrator"})
    assert OrgUserGrant.objects.get(pk=grant.pk).role.key == "integrator"
    client.post(f"/o/{world.emea.pk}/members/{grant.pk}/remove", {"confirmed": "1"})
    assert not OrgUserGrant.objects.filter(pk=grant.pk).exists()


def test_a_guest_cannot_add_members_even_by_posting(world, people, as_user):
    response = as_user(people["guest"]).post(
        page(world.emea, "members"), {"user": str(people["newcomer"].pk), "role": "admin"}
    )
    assert response.status_code == 403
    assert not OrgUserGrant.objects.filter(user=people["newcomer"]).exists()


def test_adding_without_a_person_or_team_is_a_form_error(world, people, as_user):
    response = as_user(people["admin"]).post(page(world.emea, "members"), {"role": "guest"})
    assert response.status_code == 400 and "Choose a person or a team" in response.content.decode()


def test_members_csv_export(world, people, as_user):
    response = as_user(people["admin"]).get(page(world.emea, "members"), {"format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("username,email,team,role")
    assert any(line.startswith("admin-m,") and ",yes," in line for line in lines)


def test_teams_page_creates_and_fills_a_team(world, people, as_user):
    client = as_user(people["admin"])
    assert client.post(page(world.marketing, "teams"), {"name": "Web"}).status_code == 302
    team = Team.objects.get(name="Web")
    client.post(f"/o/{world.marketing.pk}/teams/{team.pk}/", {"action": "add", "user": str(people["newcomer"].pk)})
    assert team.group.user_set.filter(pk=people["newcomer"].pk).exists()
    assert as_user(people["guest"]).post(page(world.marketing, "teams"), {"name": "Nope"}).status_code == 403


def test_roles_page_creates_a_custom_role_within_the_admins_capabilities(world, people, as_user):
    client = as_user(people["admin"])
    response = client.post(
        page(world.marketing, "roles"), {"name": "Auditor", "capabilities": ["org.view", "audit.view"]}
    )
    assert response.status_code == 302
    assert Role.objects.get(name="Auditor").custom_capabilities == ["audit.view", "org.view"]
    response = client.post(page(world.marketing, "roles"), {"name": "Boss", "capabilities": ["org.create_child"]})
    # An escalation is a Forbidden: the 403 page, in the org, saying why (config/console.py's one mapping).
    assert response.status_code == 403 and not Role.objects.filter(name="Boss").exists()
    html = response.content.decode()
    assert "org.create_child" in html and 'aria-label="Organization sections"' in html


def test_invitations_page_invites_shows_the_link_once_and_revokes(
    world, people, as_user, mailoutbox, django_capture_on_commit_callbacks
):
    client = as_user(people["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        html = client.post(
            page(world.marketing, "invitations"), {"email": "dana@example.com", "role": "guest", "days": 7}
        ).content.decode()
    assert 'data-testid="invite-link"' in html and len(mailoutbox) == 1
    invitation = Invitation.objects.get(email="dana@example.com")
    client.post(
        page(world.marketing, "invitations"), {"action": "revoke", "confirmed": "1", "invitation": str(invitation.pk)}
    )
    assert Invitation.objects.get(pk=invitation.pk).status == "revoked"


def test_accepting_an_invitation_in_the_console(world, people, client):
    _, raw = invite(actor=world.tenant_admin, org=world.logistics, email="new@example.com", role="integrator")
    assert "Invitation code" in client.get("/invitations/accept/").content.decode()
    # The page's script posts the code from the link's fragment; the session then keeps the invitation's id only.
    response = client.post("/invitations/accept/", {"code": raw})
    assert response.status_code == 302 and response["Location"] == "/invitations/accept/"
    assert raw not in str(dict(client.session))
    assert "Join Logistics" in client.get("/invitations/accept/").content.decode()
    response = client.post("/invitations/accept/", {"action": "accept", "username": "newbie", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == f"/o/{world.logistics.pk}/"
    assert get_user_model().objects.get(username="newbie").email_verified  # the link proved the address
    client.post("/invitations/accept/", {"code": raw})
    response = client.get("/invitations/accept/")
    assert response.status_code == 409 and "already been used" in response.content.decode()
    response = client.post("/invitations/accept/", {"code": "inv_bogus"})
    assert response.status_code == 400 and "does not exist" in response.content.decode()


def test_an_old_link_with_the_code_in_its_path_still_opens_the_invitation(world, client):
    _, raw = invite(actor=world.tenant_admin, org=world.logistics, email="new@example.com", role="integrator")
    response = client.get(f"/invitations/{raw}/")
    assert response.status_code == 302 and response["Location"] == "/invitations/accept/"
    assert "Join Logistics" in client.get("/invitations/accept/").content.decode()
    assert client.get("/invitations/inv_bogus/").status_code == 404


def test_explain_page_shows_the_decision_and_validates(world, people, as_user):
    client = as_user(people["admin"])
    html = client.get(page(world.emea, "explain"), {"user": "integrator-m", "capability": "task.run"}).content.decode()
    assert "may</span>" in html and "Marketing" in html
    assert client.get(page(world.emea, "explain"), {"user": "gina", "capability": "task.run"}).status_code == 400


def test_audit_page_filters_and_exports(world, people, as_user, django_assert_max_num_queries):
    client = as_user(people["admin"])
    client.get(f"/o/{world.marketing.pk}/")
    with django_assert_max_num_queries(14):
        html = (response := client.get(page(world.marketing, "audit"), {"action": "grant."})).content.decode()
        assert response.status_code == 200 and "grant.create" in html
    assert "<code>grant.create</code>" in html and "<code>org.create</code>" not in html
    assert client.get(page(world.marketing, "audit"), {"since": "soon"}).status_code == 400  # a form error (#11)
    csv_text = client.get(page(world.marketing, "audit"), {"format": "csv"}).content.decode()
    assert csv_text.splitlines()[0] == "time,actor,action,org,target_type,target,changes,ip,changes_json"
    assert AuditEvent.objects.filter(org=world.marketing).count() == len(
        [line for line in csv_text.splitlines()[1:] if ",Marketing," in line]
    )


def test_project_members_page(world, people, as_user, django_assert_max_num_queries):
    url = f"/o/{world.marketing.pk}/p/{world.website.pk}/members/"
    admin = as_user(people["admin"])
    response = admin.post(url, {"user": str(people["newcomer"].pk), "role": "integrator"})
    assert response.status_code == 302
    grant = world.website.user_grants.get(user=people["newcomer"])
    with django_assert_max_num_queries(14):
        assert (response := admin.get(url)).status_code == 200
        assert "newcomer" in response.content.decode()
    guest = as_user(people["guest"])
    assert guest.get(url).status_code == 200
    assert guest.post(url, {"user": str(people["integrator"].pk), "role": "admin"}).status_code == 403
    assert as_user(world.other_admin).get(url).status_code == 404
    admin = as_user(people["admin"])
    admin.post(url, {"action": "remove", "confirmed": "1", "grant": str(grant.pk), "version": grant.version})
    assert not world.website.user_grants.filter(pk=grant.pk).exists()
