"""The console crawler (issue #10 §2): in the demo world (``manage.py seed_demo``), as each of its personas, GET every
console page and submit every console form found on them with valid, invalid and conflicting data; then replay the
forms that the most privileged personas see as everyone else.

What must hold: no response is a 5xx; a denied write (403 or 404) changes nothing in the database (a fingerprint of
every table, before and after); an unknown id answers 404. Pages are enumerated from the URL resolver (every pattern
outside the admin and the API), their ``<…_id>`` parameters filled from the demo world's objects by name, so a new
page is crawled without editing this file (a parameter the crawler cannot fill fails loudly; tests/console/pages.py,
shared with the layout walk of tests/e2e/test_layout_e2e.py). Forms are parsed from
the HTML (action, method, fields, CSRF token) and posted with CSRF checks on. Each submission runs in a savepoint
that is rolled back, so every form meets the same world.
"""

from __future__ import annotations

import copy
import hashlib
import io
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from orgs.management.commands.seed_demo import PEOPLE
from tests.console.pages import console_routes, page_urls, unknown

PERSONAS = [username for username, *_ in PEOPLE] + ["root"]
UNTOUCHED_TABLES = ("django_session", "axes_")  # the session (messages, CSRF) and log-in throttling
TEXT = "Crawl 1"


# -- forms: parsed from the HTML -------------------------------------------------------------------------------------


@dataclass
class Form:
    page: str
    action: str
    method: str
    multipart: bool
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # name, value, type (kept in order)
    choices: dict[str, list[str]] = field(default_factory=dict)
    submits: list[tuple[str, str]] = field(default_factory=list)

    @property
    def signature(self) -> tuple[str, ...]:
        action = next((v for n, v, _ in self.fields if n == "action"), "")
        return (self.action.split("?")[0], action, *sorted({n for n, _, _ in self.fields}))


