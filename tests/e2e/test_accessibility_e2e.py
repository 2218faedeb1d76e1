"""Accessibility (#11 §7), in a real browser: axe-core (bundled by axe-playwright-python, no CDN) audits the console's
pages in the demo world (``manage.py seed_demo``) and none may have a critical or serious violation.

What is audited: every console page as the tenant administrator (the URL enumeration of the console crawler, so a new
page is audited without editing this file), the main pages of every persona (their own organization's tabs, a
project, a task, a run, each kind's list and a detail, runtimes, tokens, account…, the denied ones included: those
are the 403 and 404 pages as that persona sees them), the signed-out pages, the same main pages at phone width, and
forms redisplayed with errors.

Besides axe's violations, two things axe only reports as "needs review" fail here, because a server-rendered page
has no excuse for them: an ARIA or ``<label for>`` reference to an id that is not on the page (Django points
``aria-describedby`` at ``<id>_helptext`` and ``<id>_error``: the template must draw them) and an id used twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.db.models import Model
from django.urls import reverse
from playwright.sync_api import Page, expect

from orgs.management.commands.seed_demo import PEOPLE
from orgs.models import Organization, Project
from resources.models import Component, Credential, EnvVar, LookupTable, Run, Task
from runtimes.models import Runtime
from tests.console.pages import page_urls

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PERSONAS = [username for username, *_ in PEOPLE] + ["root"]
BLOCKING = ("critical", "serious")
DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
AXE = Axe()

# The references axe leaves for review, checked here instead; and the ids used twice (axe 4.x no longer fails them).
REFERENCES = r"""
() => {
  const problems = [];
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.getAttribute("name") ? `[name="${el.getAttribute("name")}"]` : "");
  const counts = new Map();
  for (const el of document.querySelectorAll("[id]")) counts.set(el.id, (counts.get(el.id) || 0) + 1);
  for (const [id, n] of counts) if (n > 1) problems.push(`id "${id}" is used ${n} times`);
  const refs = ["aria-describedby", "aria-labelledby", "aria-controls", "aria-owns", "aria-errormessage",
                "aria-activedescendant", "aria-details"];
  for (const attr of refs) {
    for (const el of document.querySelectorAll(`[${attr}]`)) {
      for (const ref of el.getAttribute(attr).split(/\s+/).filter(Boolean)) {
        if (!document.getElementById(ref)) problems.push(`${describe(el)}: ${attr} names "${ref}", not on the page`);
      }
    }
  }
  for (const label of document.querySelectorAll("label[for]")) {
    const target = document.getElementById(label.htmlFor);
    const text = `label "${label.textContent.trim()}": for="${label.htmlFor}"`;
    if (!target) problems.push(`${text} names nothing`);
    else if (!target.matches("input, select, textarea, button, meter, output, progress"))
      problems.push(`${text} names a ${target.tagName.toLowerCase()}, not a control`);
  }
  for (const el of document.querySelectorAll("[form]")) {
    if (!(document.getElementById(el.getAttribute("form")) instanceof HTMLFormElement))
      problems.push(`${describe(el)}: form="${el.getAttribute("form")}" names no form`);
  }
  return problems;
}
"""


def readable(violation: dict[str, Any]) -> str:
    """One violation as a person can act on it: rule, impact, what is wrong, where (selector and markup) and why."""
    lines = [f"{violation['id']} [{violation['impact']}]: {violation['help']} ({violation['helpUrl']})"]
    for node in violation["nodes"][:5]:
        messages = [check["message"] for kind in ("any", "all", "none") for check in node.get(kind, [])]
        lines.append(f"    at {' '.join(map(str, node['target']))}: {node['html'][:160]}")
        lines.extend(f"       - {message}" for message in messages[:3])
    if len(violation["nodes"]) > 5:
        lines.append(f"    … and {len(violation['nodes']) - 5} more")
    return "\n".join(lines)


@dataclass
class Auditor:
    page: Page
    base: str
    who: str
    problems: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)  # path → HTTP status of the pages audited

    def visit(self, path: str, *, probe: bool) -> bool:
        """Open ``path``; with ``probe``, only if it is an HTML page (not a POST-only action or a download)."""
        if probe:
            answer = self.page.request.get(self.base + path, max_redirects=0)
            if "text/html" not in answer.headers.get("content-type", "") or not answer.body():
                return False
        response = self.page.goto(self.base + path)
        assert response is not None
        self.statuses[path] = response.status
        return True

    def audit(self, path: str | None = None, *, label: str = "", probe: bool = False) -> None:
        """Run axe (and the reference check) on ``path``, or on the page as it is when ``path`` is None. ``probe``
        first asks whether ``path`` is an HTML page at all (the crawler's enumeration has actions and downloads)."""
        if path is not None and not self.visit(path, probe=probe):
            return
        where = f"{self.who} at {self.page.viewport_size['width'] if self.page.viewport_size else '?'} px: " + (
            label or self.page.url.removeprefix(self.base)
        )
        results = AXE.run(self.page, options={"resultTypes": ["violations", "incomplete"]}).response
        blocking = [v for v in results["violations"] if v["impact"] in BLOCKING]
        # An ARIA reference to a missing id is "incomplete" in axe (it could appear later): not in these pages.
        blocking += [
            v
            for v in results["incomplete"]
            if v["impact"] in BLOCKING
            and any("does not exist" in c["message"] for n in v["nodes"] for c in n.get("all", []) + n.get("any", []))
        ]
        references: list[str] = self.page.evaluate(REFERENCES)
        if blocking or references:
            self.problems.append(
                "\n".join([f"{where}", *("  " + readable(v) for v in blocking), *("  " + r for r in references)])
            )

    def report(self) -> str:
        return f"{len(self.problems)} page(s) with accessibility problems:\n\n" + "\n\n".join(self.problems)


@pytest.fixture
def auditor(live_server: Any, page: Page) -> Callable[[str], Auditor]:
    page.set_viewport_size(DESKTOP)
    return lambda who: Auditor(page, live_server.url, who)


# -- the main pages of a persona ------------------------------------------------------------------------------------


def home_org(username: str) -> Organization:
    """Where the persona has their role (PEOPLE's "where"); the tenant's root for those without one."""
    tenant, where = next(((t, w) for u, t, w, *_ in PEOPLE if u == username), ("Acme", ""))
    orgs = Organization.objects.alive().filter(tenant__name=tenant)
    if where and where.startswith("project:"):
        return orgs.get(name=where.split(":")[1].split("/")[-1])
    if where:
        return orgs.get(name=where.split("/")[-1])
    return orgs.get(parent__isnull=True)


def first_in(model: type[Model], subtree: Any, **lookup: Any) -> Any:
    """The first object of ``model`` in the subtree, else the first anywhere (its page may then deny: audited too)."""
    objects = model._default_manager.order_by("pk")
    return objects.filter(org__in=subtree, **lookup).first() or objects.filter(**lookup).first()


def main_pages(username: str) -> Iterator[str]:
    org = home_org(username)
    subtree = Organization.objects.filter(org.descendants_q())
    yield reverse("home")
    for name in (
        "org", "org-members", "org-teams", "org-roles", "org-invitations", "org-explain", "org-audit", "org-settings",
        "org-people", "tenant-sso", "runtimes", "credentials", "lookup-tables", "components", "env-vars", "org-edit",
        "org-create", "project-create",
    ):  # fmt: skip
        yield reverse(name, kwargs={"org_id": org.pk})
    project = Project.objects.filter(org__in=subtree).order_by("name").first() or Project.objects.first()
    assert project is not None
    for name in ("project", "tasks", "project-members", "project-edit"):
        yield reverse(name, kwargs={"org_id": project.org_id, "project_id": project.pk})
    task = Task.objects.filter(project__org__in=subtree).order_by("pk").first() or Task.objects.order_by("pk").first()
    assert task is not None
    task_org = Project.objects.get(pk=task.project_id).org_id
    yield reverse("task", kwargs={"org_id": task_org, "task_id": task.pk})
    run = Run.objects.filter(task=task).order_by("pk").first() or Run.objects.order_by("pk").first()
    if run is not None:
        yield reverse("run", kwargs={"org_id": task_org, "run_id": run.pk})
    for model, name in ((Credential, "credential"), (LookupTable, "lookup-table"), (Component, "component"),
                        (EnvVar, "env-var")):  # fmt: skip
        item = first_in(model, subtree)
        if item is not None:
            yield reverse(name, kwargs={"org_id": item.org_id, "item_id": item.pk})
    runtime = first_in(Runtime, subtree)
    if runtime is not None:
        yield reverse("runtime", kwargs={"org_id": runtime.org_id or org.pk, "runtime_id": runtime.pk})
    for name in ("account", "tokens", "shared-with-me", "switch", "twofactor"):
        yield reverse(name)


# -- the tests --------------------------------------------------------------------------------------------------------


def test_every_console_page_as_the_tenant_administrator(demo, sign_in, auditor) -> None:
    sign_in("acme-admin")
    audit = auditor("acme-admin")
    paths = sorted({url for route, url in page_urls() if route.name != "logout"})
    root = home_org("acme-admin")
    # Pages as their GET forms leave them: results, verdicts, a filter the form refuses.
    explain, log = reverse("org-explain", kwargs={"org_id": root.pk}), reverse("org-audit", kwargs={"org_id": root.pk})
    paths += [
        f"{explain}?user=maria&capability=member.manage",
        f"{explain}?user=bob&capability=org.view",
        f"{log}?action=org.",
        f"{log}?since=not-a-date",
        f"{reverse('switch')}?q=mark",
    ]
    for path in paths:
        audit.audit(path, probe=True)
    assert len(audit.statuses) > 60, f"only {len(audit.statuses)} pages audited: the enumeration lost pages"
    assert not audit.problems, audit.report()


def test_main_pages_of_every_persona(demo, sign_in, auditor, page: Page) -> None:
    """One walk (one demo world) for all personas, each at 1400 px, and one of them at phone width too: at 390 px
    the header and the tabs collapse into menus, still named and reachable. Every persona's problems are reported."""
    problems: list[str] = []
    # acme-admin's main pages are among every page the test above audits as acme-admin.
    walks = [*((p, DESKTOP) for p in PERSONAS if p != "acme-admin"), ("maria", PHONE)]
    for persona, viewport in walks:
        page.set_viewport_size(viewport)
        sign_in(persona)
        audit = auditor(persona)
        for path in main_pages(persona):
            audit.audit(path)
        assert 200 in audit.statuses.values(), f"{persona}: no page of theirs opened"
        problems += audit.problems
    assert not problems, f"{len(problems)} page(s) with accessibility problems:\n\n" + "\n\n".join(problems)


def test_denied_and_unknown_pages(demo, sign_in, auditor) -> None:
    """The 403 page (gwen, a guest, may not edit the project she sees) and the 404 pages (an unknown id, an unknown
    address), signed in and out."""
    gwen_org = home_org("gwen")
    project = Project.objects.filter(org=gwen_org).order_by("name").first()
    assert project is not None
    forbidden = reverse("project-edit", kwargs={"org_id": gwen_org.pk, "project_id": project.pk})
    unknown_org = reverse("org", kwargs={"org_id": "00000000-0000-4000-8000-000000000000"})
    sign_in("gwen")
    audit = auditor("gwen")
    for path in (forbidden, unknown_org, "/no/such/page/"):
        audit.audit(path)
    assert audit.statuses == {forbidden: 403, unknown_org: 404, "/no/such/page/": 404}
    assert not audit.problems, audit.report()


def test_signed_out_pages(demo, auditor, page: Page) -> None:
    audit = auditor("signed out")
    for path in ("/login/", "/signup/", "/account/password-reset/", "/account/password-reset/confirm/", "/no/such/"):
        audit.audit(path)
    # The log-in's second step (the password, after the sign-in discovery), then a wrong password.
    page.goto(audit.base + "/login/")
    page.get_by_label("E-mail address or username").fill("maria")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    audit.audit(label="log-in with a wrong password")
    assert re.search(r"/login/", page.url)
    # On a page without a focused field, the first Tab reaches "Skip to content", which moves past the header to the
    # page's main landmark.
    page.goto(audit.base + "/no/such/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#main$"))
    assert not audit.problems, audit.report()


