"""The breadcrumb and the org switcher shown on every org page.

Both cost a fixed number of queries whatever the size of the tenant: the path is one range query, the switcher one
filtered list (the user's grants behind ``visible()`` are loaded once per request), capped so that a 100k-org tenant
renders as fast as a small one; the search narrows it further, and the search page adds each match's path with one
more query.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from access import policy
from access.whoami import whoami
from config import kinds
from orgs.models import Organization, Project, ancestors_of

SWITCHER_LIMIT = 300
QUERY_MAX_LENGTH = 100


@dataclass(frozen=True)
class Switcher:
    orgs: list[Organization]
    truncated: bool
    query: str
    limit: int


@dataclass(frozen=True)
class Crumb:
    """One step of the breadcrumb. An ancestor the user may not open is named (whoever sees a child may know where
    it sits) but not linked, since its page would answer 404."""

    org: Organization
    linked: bool


def switcher(user: Any, query: str = "", limit: int = SWITCHER_LIMIT) -> Switcher:
    """The orgs the user may open, in tree order (``level`` indents them), optionally filtered by name."""
    queryset = policy.visible(user, "org.view", Organization.objects.alive()).select_related("tenant")
    query = (query or "").strip()[:QUERY_MAX_LENGTH]
    if query:
        queryset = queryset.filter(name__icontains=query)
    # One row more than shown tells whether to ask the user to refine the search, without a COUNT over the tenant.
    orgs = list(queryset.order_by("tree_id", "lft")[: limit + 1])
    return Switcher(orgs=orgs[:limit], truncated=len(orgs) > limit, query=query, limit=limit)


def attach_trails(orgs: list[Organization]) -> None:
    """Set ``org.trail`` (its ancestors, root first) on each org, with one query whatever their number and depth."""
    known = {org.pk: org for org in orgs}
    known.update((node.pk, node) for node in ancestors_of(orgs) if node.pk not in known)
    for org in orgs:
        trail = []
        parent_id = org.parent_id
        while parent_id is not None and parent_id in known:
            trail.append(known[parent_id])
            parent_id = known[parent_id].parent_id
        org.trail = trail[::-1]


def breadcrumb(user: Any, org: Organization) -> list[Crumb]:
    """Root first, ``org`` last (one query). Call it after the switcher: the visibility checks of the ancestors
    then come from the grants that the switcher loaded, without a query."""
    return [Crumb(node, node.pk == org.pk or policy.can(user, "org.view", node)) for node in org.path()]


@dataclass(frozen=True)
class PageCrumb:
    """A crumb after the org's (issue #11 §6): the project, then the task, of a page inside them. ``url`` is None
    where the user may not open that page (a task shared with them in a project they do not see)."""

    label: str
    kind: str
    url: str | None
    current: bool


def page_crumbs(request: Any, context: Mapping[str, Any]) -> list[PageCrumb]:
    """The project and task crumbs of a page, from the objects it shows (``project``, ``task``): project → task →
    run pages keep the org's breadcrumb and add these after it. No query: the pages load the task's project and
    the user's grants already."""
    task = context.get("task")
    project = context.get("project")
    if project is None and task is not None:
        project = getattr(task, "project", None)
    if not isinstance(project, Project):
        return []
    here = getattr(request, "path", "")
    crumbs = []
    url = reverse("project", args=[project.org_id, project.pk])
    linked = url == here or policy.can(request.user, "project.view", project)
    crumbs.append(PageCrumb(project.name, "Project", url if linked else None, url == here))
    if task is not None and getattr(task, "project_id", None) == project.pk and task.pk is not None:
        url = reverse("task", args=[project.org_id, task.pk])
        crumbs.append(PageCrumb(task.name, "Task", url, url == here))
    return crumbs


@dataclass(frozen=True)
class Tab:
    key: str  # what a page passes as ``tab`` ("" for the overview)
    label: str
    url: str
    current: bool