class FormParser(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__()
        self.page = page
        self.forms: list[Form] = []
        self.form: Form | None = None
        self.select: str | None = None
        self.textarea: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            action = urljoin(self.page, a.get("action") or self.page)
            multipart = a.get("enctype") == "multipart/form-data"
            self.form = Form(self.page, action, (a.get("method") or "get").lower(), multipart)
            self.forms.append(self.form)
        elif self.form is None or "name" not in a:
            return
        elif tag == "input":
            kind = a.get("type", "text")
            if kind in ("submit", "button"):
                self.form.submits.append((a["name"], a.get("value", "")))
            elif kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.form.fields.append((a["name"], a.get("value") or "on", kind))
                self.form.choices.setdefault(a["name"], []).append(a.get("value") or "on")
            else:
                self.form.fields.append((a["name"], a.get("value", ""), kind))
        elif tag == "button" and a.get("type", "submit") == "submit":
            self.form.submits.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self.select = a["name"]
            self.form.choices[a["name"]] = []
            self.form.fields.append((a["name"], "", "select"))
        elif tag == "textarea":
            self.textarea, self.text = a["name"], []

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.form = None
        elif tag == "select":
            self.select = None
        elif tag == "textarea" and self.form is not None and self.textarea is not None:
            self.form.fields.append((self.textarea, "".join(self.text).strip("\n"), "textarea"))
            self.textarea = None

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


class OptionAwareParser(FormParser):
    """Options belong to the select being read: the first one (or the selected one) is its value."""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "option" and self.form is not None and self.select is not None:
            a = {k: v or "" for k, v in attrs}
            self.form.choices[self.select].append(a.get("value", ""))
            if "selected" in a:
                self.form.fields = [
                    (n, a.get("value", "") if n == self.select else v, t) for n, v, t in self.form.fields
                ]
            return
        super().handle_starttag(tag, attrs)


def forms_of(page: str, html: str) -> list[Form]:
    parser = OptionAwareParser(page)
    parser.feed(html)
    return [f for f in parser.forms if "/logout/" not in f.action]


def confirmation_of(page: str, response: Any) -> Form | None:
    """The confirmation form a destructive write answered with (templates/_confirm.html), if it did."""
    if response.status_code != 200 or b'name="confirmed"' not in response.content:
        return None
    forms = forms_of(page, response.content.decode())
    return next((f for f in forms if f.method == "post" and any(n == "confirmed" for n, _, _ in f.fields)), None)


def plausible(name: str, kind: str) -> str:
    """A value a person would type in an empty field of that name."""
    lowered = name.lower()
    for key, value in (
        ("email", "crawler@example.com"), ("password", "Crawler-Pass-2026!"), ("steps", '[{"type": "log", '
        '"message": "crawl"}]'), ("rows", "a,1"), ("field_values", "user=crawler"), ("secret", "token=crawl"),
        ("days", "7"), ("username", "crawler1"), ("code", "not-a-code"), ("source", "def run(): ..."),
        ("repository_url", "https://git.example.com/crawl"), ("version", "1.0.1"), ("key", "CRAWL_KEY"),
    ):  # fmt: skip
        if key in lowered:
            return value
    return "" if kind in ("hidden", "datetime-local") or "expires" in lowered else TEXT


def data_for(form: Form, variant: str, submit: tuple[str, str] | None) -> dict[str, Any]:
    """The form as a person would post it: ``valid`` fills what is empty, ``invalid`` empties or spoils every field
    (the action kept), ``conflicting`` is valid but opened at a version older than the row's."""
    values: dict[str, list[str]] = {}
    files: dict[str, Any] = {}
    for name, value, kind in form.fields:
        if kind == "file":
            files[name] = SimpleUploadedFile("rows.csv", b"key,value\na,1\n", content_type="text/csv")
        elif variant == "invalid" and name not in ("csrfmiddlewaretoken", "action"):
            values.setdefault(name, []).append(
                "not-a-choice" if kind == "select" else "not-a-number" if kind == "hidden" else ""
            )
        else:
            if not value and kind == "select":
                value = next((c for c in form.choices.get(name, []) if c), "")
            elif not value and kind != "hidden":
                value = plausible(name, kind)
            values.setdefault(name, []).append(value)
    data: dict[str, Any] = {name: v[0] if len(v) == 1 else v for name, v in values.items()} | files
    if variant == "conflicting" and str(data.get("version", "")).isdigit():
        data["version"] = str(int(data["version"]) + 1000)  # opened "later" than anything saved: stale
    if submit is not None:
        data[submit[0]] = submit[1]
    return data


# -- the database fingerprint ------------------------------------------------------------------------------------------


def fingerprint() -> str:
    """A hash of every row of every table the console could write (not the session or log-in throttling)."""
    digest = hashlib.sha256()
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names()):
            if table.startswith(UNTOUCHED_TABLES):
                continue
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # table names from the schema itself
            digest.update(table.encode())
            for row in sorted(repr(r) for r in cursor.fetchall()):
                digest.update(row.encode())
    return digest.hexdigest()


# -- the crawl -------------------------------------------------------------------------------------------------------


@dataclass
class Crawl:
    client: Client
    persona: str
    problems: list[str] = field(default_factory=list)
    posts: int = 0
    baseline: str | None = None  # the fingerprint every rolled-back POST starts from (None: GETs moved it)

    def get(self, url: str) -> Any:
        self.baseline = None  # a page remembers the org it shows (the landing page's choice)
        response = self.client.get(url)
        if response.status_code >= 500:
            self.problems.append(f"{self.persona}: GET {url} → {response.status_code}")
        return response

    def post(self, form: Form, data: dict[str, Any], what: str, *, times: int = 1) -> None:
        """Post ``data`` (``times`` in a row, for the conflicting variant) in a savepoint rolled back afterwards."""
        if "csrftoken" in self.client.cookies and "csrfmiddlewaretoken" in data:
            # Replayed forms carry another persona's token: post this session's own (the cookie's secret).
            data = {**data, "csrfmiddlewaretoken": self.client.cookies["csrftoken"].value}
        cookies = copy.deepcopy(self.client.cookies)
        with transaction.atomic():
            start = self.baseline = self.baseline or fingerprint()
            for attempt in range(times):
                for value in data.values():
                    if hasattr(value, "seek"):
                        value.seek(0)
                before = start if attempt == 0 else fingerprint()
                response = self.client.post(form.action, data)
                self.posts += 1
                confirmation = confirmation_of(form.action, response)
                if confirmation is not None:
                    # A destructive write asks first (#11 §2): nothing is written until the person confirms.
                    if fingerprint() != before:
                        self.problems.append(f"{self.persona}: POST {form.action} ({what}) asked to confirm but wrote")
                    response = self.client.post(confirmation.action, data_for(confirmation, "valid", None))
                status = response.status_code
                if status >= 500:
                    self.problems.append(f"{self.persona}: POST {form.action} ({what}) → {status}")
                if status in (403, 404) and fingerprint() != before:
                    self.problems.append(f"{self.persona}: POST {form.action} ({what}) denied {status} but wrote")
            transaction.set_rollback(True)
        # The session rows are rolled back with the rest: the browser's cookies go back too (a sign-up or a new
        # password changes the session key, a log-in the CSRF secret).
        self.client.cookies = cookies


