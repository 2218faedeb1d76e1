"""Long console lists page by 50 and search with ``?q=`` (issue #11 §6): members, an org's projects, a project's
tasks, a task's runs and every declared kind's list (credentials here). The same cost with many rows as with few; a
page past the end is the last page, a page that is not a number the first; other tenants still get 404."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from access.services.grants import grant_role
from config.actors import SYSTEM
from config.listing import paginate, search_rows
from resources import services
from resources.models import Run
from tests.factories import UserFactory, add_to_tenant, make_org, make_project

MANY = 60  # more than a page of 50


def org_url(org, suffix=""):
    return f"/o/{org.pk}/{suffix}"


@pytest.fixture
def admin(world, as_user):
    client = as_user(world.tenant_admin)
    client.get(org_url(world.marketing))  # the landing page remembered: budgets measure the list alone
    return client


def rows(html):
    """The list's table body (the add-member form lists the tenant's people too)."""
    return html.split("<tbody>")[1].split("</tbody>")[0]


def _members(world, count, start=0):
    for i in range(start, start + count):
        user = UserFactory(username=f"member{i:03d}")
        add_to_tenant(user, world.acme)
        grant_role(actor=SYSTEM, target=world.marketing, role="guest", user=user)


def test_members_page_and_search(world, admin, django_assert_max_num_queries):
    _members(world, 5)
    url = org_url(world.marketing, "members/")
    with django_assert_max_num_queries(30) as few:
        admin.get(url)
    budget = len(few.captured_queries)  # now: a later request resets the query log
    _members(world, MANY, start=5)
    with django_assert_max_num_queries(budget):  # no query per member
        first = admin.get(url).content.decode()
    # alice (an admin of Acme's root, inherited) first, then member000 …
    assert "1–50 of 66" in first and "member048" in rows(first) and "member049" not in rows(first)
    second = admin.get(url, {"page": 2}).content.decode()
    assert "member049" in rows(second) and "member064" in rows(second) and "Page 2 of 2" in second
    assert "Page 2 of 2" in admin.get(url, {"page": 99}).content.decode()
    found = admin.get(url, {"q": "MEMBER06"}).content.decode()
    assert (
        "member060" in rows(found)
        and "member059" not in rows(found)
        and "1–5 of 5" in found
        and 'value="MEMBER06"' in found
    )
    assert "No member matches “nobody”." in admin.get(url, {"q": "nobody"}).content.decode()
    csv_text = admin.get(url, {"q": "member06", "format": "csv"}).content.decode()
    assert len(csv_text.splitlines()) == 6  # the export keeps the search


def test_members_search_for_a_guest_and_404_for_other_tenants(world, people, as_user):
    url = org_url(world.marketing, "members/")
    assert "admin-m" in as_user(people["guest"]).get(url, {"q": "admin"}).content.decode()
    assert as_user(world.other_admin).get(url, {"q": "admin", "page": 2}).status_code == 404


def test_projects_of_the_overview_page_and_search(world, admin, django_assert_max_num_queries):
    url = org_url(world.logistics)
    for i in range(3):
        make_project(world.logistics, f"Project {i:03d}")
    with django_assert_max_num_queries(40) as few:
        html = admin.get(url).content.decode()
    budget = len(few.captured_queries)  # now: a later request resets the query log
    assert "Search projects" not in html  # one page: no search box in the card
    for i in range(3, MANY):
        make_project(world.logistics, f"Project {i:03d}")
    with django_assert_max_num_queries(budget):
        html = admin.get(url).content.decode()
    assert 'class="count">60<' in html and "Project 049" in html and "Project 050" not in html
    assert "Search projects" in html and "Page 1 of 2" in html
    assert "Page 1 of 2" in admin.get(url, {"page": "last"}).content.decode()  # not a number: the first page
    assert "Project 059" in admin.get(url, {"page": 2}).content.decode()
    found = admin.get(url, {"q": "project 05"}).content.decode()
    assert "Project 055" in found and "Project 049" not in found and "1–10 of 10" in found


def test_tasks_page_and_search(world, as_user, admin, django_assert_max_num_queries):
    project = world.website
    for i in range(MANY):
        services.create_task(actor=world.tenant_admin, project=project, name=f"task-{i:03d}")
    url = org_url(world.marketing, f"p/{project.pk}/tasks/")
    with django_assert_max_num_queries(16):
        html = admin.get(url).content.decode()
    assert "task-049" in html and "task-050" not in html and "Page 1 of 2" in html
    assert "task-059" in admin.get(url, {"page": 9}).content.decode()
    found = admin.get(url, {"q": "TASK-00"}).content.decode()
    assert "task-009" in found and "task-010" not in found and "1–10 of 10" in found
    assert as_user(world.other_admin).get(url, {"q": "task"}).status_code == 404


def test_runs_of_a_task_page_and_search(world, as_user, admin, django_assert_max_num_queries):
    task = services.create_task(actor=world.tenant_admin, project=world.website, name="Sync")
    Run.objects.bulk_create(
        [Run(task=task, steps=[], runtime_name="blue" if i % 2 else "green", status=Run.Status.SUCCEEDED
             if i < 50 else Run.Status.FAILED) for i in range(MANY + 10)]
    )  # fmt: skip
    url = org_url(world.marketing, f"tasks/{task.pk}/")
    with django_assert_max_num_queries(40) as many:
        html = admin.get(url).content.decode()
    budget = len(many.captured_queries)  # now: a later request resets the query log
    assert "1–50 of 70" in html and "Search runs" in html and "runs=2" in html
    assert "51–70 of 70" in admin.get(url, {"runs": 2}).content.decode()
    assert "51–70 of 70" in admin.get(url, {"runs": 5}).content.decode()
    failed = admin.get(url, {"q": "fail"}).content.decode()
    assert "1–20 of 20" in failed
    assert "1–35 of 35" in admin.get(url, {"q": "blue"}).content.decode()
    Run.objects.filter(task=task).exclude(pk__in=Run.objects.filter(task=task)[:3]).delete()
    with django_assert_max_num_queries(budget):
        assert "1–3 of 3" in admin.get(url).content.decode()
    assert as_user(world.other_admin).get(url, {"runs": 2}).status_code == 404


@pytest.mark.parametrize("suffix", ["credentials/", "env-vars/"])
def test_declared_lists_page_and_search(world, as_user, admin, django_assert_max_num_queries, suffix):
    alice = world.tenant_admin
    for i in range(MANY):
        if suffix == "credentials/":
            services.create_credential(actor=alice, org=world.marketing, name=f"cred-{i:03d}", kind="generic",
                                       fields={"a": "b"})  # fmt: skip
        else:
            services.create_env_var(actor=alice, org=world.marketing, key=f"CRED_{i:03d}", value="x")
    url = org_url(world.emea, suffix)
    with django_assert_max_num_queries(11):
        html = admin.get(url).content.decode()
    text = html.lower().replace("_", "-")
    assert "cred-049" in text and "cred-050" not in text and "page 1 of 2" in text
    assert "cred-059" in admin.get(url, {"page": 2}).content.decode().lower().replace("_", "-")
    found = admin.get(url, {"q": "cred-05" if suffix == "credentials/" else "cred_05"}).content.decode()
    assert "1–10 of 10" in found
    by_org = admin.get(url, {"q": "marketing"}).content.decode()  # where it is declared
    assert "1–50 of 60" in by_org
    assert as_user(world.other_admin).get(url, {"q": "cred"}).status_code == 404


def test_paginate_keeps_the_other_parameters_but_not_the_page_or_format():
    request = RequestFactory().get("/x", {"q": "a b", "page": "3", "format": "csv", "action": "org."})
    listing = paginate(request, list(range(120)))
    assert listing.page.number == 3 and listing.q == "a b" and listing.count == 120 and listing.paginated
    assert listing.link == "?q=a+b&action=org.&page="
    assert paginate(RequestFactory().get("/x"), []).link == "?page="
    assert not paginate(RequestFactory().get("/x"), [1]).paginated
    assert paginate(RequestFactory().get("/x", {"runs": "2"}), list(range(60)), param="runs").page.number == 2


def test_search_rows_is_case_insensitive_and_empty_means_all():
    rows = [("Alpha", None), ("beta", "ALPHABET")]
    assert search_rows(rows, "", lambda r: r) == rows
    assert search_rows(rows, "alph", lambda r: r) == rows
    assert search_rows(rows, "BET", lambda r: r) == [rows[1]]


def test_sub_organizations_page_beside_the_projects(world, admin):
    from_logistics = [f"Depot {i:03d}" for i in range(MANY)]
    for name in from_logistics:
        make_org(world.logistics, name)
    make_project(world.logistics, "Fleet")
    html = card(admin.get(org_url(world.logistics)).content.decode())
    assert 'class="count">60<' in html and "Depot 049" in html and "Depot 050" not in html
    assert 'href="?children=2"' in html and "Sub-organization pages" in html
    page = admin.get(org_url(world.logistics), {"children": 2, "q": "fle"}).content.decode()
    assert "Depot 059" in card(page) and "Depot 000" not in card(page) and "Fleet" in page  # each list its own page


def card(html):
    """The sub-organizations card (the switcher lists organizations too)."""
    return html.split('id="children-title"')[1].split("</section>")[0]


def test_people_page_uses_the_shared_pages(world, as_user):
    for i in range(MANY):
        add_to_tenant(UserFactory(username=f"person{i:03d}"), world.acme)
    client = as_user(world.tenant_admin)
    url = org_url(world.root, "people/")
    html = client.get(url).content.decode()
    assert "Page 1 of 2" in html and "People pages" in html
    found = client.get(url, {"q": "person05"}).content.decode()
    assert "1–10 of 10" in found and "person059" in found
    assert as_user(world.other_admin).get(url, {"q": "person"}).status_code == 404
