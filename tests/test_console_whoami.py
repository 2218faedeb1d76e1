"""Issue #11 §1, §8, §9: the capability vocabulary in words, "who am I here" on every org page, the 403 page that
names the missing capability and whom to ask, the console's own 404 page under DEBUG, the favicon and the admin's
branding."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles import finders
from django.db import connection
from django.test.utils import CaptureQueriesContext

from access import policy, vocabulary
from access.models import Role
from access.org_views import RoleForm
from access.roles import BUILTIN_ROLES, CAPABILITIES, COMPONENT_PUSH, TENANT_ADMIN, TENANT_PLAN
from access.services.custom_roles import create_role
from access.services.grants import grant_role
from access.services.teams import add_team_member, create_team
from access.whoami import GRANTERS_SHOWN, granters, whoami
from config.actors import SYSTEM
from orgs.models import Organization
from orgs.services import update_org
from tests.factories import UserFactory, add_to_tenant, make_project


def url(org: Organization, suffix: str = "") -> str:
    return f"/o/{org.pk}/{suffix}"


def text_of(html: str) -> str:
    """The page's visible text, roughly: tags dropped, entities decoded, blanks folded."""
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", html)))


def whoami_block(html: str) -> str:
    match = re.search(r'<aside class="whoami".*?</aside>', html, re.S)
    assert match, "the page has no who-am-I block"
    return text_of(match.group(0))


def loaded(user: Any) -> Any:
    """``user`` with their grants loaded, as every org page has them after the switcher (policy.visible)."""
    policy.forget(user)
    list(policy.visible(user, "org.view", Organization.objects.all())[:1])
    return user


def member_of(world: Any, name: str) -> Any:
    user = UserFactory(username=name)
    add_to_tenant(user, world.acme)
    return user


# -- the vocabulary --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [*CAPABILITIES, TENANT_ADMIN, TENANT_PLAN, COMPONENT_PUSH])
def test_every_capability_has_a_label_and_a_one_line_description(key):
    entry = vocabulary.VOCABULARY.get(key)
    assert entry is not None, f"{key} has no words in access/vocabulary.py"
    assert entry.label and entry.label != key and "." not in entry.label
    assert entry.description.endswith(".") and "\n" not in entry.description
    assert entry.area in vocabulary.AREAS


def test_labels_are_distinct_and_the_vocabulary_names_nothing_unknown():
    labels = [entry.label for entry in vocabulary.VOCABULARY.values()]
    assert len(labels) == len(set(labels))
    assert set(vocabulary.VOCABULARY) == {*CAPABILITIES, TENANT_ADMIN, TENANT_PLAN, COMPONENT_PUSH}
    # An unknown key (a stale entry of a custom role) is shown as it is, never an error.
    assert vocabulary.label("nothing.such") == "nothing.such"


def test_by_area_groups_in_the_consoles_order():
    areas = vocabulary.by_area(["task.run", "org.view", "credential.view", "task.view"])
    assert [a.name for a in areas] == ["Organization", "Tasks", "Credentials"]
    assert [c.key for c in areas[1].capabilities] == ["task.view", "task.run"]


def test_the_custom_role_form_offers_labels_and_posts_keys():
    choices = dict(RoleForm().fields["capabilities"].choices)
    assert choices["credential.manage"] == "Manage credentials"
    assert RoleForm({"name": "X", "capabilities": ["credential.manage"]}).is_valid()


def test_the_roles_and_explain_pages_show_words_not_keys(world, people, as_user):
    client = as_user(people["admin"])
    roles = client.get(url(world.marketing, "roles/")).content.decode()
    assert "Manage credentials" in roles and "View the audit log" in roles
    table = roles.split("<tbody>")[1].split("</tbody>")[0]
    assert "credential.manage" not in table  # the role table: words only
    assert 'value="credential.manage"' in roles  # the custom-role form still posts the key
    explain = client.get(url(world.marketing, "explain/"), {"user": "guest-m", "capability": "member.manage"})
    page = explain.content.decode()
    assert explain.status_code == 200 and '<option value="member.manage" selected>Manage members</option>' in page
    assert "may not</span> manage members here" in page


