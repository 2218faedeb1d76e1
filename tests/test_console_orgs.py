"""The console's org and project pages: who may open and use each one, and what a refusal changes (nothing).

Personas: alice administers Acme (paid); in Acme, admin-m / guest-m hold Admin / Guest on Marketing, bob is a
member without any grant; charlie is in no tenant; gina administers Globex (free plan).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from access.models import AuditEvent
from config.actors import SYSTEM
from orgs.models import Organization, Project
from orgs.services import delete_org
from tests.factories import make_org, make_project


def url(org: Organization, suffix: str = "") -> str:
    return f"/o/{org.pk}/{suffix}"


def snapshot() -> tuple[Any, ...]:
    """Everything a console write could touch: compared before and after a refused request."""
    orgs = list(
        Organization.objects.order_by("pk").values_list(
            "pk", "name", "description", "parent_id", "tree_id", "lft", "rght", "level", "deleted_at"
        )
    )
    projects = list(Project.objects.order_by("pk").values_list("pk", "org_id", "name", "description"))
    return orgs, projects, AuditEvent.objects.count()


ORG_PAGES = ["", "edit/", "new/", "move/", "delete/", "deleted/", "projects/new/"]


# -- anonymous visitors and invisible orgs -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [*ORG_PAGES, "p/{project}/", "p/{project}/edit/", "p/{project}/delete/"])
def test_anonymous_visitors_are_sent_to_log_in(world, client, suffix):
    response = client.get(url(world.marketing, suffix.format(project=world.website.pk)))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/o/")


@pytest.mark.parametrize("who", ["member", "outsider", "other_admin"])
def test_orgs_and_projects_the_user_cannot_see_answer_404(world, as_user, who):
    client = as_user(getattr(world, who))
    for suffix in ORG_PAGES:
        assert client.get(url(world.marketing, suffix)).status_code == 404, suffix
    for suffix in ("", "edit/", "delete/"):
        assert client.get(url(world.marketing, f"p/{world.website.pk}/{suffix}")).status_code == 404, suffix


@pytest.mark.parametrize("who", ["member", "outsider", "other_admin"])
def test_posts_to_invisible_orgs_answer_404_and_change_nothing(world, as_user, who):
    client = as_user(getattr(world, who))
    before = snapshot()
    assert client.post(url(world.marketing, "new/"), {"name": "Sneaky"}).status_code == 404
    assert (
        client.post(url(world.marketing, "edit/"), {"name": "Sneaky", "access_inheritance": "all"}).status_code == 404
    )
    assert client.post(url(world.emea, "move/"), {"parent": str(world.logistics.pk)}).status_code == 404
    assert client.post(url(world.marketing, "delete/")).status_code == 404
    assert client.post(url(world.marketing, "projects/new/"), {"name": "Sneaky"}).status_code == 404
    assert client.post(url(world.marketing, f"p/{world.website.pk}/delete/")).status_code == 404
    assert snapshot() == before


def test_a_deleted_org_and_its_projects_answer_404_even_to_the_tenant_admin(world, as_user):
    delete_org(actor=world.tenant_admin, org=world.marketing)
    client = as_user(world.tenant_admin)
    for org in (world.marketing, world.emea, world.campaigns):
        for suffix in ORG_PAGES:
            assert client.get(url(org, suffix)).status_code == 404, (org.name, suffix)
    assert client.get(url(world.marketing, f"p/{world.website.pk}/")).status_code == 404


def test_a_malformed_or_unknown_id_answers_404(world, as_user):
    client = as_user(world.tenant_admin)
    assert client.get("/o/not-a-uuid/").status_code == 404
    assert client.get("/o/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_a_project_is_found_only_under_its_own_org(world, as_user):
    client = as_user(world.tenant_admin)
    assert client.get(url(world.logistics, f"p/{world.website.pk}/")).status_code == 404
    assert client.get(url(world.globex_root, f"p/{world.website.pk}/")).status_code == 404


# -- the overview --------------------------------------------------------------------------------------------------


def test_the_tenant_admin_sees_children_projects_and_every_action(world, as_user, django_assert_max_num_queries):
    client = as_user(world.tenant_admin)
    with django_assert_max_num_queries(10):
        response = client.get(url(world.marketing))
    html = response.content.decode()
    assert response.status_code == 200
    assert f'href="/o/{world.emea.pk}/"' in html and "Website" in html
    for action in ("new/", "edit/", "move/", "delete/", "projects/new/"):
        assert f'href="{url(world.marketing, action)}"' in html, action


def test_an_org_admin_may_edit_and_add_projects_but_not_restructure_the_tree(world, as_user, people):
    html = as_user(people["admin"]).get(url(world.marketing)).content.decode()
    assert f'href="{url(world.marketing, "edit/")}"' in html
    assert f'href="{url(world.marketing, "projects/new/")}"' in html
    for action in ("new/", "move/", "delete/"):
        assert f'href="{url(world.marketing, action)}"' not in html, action


def test_a_guest_sees_the_page_without_any_action(world, as_user, people):
    response = as_user(people["guest"]).get(url(world.marketing))
    html = response.content.decode()
    assert response.status_code == 200 and "Website" in html and "EMEA" in html
    for action in ("new/", "edit/", "move/", "delete/", "projects/new/"):
        assert f'href="{url(world.marketing, action)}"' not in html, action


def test_a_guest_is_refused_every_form_with_403_and_nothing_changes(world, as_user, people):
    client = as_user(people["guest"])
    before = snapshot()
    for suffix in ("new/", "edit/", "move/", "delete/", "projects/new/", f"p/{world.website.pk}/edit/"):
        assert client.get(url(world.marketing, suffix)).status_code == 403, suffix
    response = client.post(url(world.marketing, "edit/"), {"name": "Mine", "access_inheritance": "all"})
    assert response.status_code == 403 and "permission" in response.content.decode()
    assert client.post(url(world.marketing, f"p/{world.website.pk}/delete/")).status_code == 403
    assert client.post(url(world.marketing, "delete/")).status_code == 403
    assert snapshot() == before


# -- creating child orgs -------------------------------------------------------------------------------------------


def test_the_tenant_admin_creates_a_child_org(world, as_user):
    client = as_user(world.tenant_admin)
    assert client.get(url(world.marketing, "new/")).status_code == 200
    response = client.post(url(world.marketing, "new/"), {"name": "APAC", "description": "Asia"})
    org = Organization.objects.get(name="APAC")
    assert response.status_code == 302 and response["Location"] == url(org)
    assert (org.parent_id, org.description) == (world.marketing.pk, "Asia")


def test_a_duplicate_sibling_name_is_shown_and_nothing_is_created(world, as_user):
    client = as_user(world.tenant_admin)
    before = snapshot()
    response = client.post(url(world.root, "new/"), {"name": "marketing"})
    assert response.status_code == 409
    assert "already exists" in response.content.decode()
    assert snapshot() == before


def test_a_blank_name_is_a_field_error_and_nothing_is_created(world, as_user):
    before = snapshot()
    response = as_user(world.tenant_admin).post(url(world.root, "new/"), {"name": "  "})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    assert snapshot() == before


def test_the_free_plan_shows_how_to_upgrade_instead_of_the_form(world, as_user):
    client = as_user(world.other_admin)
    html = client.get(url(world.globex_root)).content.decode()
    assert "Upgrade to the Paid plan" in html
    assert f'href="{url(world.globex_root, "new/")}"' not in html
    before = snapshot()
    response = client.post(url(world.globex_root, "new/"), {"name": "Sales"}, follow=True)
    assert "Paid plan" in response.content.decode()
    assert snapshot() == before


# -- editing -------------------------------------------------------------------------------------------------------


def test_the_tenant_admin_edits_an_org(world, as_user):
    client = as_user(world.tenant_admin)
    fields = {"name": "Europe", "description": "EU", "access_inheritance": "admins_only"}
    # A change of access inheritance is previewed first (governance/impact): nothing written until confirmed.
    preview = client.post(url(world.emea, "edit/"), fields)
    assert preview.status_code == 200 and "What this change does" in preview.content.decode()
    assert Organization.objects.get(pk=world.emea.pk).name == "EMEA"
    response = client.post(url(world.emea, "edit/"), {**fields, "confirmed": "1"})
    assert response.status_code == 302 and response["Location"] == url(world.emea)
    emea = Organization.objects.get(pk=world.emea.pk)
    assert (emea.name, emea.description, emea.access_inheritance) == ("Europe", "EU", "admins_only")
    assert AuditEvent.objects.filter(action="org.update", target_id=str(emea.pk)).exists()


def test_an_org_admin_edits_their_org(world, as_user, people):
    response = as_user(people["admin"]).post(
        url(world.marketing, "edit/"), {"name": "Brand", "access_inheritance": "all"}
    )
    assert response.status_code == 302
    assert Organization.objects.get(pk=world.marketing.pk).name == "Brand"


def test_a_blank_name_on_edit_is_a_field_error_and_nothing_changes(world, as_user):
    before = snapshot()
    response = as_user(world.tenant_admin).post(
        url(world.marketing, "edit/"), {"name": "", "access_inheritance": "all"}
    )
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    assert snapshot() == before


def test_an_unknown_inheritance_choice_is_a_field_error(world, as_user):
    before = snapshot()
    response = as_user(world.tenant_admin).post(url(world.emea, "edit/"), {"name": "EMEA", "access_inheritance": "x"})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert snapshot() == before


def test_renaming_to_a_siblings_name_is_refused_and_nothing_changes(world, as_user):
    before = snapshot()
    response = as_user(world.tenant_admin).post(
        url(world.logistics, "edit/"), {"name": "MARKETING", "access_inheritance": "all"}
    )
    assert response.status_code == 409 and "already exists" in response.content.decode()
    assert snapshot() == before


def test_the_root_edit_form_does_not_offer_inheritance(world, as_user):
    client = as_user(world.tenant_admin)
    assert 'name="access_inheritance"' not in client.get(url(world.root, "edit/")).content.decode()
    assert 'name="access_inheritance"' in client.get(url(world.emea, "edit/")).content.decode()
    assert client.post(url(world.root, "edit/"), {"name": "Acme Corp"}).status_code == 302
    assert Organization.objects.get(pk=world.root.pk).name == "Acme Corp"


def test_invitation_domains_are_a_setting_edited_on_the_configuration_page(world, as_user):
    from resources.settings_registry import setting_value

    client = as_user(world.tenant_admin)
    page = url(world.emea, "settings/")
    data = {"action": "set", "key": "allowed_invite_domains", "value": "acme.com, acme.de"}
    assert client.post(page, data).status_code == 302
    assert setting_value(world.campaigns, "allowed_invite_domains") == ["acme.com", "acme.de"]
    response = client.post(page, {**data, "value": "x"})
    assert response.status_code == 400 and "is not a domain" in response.content.decode()
    assert setting_value(world.emea, "allowed_invite_domains") == ["acme.com", "acme.de"]


# -- moving --------------------------------------------------------------------------------------------------------


def test_the_tenant_admin_moves_an_org_with_its_subtree(world, as_user):
    client = as_user(world.tenant_admin)
    html = client.get(url(world.emea, "move/")).content.decode()
    assert "Logistics" in html and f'value="{world.campaigns.pk}"' not in html  # its own subtree is not offered
    # The move is previewed first (governance/impact): nothing moves until confirmed.
    preview = client.post(url(world.emea, "move/"), {"parent": str(world.logistics.pk)})
    assert preview.status_code == 200 and "What this change does" in preview.content.decode()
    assert Organization.objects.get(pk=world.emea.pk).parent_id == world.marketing.pk
    response = client.post(url(world.emea, "move/"), {"parent": str(world.logistics.pk), "confirmed": "1"})
    assert response.status_code == 302
    world.refresh()
    assert world.emea.parent_id == world.logistics.pk and world.campaigns.level == 3


def test_a_move_into_the_own_subtree_is_refused_and_nothing_changes(world, as_user):
    before = snapshot()
    response = as_user(world.tenant_admin).post(url(world.marketing, "move/"), {"parent": str(world.campaigns.pk)})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert snapshot() == before


def test_a_move_next_to_a_namesake_shows_the_services_refusal_and_nothing_changes(world, as_user):
    make_org(world.logistics, "EMEA")
    before = snapshot()
    response = as_user(world.tenant_admin).post(url(world.emea, "move/"), {"parent": str(world.logistics.pk)})
    assert response.status_code == 409
    assert "already exists in Logistics" in response.content.decode()
    assert snapshot() == before


def test_a_move_into_another_tenant_is_not_offered_nor_accepted(world, as_user):
    client = as_user(world.tenant_admin)
    assert "Globex" not in client.get(url(world.emea, "move/")).content.decode()
    before = snapshot()
    assert client.post(url(world.emea, "move/"), {"parent": str(world.globex_root.pk)}).status_code == 400
    assert snapshot() == before


def test_the_root_cannot_be_moved(world, as_user):
    response = as_user(world.tenant_admin).get(url(world.root, "move/"), follow=True)
    assert "root organization cannot be moved" in response.content.decode()


def test_an_org_admin_may_not_move_their_org(world, as_user, people):
    before = snapshot()
    response = as_user(people["admin"]).post(url(world.emea, "move/"), {"parent": str(world.marketing.pk)})
    assert response.status_code == 403
    assert snapshot() == before


# -- deleting and restoring ----------------------------------------------------------------------------------------


def test_deleting_asks_first_then_deletes_the_subtree(world, as_user):
    client = as_user(world.tenant_admin)
    confirm = client.get(url(world.marketing, "delete/"))
    assert confirm.status_code == 200 and "2 organizations below it" in confirm.content.decode()
    assert not Organization.objects.get(pk=world.marketing.pk).is_deleted  # a GET changes nothing
    response = client.post(url(world.marketing, "delete/"), {"confirmed": "1"})
    assert response.status_code == 302 and response["Location"] == url(world.root)
    assert all(Organization.objects.get(pk=o.pk).is_deleted for o in (world.marketing, world.emea, world.campaigns))


def test_the_root_cannot_be_deleted(world, as_user):
    client = as_user(world.tenant_admin)
    before = snapshot()
    response = client.post(url(world.root, "delete/"), follow=True)
    assert "root organization cannot be deleted" in response.content.decode()
    assert snapshot() == before


def test_the_deleted_list_shows_deleted_subtrees_to_the_tenant_admin(world, as_user, django_assert_max_num_queries):
    delete_org(actor=world.tenant_admin, org=world.emea)
    delete_org(actor=world.tenant_admin, org=world.logistics)
    client = as_user(world.tenant_admin)
    with django_assert_max_num_queries(10):
        html = (response := client.get(url(world.root, "deleted/"))).content.decode()
        assert response.status_code == 200 and "<tbody>" in html
    rows = html.split("<tbody>")[1].split("</tbody>")[0]
    assert "EMEA" in rows and "Logistics" in rows and "2 organizations" in rows
    assert "Campaigns" not in rows  # deleted with EMEA: restored with it, not on its own line
    assert f'action="/o/{world.emea.pk}/restore/"' in rows


def test_the_deleted_list_is_refused_to_others(world, as_user, people):
    assert as_user(people["admin"]).get(url(world.marketing, "deleted/")).status_code == 403
    assert as_user(world.other_admin).get(url(world.root, "deleted/")).status_code == 404


def test_restoring_brings_the_subtree_back(world, as_user):
    delete_org(actor=world.tenant_admin, org=world.marketing)
    client = as_user(world.tenant_admin)
    assert client.get(f"/o/{world.marketing.pk}/restore/").status_code == 405  # POST only
    response = client.post(f"/o/{world.marketing.pk}/restore/")
    assert response.status_code == 302 and response["Location"] == url(world.marketing)
    assert not any(Organization.objects.get(pk=o.pk).is_deleted for o in (world.marketing, world.emea, world.campaigns))


def test_restoring_a_node_deleted_with_its_parent_is_refused_with_a_message(world, as_user):
    delete_org(actor=world.tenant_admin, org=world.marketing)
    before = snapshot()
    response = as_user(world.tenant_admin).post(f"/o/{world.emea.pk}/restore/", follow=True)
    assert "restore that one instead" in response.content.decode()
    assert snapshot() == before


@pytest.mark.parametrize("who", ["member", "outsider", "other_admin"])
def test_only_the_tenant_admin_restores(world, as_user, who):
    delete_org(actor=world.tenant_admin, org=world.emea)
    before = snapshot()
    assert as_user(getattr(world, who)).post(f"/o/{world.emea.pk}/restore/").status_code == 404
    assert snapshot() == before


# -- projects ------------------------------------------------------------------------------------------------------


def test_the_tenant_admin_creates_edits_and_deletes_a_project(world, as_user):
    client = as_user(world.tenant_admin)
    response = client.post(url(world.marketing, "projects/new/"), {"name": "Blog", "description": "News"})
    project = Project.objects.get(name="Blog")
    assert response["Location"] == url(world.marketing, f"p/{project.pk}/")
    assert "News" in client.get(response["Location"]).content.decode()
    assert client.post(url(world.marketing, f"p/{project.pk}/edit/"), {"name": "Journal"}).status_code == 302
    assert Project.objects.get(pk=project.pk).name == "Journal"
    confirm = client.get(url(world.marketing, f"p/{project.pk}/delete/"))
    assert confirm.status_code == 200 and "cannot be undone" in confirm.content.decode()
    assert Project.objects.filter(pk=project.pk).exists()
    assert client.post(url(world.marketing, f"p/{project.pk}/delete/"), {"confirmed": "1"}).status_code == 302
    assert not Project.objects.filter(pk=project.pk).exists()


def test_a_duplicate_project_name_is_refused_and_nothing_changes(world, as_user):
    make_project(world.marketing, "Blog")
    client = as_user(world.tenant_admin)
    before = snapshot()
    response = client.post(url(world.marketing, "projects/new/"), {"name": "website"})
    assert response.status_code == 409 and "already exists" in response.content.decode()
    response = client.post(url(world.marketing, f"p/{world.website.pk}/edit/"), {"name": "blog"})
    assert response.status_code == 409 and "already exists" in response.content.decode()
    assert snapshot() == before


def test_a_guest_reads_a_project_without_its_actions(world, as_user, people):
    response = as_user(people["guest"]).get(url(world.marketing, f"p/{world.website.pk}/"))
    html = response.content.decode()
    assert response.status_code == 200 and "Website" in html
    assert "/edit/" not in html and "/delete/" not in html


def test_a_project_member_opens_their_project_but_not_its_org(world, as_user):
    from access.services.grants import grant_role
    from tests.factories import UserFactory, add_to_tenant

    user = UserFactory(username="paula")
    add_to_tenant(user, world.acme)
    grant_role(actor=SYSTEM, target=world.website, role="integrator", user=user)
    client = as_user(user)
    html = client.get(url(world.marketing, f"p/{world.website.pk}/")).content.decode()
    assert "Website" in html and f'href="{url(world.marketing)}"' not in html  # the org is named, not linked
    assert client.get(url(world.marketing)).status_code == 404
    landing = client.get("/")
    assert landing.status_code == 200 and "Website" in landing.content.decode()


# -- CSRF ----------------------------------------------------------------------------------------------------------


def test_a_form_post_without_the_csrf_token_is_refused(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.tenant_admin)
    before = snapshot()
    assert client.post(url(world.marketing, "new/"), {"name": "APAC"}).status_code == 403
    assert client.post(url(world.marketing, "delete/")).status_code == 403
    assert snapshot() == before
