"""The breadcrumb and the org switcher on every org page, the /switch/ search page and the landing page.

The switcher lists what ``policy.visible(user, "org.view", …)`` allows, so its query count must not grow with the
tenant: asserted for 10 and 500 orgs.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orgs.models import Organization
from orgs.navigation import SWITCHER_LIMIT
from orgs.services import delete_org
from tests.factories import make_org


def url(org: Organization, suffix: str = "") -> str:
    return f"/o/{org.pk}/{suffix}"


def breadcrumb(html: str) -> str:
    return html.split('aria-label="Breadcrumb"')[1].split("</nav>")[0]


def switcher_items(html: str) -> list[str]:
    """The org names of the switcher's list, in order."""
    panel = html.split("data-switcher-list>")[1].split("</ul>")[0]
    return re.findall(r'class="switcher-item"[^>]*><a [^>]*>([^<]+)</a>', panel)


def grow(parent: Organization, tenant_size: int) -> None:
    while Organization.objects.filter(tenant_id=parent.tenant_id).count() < tenant_size:
        make_org(parent, f"depot-{Organization.objects.count():04d}")


# -- the breadcrumb ------------------------------------------------------------------------------------------------


def test_the_breadcrumb_runs_from_the_tenant_to_the_current_org(world, as_user):
    crumbs = breadcrumb(as_user(world.tenant_admin).get(url(world.campaigns)).content.decode())
    positions = [crumbs.index(name) for name in ("Tenant", "Acme", "Marketing", "EMEA", "Campaigns")]
    assert positions == sorted(positions)
    # The tenant crumb and the root crumb open the root; every ancestor is a link; the last opens the switcher. (The
    # "…" that folds the middle crumbs on narrow screens lists them again: tests/test_console_layout.py.)
    trail = re.sub(
        r'<li class="crumb-more">.*?</details>', "", crumbs.split('<details class="switcher"')[0], flags=re.S
    )
    assert trail.count(f'href="{url(world.root)}"') == 2
    assert f'href="{url(world.marketing)}"' in trail and f'href="{url(world.emea)}"' in trail
    assert f'href="{url(world.campaigns)}"' not in trail
    assert '<span class="current-name">Campaigns</span>' in crumbs


@pytest.mark.parametrize(
    "page", ["", "edit/", "new/", "move/", "delete/", "projects/new/", "members/", "p/{project}/", "p/{project}/edit/"]
)
def test_every_org_page_carries_the_breadcrumb_and_the_switcher(world, as_user, page):
    html = as_user(world.tenant_admin).get(url(world.marketing, page.format(project=world.website.pk))).content.decode()
    crumbs = breadcrumb(html)
    assert '<span class="current-name">Marketing</span>' in crumbs and "data-switcher" in crumbs


def test_a_guest_sees_ancestors_they_cannot_open_named_but_not_linked(world, as_user, people):
    crumbs = breadcrumb(as_user(people["guest"]).get(url(world.emea)).content.decode())
    assert "Acme" in crumbs and f'href="{url(world.root)}"' not in crumbs
    assert f'href="{url(world.marketing)}"' in crumbs


# -- the switcher on org pages -------------------------------------------------------------------------------------


def test_the_switcher_shows_the_whole_tenant_to_its_admin_as_an_indented_tree(world, as_user):
    html = as_user(world.tenant_admin).get(url(world.emea)).content.decode()
    tree_order = list(Organization.objects.filter(tenant=world.acme).order_by("lft").values_list("name", flat=True))
    assert switcher_items(html) == tree_order and len(tree_order) == 5
    assert tree_order.index("Marketing") < tree_order.index("EMEA") < tree_order.index("Campaigns")
    assert f'data-level="3"><a href="/o/{world.campaigns.pk}/">Campaigns' in html
    assert f'<a href="{url(world.emea)}" aria-current="page">EMEA</a>' in html
    assert "Globex" not in html


def test_the_switcher_lists_only_what_a_guest_may_open(world, as_user, people):
    html = as_user(people["guest"]).get(url(world.emea)).content.decode()
    assert switcher_items(html) == ["Marketing", "EMEA", "Campaigns"]


def test_the_switcher_of_a_superuser_groups_the_tenants(world, as_user):
    html = as_user(world.superuser).get(url(world.root)).content.decode()
    assert {"Acme", "Globex"} <= set(switcher_items(html))
    assert html.count('class="tenant-head"') == 2


def test_the_switcher_works_without_javascript(world, as_user):
    html = as_user(world.tenant_admin).get(url(world.emea)).content.decode()
    switcher = html.split('<details class="switcher"')[1].split("</details>")[0]
    assert "<summary" in switcher
    assert 'action="/switch/" method="get"' in switcher and 'name="q"' in switcher