def collect_forms(crawl: Crawl) -> list[Form]:
    """GET every page, returning the POST forms found on them, one per kind of form (GET forms are submitted)."""
    found: dict[tuple[str, ...], Form] = {}
    for route, url in page_urls():
        response = crawl.get(url)
        if response.status_code == 200 and "html" in response.get("Content-Type", ""):
            for form in forms_of(url, response.content.decode()):
                if form.method == "post":
                    found.setdefault((route.name, *form.signature[1:]), form)
                else:
                    crawl.get(form.action)  # a search or filter form, submitted as it is
    return list(found.values())


def check_unknown_ids(crawl: Crawl) -> None:
    """Every page with an id answers 404 for an id that names nothing (a POST-only action: its POST does)."""
    for route in console_routes():
        kwargs = unknown(route)
        if kwargs is None:
            continue
        url = reverse(route.name, kwargs=kwargs)
        response = crawl.get(url)
        if response.status_code == 405:
            response = crawl.client.post(url, {"csrfmiddlewaretoken": crawl.client.cookies["csrftoken"].value})
        if response.status_code != 404:
            crawl.problems.append(f"{crawl.persona}: unknown id {url} → {response.status_code}, not 404")


def submit_all(crawl: Crawl, forms: list[Form]) -> None:
    for form in forms:
        for submit in form.submits or [None]:
            label = f"{form.signature[1] or 'form'}{'/' + submit[1] if submit else ''}"
            crawl.post(form, data_for(form, "valid", submit), f"valid {label}")
            crawl.post(form, data_for(form, "invalid", submit), f"invalid {label}")
            crawl.post(form, data_for(form, "conflicting", submit), f"conflicting {label}", times=2)


@pytest.fixture
def demo(db: Any) -> dict[str, Any]:
    call_command("seed_demo", allow_production=True, stdout=io.StringIO())
    users = {u.username: u for u in get_user_model().objects.filter(username__in=PERSONAS)}
    assert set(users) == set(PERSONAS), "seed_demo no longer creates every persona the crawler knows"
    return users


def as_persona(user: Any) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get(reverse("tokens"))  # a page with a form: sets the CSRF cookie
    return client


@pytest.mark.parametrize("persona", PERSONAS)
def test_crawl_the_console_as(persona, demo):
    crawl = Crawl(as_persona(demo[persona]), persona)
    submit_all(crawl, collect_forms(crawl))
    check_unknown_ids(crawl)
    # The forms the most privileged personas see, replayed as this one: what they may not do is denied and writes
    # nothing (the tenant administrators' own submissions above already met the same checks).
    if persona not in ("acme-admin", "root"):
        scout = Crawl(as_persona(demo["acme-admin"]), "acme-admin")
        for form in collect_forms(scout):
            crawl.post(form, data_for(form, "valid", form.submits[0] if form.submits else None), "replayed")
        assert not scout.problems, scout.problems
    assert not crawl.problems, "\n".join(crawl.problems)
    assert crawl.posts > 0