def test_the_admins_custom_role_form_offers_labels(world, client):
    client.force_login(world.superuser)
    page = client.get("/admin/access/role/add/").content.decode()
    assert "Manage credentials" in page and 'value="credential.manage"' in page


# -- who am I here ---------------------------------------------------------------------------------------------------


def test_a_direct_role_and_what_it_allows_in_words(world, people, as_user):
    page = as_user(people["admin"]).get(url(world.marketing)).content.decode()
    block = whoami_block(page)
    assert "You here: Admin · direct" in block
    assert "What you can do here" in block and "Manage members" in block and "View the audit log" in block
    assert "<details" in page  # the panel opens without JavaScript
    guest = whoami_block(as_user(people["guest"]).get(url(world.marketing)).content.decode())
    assert "You here: Guest · direct" in guest and "View tasks and runs" in guest and "Manage members" not in guest


def test_an_inherited_role_names_where_it_comes_from(world, people, as_user):
    block = whoami_block(as_user(people["admin"]).get(url(world.campaigns)).content.decode())
    assert "You here: Admin · inherited from Marketing" in block


def test_a_role_through_a_team(world):
    user = member_of(world, "tess")
    team = create_team(actor=SYSTEM, org=world.marketing, name="Ops")
    add_team_member(actor=SYSTEM, team=team, user=user)
    grant_role(actor=SYSTEM, target=world.marketing, role="integrator", team=team)
    grant_role(actor=SYSTEM, target=world.emea, role="guest", user=user)
    me = whoami(loaded(user), world.emea)
    assert me.summary == ["Guest · direct", "Integrator · inherited from Marketing, through team Ops"]
    assert {c.key for area in me.can for c in area.capabilities} == BUILTIN_ROLES["integrator"]


def test_the_tenant_administrator_and_the_superuser(world, as_user):
    block = whoami_block(as_user(world.tenant_admin).get(url(world.emea)).content.decode())
    assert "You here: Tenant administrator of Acme" in block and "Administer the tenant" in block
    block = whoami_block(as_user(world.superuser).get(url(world.emea)).content.decode())
    assert "Superuser" in block


def test_a_grant_that_an_inheritance_cut_stops_is_shown_as_not_applying(world):
    user = member_of(world, "ike")
    grant_role(actor=SYSTEM, target=world.marketing, role="integrator", user=user)
    grant_role(actor=SYSTEM, target=world.emea, role="guest", user=user)
    update_org(actor=SYSTEM, org=world.emea, access_inheritance="admins_only")
    world.emea.refresh_from_db()
    me = whoami(loaded(user), world.emea)
    assert me.summary == ["Guest · direct"]
    cut = [s for s in me.sources if not s.applies]
    assert len(cut) == 1 and cut[0].cut_by == "EMEA" and "does not apply here" in cut[0].text
    assert "task.run" not in {c.key for area in me.can for c in area.capabilities}


def test_a_project_only_role(world, as_user):
    paula = member_of(world, "paula")
    grant_role(actor=SYSTEM, target=world.website, role="integrator", user=paula)
    other = make_project(world.logistics, "Depot")
    grant_role(actor=SYSTEM, target=other, role="guest", user=paula)
    me = whoami(loaded(paula), world.marketing)
    assert me.summary == ["Integrator · on project Website only"] and me.project_only
    response = as_user(paula).get(url(world.marketing, f"p/{world.website.pk}/"))
    block = whoami_block(response.content.decode())
    assert response.status_code == 200 and "Integrator · on project Website only" in block
    assert "On project Website" in block and "Run tasks" in block and "Depot" not in block


def test_a_custom_role_is_named(world, as_user):
    user = member_of(world, "ada")
    create_role(actor=SYSTEM, org=world.root, name="Auditor", capabilities=["org.view", "audit.view"])
    grant_role(actor=SYSTEM, target=world.root, role=Role.objects.get(name="Auditor"), user=user)
    block = whoami_block(as_user(user).get(url(world.marketing)).content.decode())
    assert "You here: Auditor · inherited from Acme" in block and "View the audit log" in block