def test_a_huge_tenant_lists_the_first_orgs_and_asks_to_search(world, as_user):
    grow(world.logistics, SWITCHER_LIMIT + 5)
    html = as_user(world.tenant_admin).get(url(world.root)).content.decode()
    assert len(switcher_items(html)) == SWITCHER_LIMIT
    assert f"Showing the first {SWITCHER_LIMIT} organizations" in html


def test_the_switcher_costs_the_same_queries_for_10_and_500_orgs(world, as_user):
    client = as_user(world.tenant_admin)
    client.get(url(world.root))  # the first visit stores last_org: one UPDATE that later visits do not repeat
    counts = {}
    for size in (10, 500):
        grow(world.logistics, size)
        with CaptureQueriesContext(connection) as overview:
            html = client.get(url(world.root)).content.decode()
        with CaptureQueriesContext(connection) as search:
            client.get("/switch/", {"q": "depot"})
        counts[size] = (len(overview), len(search))
        assert len(switcher_items(html)) == min(size, SWITCHER_LIMIT)
    assert counts[10] == counts[500]


def test_query_budgets_of_the_overview_and_the_switch_page(world, as_user, django_assert_max_num_queries):
    grow(world.logistics, 50)
    client = as_user(world.tenant_admin)
    client.get(url(world.root))
    with django_assert_max_num_queries(10):
        response = client.get(url(world.emea))
        assert response.status_code == 200 and "EMEA" in response.text
    with django_assert_max_num_queries(5):
        response = client.get("/switch/")
        assert response.status_code == 200 and "Logistics" in response.text
    with django_assert_max_num_queries(6):
        response = client.get("/switch/", {"q": "depot"})
        assert response.status_code == 200 and "depot-" in response.text


# -- the /switch/ page ---------------------------------------------------------------------------------------------


def test_the_switch_page_searches_by_name_and_shows_each_matchs_path(world, as_user):
    html = as_user(world.tenant_admin).get("/switch/", {"q": "amp"}).content.decode()
    results = html.split('class="results"')[1].split("</ul>")[0]
    assert f'href="{url(world.campaigns)}"' in results and "Logistics" not in results
    trail = results.split('class="trail"')[1].split("</span>\n")[0]
    assert trail.index("Marketing") < trail.index("EMEA")
    assert "1 organization matches" in html


def test_the_switch_page_finds_nothing_outside_what_the_user_may_open(world, as_user, people):
    client = as_user(people["guest"])
    assert "No organization matches" in client.get("/switch/", {"q": "Logistics"}).content.decode()
    assert "No organization matches" in client.get("/switch/", {"q": "Globex"}).content.decode()
    assert f'href="{url(world.emea)}"' in client.get("/switch/", {"q": "emea"}).content.decode()


def test_the_switch_page_without_a_query_lists_the_tree_and_marks_the_last_org(
    world, as_user, django_capture_on_commit_callbacks
):
    client = as_user(world.tenant_admin)
    with django_capture_on_commit_callbacks(execute=True):  # remembered once the page's read has ended
        client.get(url(world.emea))
    html = client.get("/switch/").content.decode()
    assert f'<a href="{url(world.emea)}" aria-current="true">EMEA</a>' in html
    assert f'href="{url(world.logistics)}"' in html


def test_the_switch_page_skips_deleted_orgs(world, as_user):
    delete_org(actor=world.tenant_admin, org=world.emea)
    html = as_user(world.tenant_admin).get("/switch/", {"q": "a"}).content.decode()
    assert "Campaigns" not in html and "EMEA" not in html and "Marketing" in html


def test_the_switch_page_needs_a_log_in(world, client):
    response = client.get("/switch/", {"q": "acme"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")


# -- the landing page ----------------------------------------------------------------------------------------------


def test_the_landing_page_sends_anonymous_visitors_to_log_in(db, client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_landing_page_opens_the_last_org_used(world, as_user, django_capture_on_commit_callbacks):
    client = as_user(world.tenant_admin)
    assert client.get("/")["Location"] == url(world.root)
    with django_capture_on_commit_callbacks(execute=True):  # remembered once the page's read has ended
        client.get(url(world.emea))
    world.tenant_admin.refresh_from_db()
    assert world.tenant_admin.last_org_id == world.emea.pk
    assert client.get("/")["Location"] == url(world.emea)


def test_the_landing_page_skips_a_last_org_that_is_gone(world, as_user):
    client = as_user(world.tenant_admin)
    client.get(url(world.campaigns))
    delete_org(actor=world.tenant_admin, org=world.emea)
    assert client.get("/")["Location"] == url(world.root)


def test_the_landing_page_opens_the_first_org_a_guest_may_open(world, as_user, people):
    assert as_user(people["guest"]).get("/")["Location"] == url(world.marketing)


def test_the_landing_page_without_any_org(world, as_user):
    response = as_user(world.outsider).get("/")
    assert response.status_code == 200 and "not in any organization yet" in response.content.decode()