def org_tabs(org: Organization, caps: Any, current: str = "") -> list[Tab]:
    """The org's sections the user may open (by their capabilities here), the current one marked. Drawn twice by
    orgs/_tabs.html: a row of tabs on wide screens, a menu naming the current section on narrow ones."""
    if "org.view" not in caps:
        return []
    entries: list[tuple[str, str, str, str]] = [("", "Overview", "org", "org.view")]
    entries.append(("overview", "Dashboard", "org-rollup", "org.view"))  # the subtree's roll-up (issue #12 §1)
    entries += [
        ("members", "Members", "org-members", "member.view"),
        ("teams", "Teams", "org-teams", "member.view"),
        ("roles", "Roles", "org-roles", "member.view"),
        ("people", "People", "org-people", "tenant.admin"),
        ("sso", "Single sign-on", "tenant-sso", "tenant.admin"),
        ("invitations", "Invitations", "org-invitations", "member.manage"),
        ("explain", "Explain access", "org-explain", "member.view"),
        ("audit", "Audit log", "org-audit", "audit.view"),
        ("review", "Access review", "org-review", "member.view"),
    ]
    entries += [(tab.url_name, tab.label, tab.url_name, tab.capability) for tab in kind_tabs()]
    entries.append(("settings", "Configuration", "org-settings", "org.view"))
    return [
        Tab(key, label, reverse(url_name, args=[org.pk]), key == (current or ""))
        for key, label, url_name, capability in entries
        if capability in caps
    ]


#: Sections drawn as tabs in the row of a wide screen; the others are under "More" (GitHub's and GitLab's overflow),
#: so an administrator's fourteen sections keep one row at 1400 px. The current section is always a tab.
TABS_IN_ROW = 8


@dataclass(frozen=True)
class TabRow:
    row: list[Tab]
    more: list[Tab]


def tab_row(tabs: list[Tab], limit: int = TABS_IN_ROW) -> TabRow:
    """The first ``limit`` sections as tabs and the rest under "More", in their order; a current section that falls
    under "More" takes the last tab's place. No "More" for a single section: it would take a tab's room to hide one."""
    if len(tabs) <= limit + 1:
        return TabRow(tabs, [])
    shown = tabs[:limit]
    current = next((tab for tab in tabs[limit:] if tab.current), None)
    if current is not None:
        shown = [*shown[:-1], current]
    return TabRow(shown, [tab for tab in tabs if tab not in shown])


def context_for(request: Any, org: Organization) -> dict[str, Any]:
    """What base.html needs on an org page: the breadcrumb, the switcher and the user's capabilities here."""
    switch = switcher(request.user)
    crumbs = breadcrumb(request.user, org)
    return {
        "org": org,
        "crumbs": crumbs,
        "path": [crumb.org for crumb in crumbs],
        "tenant": org.tenant,
        "switcher": switch,
        "caps": policy.capabilities(request.user, org),
        "whoami": whoami(request.user, org),  # after the switcher: decided from the grants it loaded
    }


@dataclass(frozen=True)
class KindTab:
    label: str
    url_name: str
    capability: str


#: Declared kinds whose console pages are their own views rather than the generic ones (no console form in their
#: Faces): runtimes, whose list holds the platform's global runtimes beside the declared ones. Their app adds them.
OWN_PAGES: set[type] = set()


def kind_tabs() -> list[KindTab]:
    """A tab per declared kind that has console pages (a list and a detail URL name, and a console form, or pages of
    its own: ``OWN_PAGES``): a new kind is in the org's navigation by its registry entry alone. Shown where the user
    holds the kind's view capability."""
    return [
        KindTab(kind.tab_label, kind.console_list, kind.view)
        for kind in kinds.registry.declared()
        if kind.console_list
        and kind.console_detail
        and (kinds.faces_of(kind.model).form is not None or kind.model in OWN_PAGES)
    ]