def test_forms_redisplayed_with_errors(demo, sign_in, auditor, page: Page) -> None:
    """An invalid form comes back with its errors tied to their fields (aria-invalid, aria-describedby → the error
    and the help text, both on the page) and still no violation."""
    sign_in("acme-admin")
    audit = auditor("acme-admin")
    root = home_org("acme-admin")
    forms = [  # label, page, field, value
        ("new organization without a name", reverse("org-create", kwargs={"org_id": root.pk}), "name", ""),
        ("new project without a name", reverse("project-create", kwargs={"org_id": root.pk}), "name", ""),
        ("new credential without a name", reverse("credentials", kwargs={"org_id": root.pk}), "name", ""),
        ("a new e-mail address that is not one", reverse("account"), "email-email", "not-an-address"),
    ]
    for label, path, name, value in forms:
        page.goto(audit.base + path)
        form = page.locator(f'main form[method=post]:has([name="{name}"])').first
        form.locator(f'[name="{name}"]').fill(value)
        form.evaluate("f => { f.noValidate = true; }")  # the server's errors, not the browser's
        form.locator("button[type=submit]").first.click()
        page.wait_for_load_state()
        invalid = page.locator("[aria-invalid=true]")
        assert invalid.count() > 0, f"{label}: no field marked invalid ({page.url})"
        described = invalid.first.get_attribute("aria-describedby") or ""
        assert re.search(r"_error\b", described), f"{label}: the invalid field is not described by its error"
        audit.audit(label=label)
    # A valid one: the page it leads to says so in a flash message (a live region around a list).
    page.goto(audit.base + reverse("project-create", kwargs={"org_id": root.pk}))
    page.locator("main form[method=post] [name=name]").fill("Accessible project")
    page.locator("main form[method=post] button[type=submit]").first.click()
    page.wait_for_load_state()
    expect(page.locator(".messages")).to_be_visible()
    audit.audit(label="a flash message after creating a project")
    assert not audit.problems, audit.report()