def test_whoami_costs_no_query_for_built_in_org_roles_and_at_most_two_otherwise(world, people):
    admin = loaded(people["admin"])
    with CaptureQueriesContext(connection) as queries:
        whoami(admin, world.campaigns)
    assert len(queries) == 0
    user = member_of(world, "many")
    create_role(actor=SYSTEM, org=world.root, name="Auditor", capabilities=["org.view", "audit.view"])
    grant_role(actor=SYSTEM, target=world.root, role=Role.objects.get(name="Auditor"), user=user)
    for i in range(15):  # project grants in many projects, and org grants all along the path
        grant_role(actor=SYSTEM, target=make_project(world.marketing, f"P{i}"), role="guest", user=user)
    for org in (world.marketing, world.emea, world.campaigns):
        grant_role(actor=SYSTEM, target=org, role="guest", user=user)
    user = loaded(user)
    with CaptureQueriesContext(connection) as queries:
        me = whoami(user, world.campaigns)
    assert len(queries) <= 2 and len(me.sources) == 4
    with CaptureQueriesContext(connection) as queries:
        me = whoami(user, world.marketing)
    assert len(queries) <= 2 and len([s for s in me.sources if s.where == "project"]) == 15
    assert me.summary == ["Guest · direct", "Auditor · inherited from Acme", "and 15 more"]  # the line stays short


def test_org_pages_keep_their_query_budget_with_the_whoami_line(world, people, as_user, django_assert_max_num_queries):
    client = as_user(people["admin"])
    client.get(url(world.marketing))  # warm the per-process caches (kinds, content types)
    for org in (world.marketing, world.emea, world.campaigns):
        with django_assert_max_num_queries(25):
            assert client.get(url(org, "members/")).status_code == 200


def test_another_tenants_org_shows_nothing_of_it(world, people, as_user):
    response = as_user(people["admin"]).get(url(world.globex_root))
    assert response.status_code == 404 and "You here" not in response.content.decode()


# -- the 403 page -----------------------------------------------------------------------------------------------------


def test_the_403_page_names_the_missing_capability_and_whom_to_ask(world, people, as_user):
    response = as_user(people["guest"]).get(url(world.marketing, "invitations/"))
    page = response.content.decode()
    text = text_of(page)
    assert response.status_code == 403
    assert 'class="crumb' in page and 'aria-label="Organization sections"' in page  # still framed by the org
    assert "It needs the capability Manage members in Marketing" in text
    assert "Who can give you access" in text
    assert "admin-m" in text and "Administrators of Acme: alice" in text
    assert "integrator-m" not in text  # an Integrator cannot grant member.manage
    assert "You here: Guest · direct" in whoami_block(page)


def test_the_403_page_withholds_names_from_who_may_not_see_the_members(world, people, as_user):
    viewer = member_of(world, "vic")
    create_role(actor=SYSTEM, org=world.root, name="Onlooker", capabilities=["org.view"])
    grant_role(actor=SYSTEM, target=world.marketing, role=Role.objects.get(name="Onlooker"), user=viewer)
    response = as_user(viewer).get(url(world.marketing, "members/"))
    text = text_of(response.content.decode())
    assert response.status_code == 403 and "It needs the capability View members" in text
    assert "admin-m" not in text and "alice" not in text and "Ask an administrator of Marketing" in text


def test_a_denied_write_names_the_capability_and_changes_nothing(world, people, as_user):
    before = Organization.objects.count()
    response = as_user(people["guest"]).post(url(world.marketing, "new/"), {"name": "Nope"})
    assert response.status_code == 403 and Organization.objects.count() == before
    assert "Create sub-organizations" in text_of(response.content.decode())


def test_the_403_page_is_404_for_another_tenant(world, as_user):
    response = as_user(world.other_admin).get(url(world.marketing, "invitations/"))
    assert response.status_code == 404 and "Who can give you access" not in response.content.decode()


def test_the_api_403_body_is_unchanged(world, people, api_as):
    response = api_as(people["guest"]).post(
        f"/api/v1/orgs/{world.marketing.pk}/members", {"user": str(people["newcomer"].pk), "role": "guest"}
    )
    assert response.status_code == 403 and set(response.json()) == {"detail", "code"}


