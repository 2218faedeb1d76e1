"""One navigation model (issue #11 §3, §6), in the HTML: the same header on every page (the account menu, "Log out"
in it), the org's sections as tabs and as a menu naming the current one, a breadcrumb whose middle folds into "…",
and project → task → run pages that keep the org's tabs and add project and task crumbs after the org's. How it
looks at 390, 800 and 1400 px is the browser walk's (tests/e2e/test_layout_e2e.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import RequestFactory

from orgs import navigation
from orgs.models import Organization
from resources import services as rs
from tests.factories import UserFactory, add_to_tenant, make_chain


def url(org: Organization, suffix: str = "") -> str:
    return f"/o/{org.pk}/{suffix}"


def section(html: str, start: str, end: str) -> str:
    return html.split(start, 1)[1].split(end, 1)[0]


def crumbs_of(html: str) -> str:
    return section(html, 'aria-label="Breadcrumb"', "</nav>\n")


def usernav(html: str) -> str:
    """The account navigation, without the CSRF token (masked anew on every page)."""
    nav = section(html, '<nav class="usernav"', "</nav>")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", nav)


@pytest.fixture
def task(world):
    return rs.create_task(actor=world.tenant_admin, project=world.website, name="Sync", steps=[])


# -- the header ----------------------------------------------------------------------------------------------------


def test_the_header_is_the_same_on_every_page_with_or_without_an_org(world, as_user, task):
    client = as_user(world.tenant_admin)
    pages = [url(world.marketing), url(world.marketing, "members/"), "/account/", "/tokens/", "/shared/", "/switch/"]
    pages.append(url(world.marketing, f"tasks/{task.pk}/"))
    navs = {usernav(client.get(page).content.decode()) for page in pages}
    assert len(navs) == 1
    nav = navs.pop()
    # One account menu (a <details>: no JavaScript needed) holding every account link and "Log out".
    assert '<details class="account-menu menu">' in nav
    for link in ("/account/", "/shared/", "/tokens/", "/api/v1/docs/"):
        assert f'href="{link}"' in nav
    assert 'action="/logout/"' in nav and ">Log out</button>" in nav


def test_pages_without_an_org_keep_the_crumbs_place_so_the_account_menu_does_not_move(world, as_user):
    html = as_user(world.tenant_admin).get("/account/").content.decode()
    assert '<div class="topbar-crumbs"></div>' in html
    html = as_user(world.tenant_admin).get(url(world.marketing)).content.decode()
    assert re.search(r'<div class="topbar-crumbs">\s*<nav class="crumbs', html)


def test_a_visitor_has_log_in_and_sign_up_in_the_same_place(client, db):
    nav = usernav(client.get("/login/").content.decode())
    assert 'href="/login/"' in nav and 'href="/signup/"' in nav and "account-menu" not in nav


def test_flash_messages_come_after_the_navigation():
    base = (Path(settings.BASE_DIR) / "templates" / "base.html").read_text()
    assert base.index("orgs/_tabs.html") < base.index("orgs/_whoami.html") < base.index('class="messages"')
    assert base.index("</header>") < base.index("orgs/_tabs.html")


# -- the org's sections --------------------------------------------------------------------------------------------


def test_the_sections_are_tabs_and_a_menu_naming_the_current_one(world, as_user):
    html = as_user(world.tenant_admin).get(url(world.marketing, "audit/")).content.decode()
    tabs = section(html, 'aria-label="Organization sections"', "</nav>")
    row = section(tabs, '<ul class="tabs-row">', "</ul>")
    menu = section(tabs, '<details class="tabs-menu menu">', "</details>")
    for part in (row, menu):
        assert f'<a href="{url(world.marketing, "audit/")}" aria-current="page">Audit log</a>' in part
        assert f'href="{url(world.marketing, "members/")}"' in part
        assert part.count('aria-current="page"') == 1
    assert re.search(r"<summary>.*<strong>Audit log</strong>.*</summary>", menu)


def test_the_sections_follow_the_capabilities(world, as_user, people):
    html = as_user(people["guest"]).get(url(world.marketing)).content.decode()
    tabs = section(html, 'aria-label="Organization sections"', "</nav>")
    assert "Overview" in tabs and "Configuration" in tabs
    assert "Invitations" not in tabs and "Audit log" not in tabs and "People" not in tabs
    admin = as_user(world.tenant_admin).get(url(world.marketing)).content.decode()
    assert "Invitations" in section(admin, 'aria-label="Organization sections"', "</nav>")


def test_a_page_without_org_view_has_no_sections(world):
    assert navigation.org_tabs(world.marketing, frozenset()) == []
    tabs = navigation.org_tabs(world.marketing, frozenset({"org.view"}), "settings")
    assert [(t.label, t.current) for t in tabs] == [("Overview", False), ("Dashboard", False), ("Configuration", True)]


# -- the breadcrumb ------------------------------------------------------------------------------------------------


def test_the_middle_of_the_path_folds_into_an_ellipsis_that_lists_it(world, as_user):
    crumbs = crumbs_of(as_user(world.tenant_admin).get(url(world.campaigns)).content.decode())
    folded = section(crumbs, '<li class="crumb-more">', "</details>")
    assert "<summary" in folded and "…" in folded
    assert f'href="{url(world.root)}"' in folded and f'href="{url(world.marketing)}"' in folded
    assert f'href="{url(world.emea)}"' not in folded  # the parent stays, beside the switcher
    assert crumbs.count('class="crumb-middle"') == 2  # shown on wide screens, hidden where "…" is (CSS)


def test_a_short_path_has_nothing_to_fold(world, as_user):
    crumbs = crumbs_of(as_user(world.tenant_admin).get(url(world.marketing)).content.decode())
    assert "crumb-more" not in crumbs and "crumb-middle" not in crumbs


def test_a_deep_path_is_folded_on_every_screen(world, as_user):
    deepest = make_chain(world.campaigns, 3)[-1]
    html = as_user(world.tenant_admin).get(url(deepest)).content.decode()
    assert '<nav class="crumbs deep" aria-label="Breadcrumb">' in html


# -- project → task → run ------------------------------------------------------------------------------------------


def page_crumbs(html: str) -> list[str]:
    return re.findall(r'<li class="crumb-page">(.*?)</li>', crumbs_of(html), flags=re.S)


def test_the_project_page_keeps_the_tabs_and_adds_its_crumb(world, as_user):
    html = as_user(world.tenant_admin).get(url(world.marketing, f"p/{world.website.pk}/")).content.decode()
    assert 'aria-label="Organization sections"' in html
    (crumb,) = page_crumbs(html)
    assert 'aria-current="page"' in crumb and "Website" in crumb and "href" not in crumb


def test_the_task_and_run_pages_add_project_and_task_crumbs(world, as_user, task):
    client = as_user(world.tenant_admin)
    html = client.get(url(world.marketing, f"tasks/{task.pk}/")).content.decode()
    assert 'aria-label="Organization sections"' in html
    project, this = page_crumbs(html)
    assert f'href="{url(world.marketing, f"p/{world.website.pk}/")}"' in project and "Website" in project
    assert 'aria-current="page"' in this and "Sync" in this
    run = rs.run_task(actor=world.tenant_admin, task=task)
    html = client.get(url(world.marketing, f"runs/{run.pk}/")).content.decode()
    assert 'aria-label="Organization sections"' in html
    project, parent = page_crumbs(html)
    assert "Website" in project and f'href="{url(world.marketing, f"tasks/{task.pk}/")}"' in parent
    # the org's crumbs come first: the project's crumb follows the switcher
    crumbs = crumbs_of(html)
    assert crumbs.index('class="crumb-current"') < crumbs.index('class="crumb-page"')


def test_a_task_shared_with_someone_outside_its_project_names_the_project_without_a_link(world, as_user, task):
    outsider = UserFactory(username="contractor")
    add_to_tenant(outsider, world.acme)
    rs.share_task(actor=world.tenant_admin, task=task, permission="view", user=outsider)
    response = as_user(outsider).get(url(world.marketing, f"tasks/{task.pk}/"))
    assert response.status_code == 200
    project, this = page_crumbs(response.content.decode())
    assert "Website" in project and "href" not in project
    assert 'aria-current="page"' in this


def test_page_crumbs_cost_no_query_once_the_page_has_the_users_grants(world, task, django_assert_num_queries):
    request = RequestFactory().get(f"/o/{world.marketing.pk}/tasks/{task.pk}/")
    request.user = world.tenant_admin
    navigation.context_for(request, world.marketing)  # what every org page computes first
    with django_assert_num_queries(0):
        crumbs = navigation.page_crumbs(request, {"task": task, "project": task.project})
    assert [(c.kind, c.label, c.current) for c in crumbs] == [("Project", "Website", False), ("Task", "Sync", True)]
    assert navigation.page_crumbs(request, {"project": "not a project"}) == []


def test_many_sections_keep_one_row_with_the_rest_under_more(world, as_user):
    """A tenant administrator's sections (more than eight): eight tabs, the rest under "More" in their order, and
    the current section always a tab (it takes the last tab's place when it would be under "More")."""
    html = as_user(world.tenant_admin).get(url(world.marketing, "settings/")).content.decode()
    tabs = section(html, 'aria-label="Organization sections"', "</nav>")
    row = section(tabs, '<ul class="tabs-row">', '<li class="tabs-more">')
    more = section(tabs, '<li class="tabs-more">', "</details>")
    menu = section(tabs, '<details class="tabs-menu menu">', "</details>")
    shown = re.findall(r">([^<>]+)</a>", row)
    under_more = re.findall(r">([^<>]+)</a>", more)
    assert len(shown) == navigation.TABS_IN_ROW and shown[-1] == "Configuration"
    assert f'<a href="{url(world.marketing, "settings/")}" aria-current="page">Configuration</a>' in row
    assert "aria-current" not in more and "Configuration" not in under_more
    every = re.findall(r">([^<>]+)</a>", section(menu, '<ul class="menu-panel">', "</ul>"))
    assert shown == [*every[: navigation.TABS_IN_ROW - 1], "Configuration"]  # in order, the current one last
    assert under_more == [label for label in every if label not in shown]  # the rest, in their order


def test_a_few_sections_need_no_more_menu():
    tabs = [navigation.Tab(str(i), f"Section {i}", f"/{i}/", i == 8) for i in range(9)]
    assert navigation.tab_row(tabs) == navigation.TabRow(tabs, [])  # "More" for one section would hide one
    tabs.append(navigation.Tab("9", "Section 9", "/9/", False))
    split = navigation.tab_row(tabs)
    assert [t.key for t in split.row] == ["0", "1", "2", "3", "4", "5", "6", "8"]
    assert [t.key for t in split.more] == ["7", "9"]