def test_granters_bounded_and_capped(world, django_assert_max_num_queries):
    for i in range(GRANTERS_SHOWN + 5):
        grant_role(actor=SYSTEM, target=world.root, role="admin", user=member_of(world, f"boss{i:02}"))
    guest = member_of(world, "gus")
    grant_role(actor=SYSTEM, target=world.marketing, role="guest", user=guest)
    guest = loaded(guest)
    with django_assert_max_num_queries(5):
        who = granters(guest, world.emea, "credential.manage")
    assert len(who.people) == GRANTERS_SHOWN and who.people[0] == "boss00" and who.tenant_admins == ["alice"]
    assert granters(guest, world.emea, TENANT_PLAN).note.startswith("Only a superuser")
    tenant = granters(guest, world.emea, TENANT_ADMIN)
    assert tenant.people == [] and tenant.tenant_admins == ["alice"]
    # Creating child organizations is not in Admin: only tenant administrators (and custom roles) give it.
    assert granters(guest, world.emea, "org.create_child").people == []


# -- the 404 page under DEBUG (make run) -------------------------------------------------------------------------------


@pytest.fixture
def debug(settings: Any) -> Any:
    settings.DEBUG = True
    return settings


def is_ours(response: Any) -> bool:
    page = response.content.decode()
    return "This page does not exist, or you do not have access to it." in page and "URLconf" not in page


def test_under_debug_an_unknown_url_is_our_404_page(debug, world, people, as_user):
    client = as_user(people["admin"])
    response = client.get("/no/such/page/")
    assert response.status_code == 404 and is_ours(response)
    assert "admin-m" in response.content.decode()  # the header knows who is signed in


def test_under_debug_a_not_visible_org_is_our_404_page(debug, world, people, as_user):
    client = as_user(people["admin"])
    for path in (url(world.globex_root), url(world.root, "members/"), url(world.globex_root, "audit/")):
        response = client.get(path)
        assert response.status_code == 404 and is_ours(response), path


def test_under_debug_a_views_own_http404_is_our_page(debug, world, people, client):
    # A view outside the console's error mapping that raises Http404 (an SSO start for no tenant), and a URL whose
    # converter refuses its value.
    response = client.get("/login/sso/", {"tenant": "not-a-uuid"})
    assert response.status_code == 404 and is_ours(response)
    response = client.get("/o/not-a-uuid/")
    assert response.status_code == 404 and is_ours(response)


def test_under_debug_the_api_keeps_its_json_404(debug, world, api_as):
    response = api_as(world.tenant_admin).get("/api/v1/no/such/thing")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_under_debug_a_missing_slash_still_redirects(debug, world, people, as_user):
    response = as_user(people["admin"]).get(f"/o/{world.marketing.pk}")
    assert response.status_code == 301 and response["Location"].endswith(f"/o/{world.marketing.pk}/")


def test_without_debug_an_unknown_url_is_our_404_page_too(world, people, as_user):
    assert not settings.DEBUG
    response = as_user(people["admin"]).get("/no/such/page/")
    assert response.status_code == 404 and is_ours(response)


# -- favicon and admin -----------------------------------------------------------------------------------------------


def test_the_favicon_answers(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"].endswith("img/canopy.png")
    assert "max-age" in response["Cache-Control"]
    assert finders.find("img/canopy.png") and finders.find("img/canopy.svg")
    with open(finders.find("img/canopy.png"), "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    assert client.post("/favicon.ico").status_code == 405


def test_the_admin_is_branded_as_canopy(world, client):
    assert admin.site.site_header == "Canopy administration" and admin.site.site_title == "Canopy admin"
    page = client.get("/admin/login/").content.decode()
    assert "Canopy administration" in page and "Django" not in text_of(page.split("<body")[1])
    assert "| Canopy admin</title>" in page and "img/canopy.svg" in page
    client.force_login(world.superuser)
    index = client.get("/admin/").content.decode()
    assert "Canopy administration" in index and "Your tenants" in index
