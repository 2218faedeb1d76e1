"""Replacing a lookup table's rows by a CSV import asks first (issue #11 §2), like every destructive console action.

An uploaded file cannot ride in a hidden field, so the first POST checks the file exactly as the import would, holds
it server-side (config.console.stage: the cache, a random token bound to the user and the table, 15 minutes) and
answers the shared confirmation page naming the table and the counts; the confirmed POST carries the token (used
once) and the version the counts were made at. Merging only adds and changes rows: it is done without a question.

Personas: alice administers Acme; admin-m / integrator-m / guest-m hold Admin / Integrator / Guest on Marketing;
gina administers Globex, another tenant.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from access.models import AuditEvent
from config.console import STAGED_FOR
from orgs.models import Organization
from resources import services
from resources.models import LookupTable
from tests.factories import World

ROWS = [{"key": "FR", "value": "France"}, {"key": "DE", "value": "Germany"}, {"key": "IT", "value": "Italy"}]
FILE = b"key,value\nFR,France\nDE,Deutschland\nES,Spain\n"  # FR kept, DE changed, ES added, IT removed
AFTER = {"FR": "France", "DE": "Deutschland", "ES": "Spain"}
STAGED_PREFIX = "canopy:staged:"


@pytest.fixture
def table(world: World) -> LookupTable:
    return services.create_lookup_table(actor=world.tenant_admin, org=world.marketing, name="Countries", rows=ROWS)


def page(org: Organization, table: LookupTable) -> str:
    return f"/o/{org.pk}/lookup-tables/{table.pk}/"


def upload(content: bytes = FILE, name: str = "countries.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def replace(table: LookupTable, content: bytes = FILE, **extra: Any) -> dict[str, Any]:
    return {"action": "import", "mode": "replace", "version": table.version, "file": upload(content), **extra}


def state(table: LookupTable) -> tuple[dict[str, str], int, int]:
    """The table's rows and version, and the number of audit events: what a refused import leaves as it was."""
    fresh = LookupTable.objects.get(pk=table.pk)
    return dict(fresh.rows.values_list("key", "value")), fresh.version, AuditEvent.objects.count()


def staged_keys() -> list[str]:
    """The held files (the tests run on the local-memory cache)."""
    backend = caches["default"]
    assert isinstance(backend, LocMemCache)
    return [key for key in backend._cache if STAGED_PREFIX in key]


def hidden_fields(html: str) -> dict[str, str]:
    form = html.split('id="confirm-title"')[1].split("</form>")[0]
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    return {unescape(n): unescape(v) for n, v in found if n != "csrfmiddlewaretoken"}


def ask(client: Any, org: Organization, table: LookupTable, content: bytes = FILE) -> dict[str, str]:
    """Post a replacing import and answer the confirmation page's hidden fields (what "Replace rows" posts)."""
    response = client.post(page(org, table), replace(table, content))
    assert response.status_code == 200, response.content.decode()[-2000:]
    return hidden_fields(response.content.decode())


@pytest.fixture(autouse=True)
def _no_staged_files() -> Any:
    cache.clear()
    yield
    cache.clear()


# -- ask first, then do --------------------------------------------------------------------------------------------


def test_replacing_asks_first_names_the_table_and_the_counts_and_changes_nothing(world, as_user, table):
    client = as_user(world.tenant_admin)
    before = state(table)
    response = client.post(page(world.marketing, table), replace(table))
    html = unescape(response.content.decode())
    assert response.status_code == 200
    assert "Replace every row of the lookup table Countries?" in html
    assert "the 3 rows it has now, replaced by the 3 rows of countries.csv" in html
    assert "1 key added, 1 key with a new value, 1 key removed" in html
    assert "export the CSV first" in html and "held for 15 minutes" in html
    assert state(table) == before and len(staged_keys()) == 1
    fields = hidden_fields(response.content.decode())
    assert fields.keys() == {"action", "mode", "version", "staged", "confirmed"}
    assert fields["action"] == "import" and fields["mode"] == "replace" and fields["confirmed"] == "1"
    assert fields["version"] == str(table.version) and re.fullmatch(r"[A-Za-z0-9_-]{43}", fields["staged"])
    assert f'href="{page(world.marketing, table)}">Cancel' in response.content.decode()
    assert "Marketing" in html  # the org frame is kept


def test_the_confirmed_replace_applies_the_held_file_once(world, as_user, table):
    client = as_user(world.tenant_admin)
    fields = ask(client, world.marketing, table)
    events = AuditEvent.objects.count()
    response = client.post(page(world.marketing, table), fields)
    assert response.status_code == 302 and response["Location"] == page(world.marketing, table)
    rows, version, after = state(table)
    assert rows == AFTER and version > table.version and after == events + 1
    assert AuditEvent.objects.latest("created_at").action == "lookup_table.update"
    assert staged_keys() == []
    # Single use: the same confirmation again is refused and changes nothing.
    services.update_lookup_table(actor=world.tenant_admin, table=table, rows=ROWS)
    before = state(table)
    again = client.post(page(world.marketing, table), {**fields, "version": before[1]})
    assert again.status_code == 409 and "no longer held" in unescape(again.content.decode())
    assert state(table) == before


def test_the_counts_come_from_one_query_of_the_rows(world, as_user, table, django_assert_max_num_queries):
    client = as_user(world.tenant_admin)
    client.get(page(world.marketing, table))  # the session and the page's caches warmed up
    with django_assert_max_num_queries(40) as queries:
        client.post(page(world.marketing, table), replace(table))
    assert sum('"resources_lookuprow"' in q["sql"] for q in queries.captured_queries) == 1


def test_a_replace_into_an_empty_table_still_asks(world, as_user):
    empty = services.create_lookup_table(actor=world.tenant_admin, org=world.marketing, name="Empty")
    client = as_user(world.tenant_admin)
    response = client.post(page(world.marketing, empty), replace(empty, b"a,1\n"))
    html = unescape(response.content.decode())
    assert response.status_code == 200 and "the 0 rows it has now, replaced by the 1 row of countries.csv" in html
    assert "1 key added, 0 keys with a new value, 0 keys removed" in html


def test_the_token_alone_does_not_confirm(world, as_user, table):
    client = as_user(world.tenant_admin)
    fields = ask(client, world.marketing, table)
    before = state(table)
    del fields["confirmed"]
    response = client.post(page(world.marketing, table), fields)
    assert response.status_code == 400 and "This field is required." in response.content.decode()
    assert state(table) == before and len(staged_keys()) == 1


# -- refused: nothing changed --------------------------------------------------------------------------------------


def test_another_users_token_is_refused_and_left_to_its_owner(world, people, as_user, client, table):
    fields = ask(as_user(world.tenant_admin), world.marketing, table)
    before = state(table)
    client.force_login(people["admin"])  # Admin on Marketing: may import, but did not ask
    response = client.post(page(world.marketing, table), fields)
    assert response.status_code == 409 and "no longer held" in unescape(response.content.decode())
    assert state(table) == before and len(staged_keys()) == 1
    client.force_login(world.tenant_admin)
    assert client.post(page(world.marketing, table), fields).status_code == 302
    assert state(table)[0] == AFTER


def test_a_token_held_for_another_table_is_refused(world, as_user, table):
    other = services.create_lookup_table(
        actor=world.tenant_admin, org=world.marketing, name="Cities", rows=[{"key": "P", "value": "Paris"}]
    )
    client = as_user(world.tenant_admin)
    fields = ask(client, world.marketing, table)
    before, before_other = state(table), state(other)
    response = client.post(page(world.marketing, other), {**fields, "version": other.version})
    assert response.status_code == 409 and "no longer held" in unescape(response.content.decode())
    assert state(table) == before and state(other) == before_other


def test_an_expired_token_is_refused(world, as_user, table):
    client = as_user(world.tenant_admin)
    fields = ask(client, world.marketing, table)
    assert STAGED_FOR == 15 * 60
    (key,) = staged_keys()
    cache.touch(key.split(":", 2)[2], 0)  # what 15 minutes do
    before = state(table)
    response = client.post(page(world.marketing, table), fields)
    assert response.status_code == 409 and "kept 15 minutes" in unescape(response.content.decode())
    assert state(table) == before


@pytest.mark.parametrize("token", ["tampered", "../../etc", "", "x" * 43])
def test_a_tampered_token_is_refused(world, as_user, table, token):
    client = as_user(world.tenant_admin)
    fields = ask(client, world.marketing, table)
    before = state(table)
    tampered = token if token != "tampered" else fields["staged"][:-1] + ("A" if fields["staged"][-1] != "A" else "B")
    response = client.post(page(world.marketing, table), {**fields, "staged": tampered})
    assert response.status_code in (400, 409) and state(table) == before
    assert len(staged_keys()) == 1  # the real one, still usable


def test_a_table_changed_since_the_question_is_stale(world, as_user, table):
    client = as_user(world.tenant_admin)
    fields = ask(client, world.marketing, table)
    services.update_lookup_table(actor=world.tenant_admin, table=table, description="changed meanwhile")
    before = state(table)
    response = client.post(page(world.marketing, table), fields)
    assert response.status_code == 409 and "changed" in unescape(response.content.decode())
    assert state(table) == before
    # A tampered version does not get round it: the version the counts were made at is the one checked.
    fields = ask(client, world.marketing, LookupTable.objects.get(pk=table.pk))
    services.update_lookup_table(actor=world.tenant_admin, table=table, description="again")
    before = state(table)
    response = client.post(page(world.marketing, table), {**fields, "version": before[1]})
    assert response.status_code == 409 and state(table) == before


def test_a_stale_form_is_refused_before_anything_is_held(world, as_user, table):
    client = as_user(world.tenant_admin)
    before = state(table)
    response = client.post(page(world.marketing, table), replace(table, version=table.version + 7))
    assert response.status_code == 409 and 'name="confirmed"' not in response.content.decode()
    assert state(table) == before and staged_keys() == []


def test_who_may_not_import_is_refused_not_asked_and_nothing_is_held(world, people, as_user, client, table):
    inherited = services.create_lookup_table(actor=world.tenant_admin, org=world.root, name="Codes", rows=ROWS)
    cases = [
        (people["guest"], page(world.marketing, table), {403, 404}),  # a Guest on Marketing sees no lookup table
        (people["integrator"], page(world.marketing, inherited), {403}),  # sees it; it is managed above
        (world.other_admin, page(world.marketing, table), {404}),  # another tenant: not there at all
    ]
    before, before_inherited = state(table), state(inherited)
    for user, url, statuses in cases:
        client.force_login(user)
        target = table if url == page(world.marketing, table) else inherited
        for extra in ({}, {"confirmed": "1"}, {"confirmed": "1", "staged": "x" * 43}):
            response = client.post(url, replace(target, **extra))
            assert response.status_code in statuses, (user, url, extra, response.status_code)
            assert 'name="confirmed"' not in response.content.decode()
    assert state(table) == before and state(inherited) == before_inherited and staged_keys() == []


def test_another_tenants_admin_cannot_use_a_token_either(world, as_user, client, table):
    fields = ask(as_user(world.tenant_admin), world.marketing, table)
    client.force_login(world.other_admin)
    before = state(table)
    assert client.post(page(world.marketing, table), fields).status_code == 404
    assert state(table) == before and len(staged_keys()) == 1


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"a,b,c\n", "exactly two columns"),
        (b"FR,France\nFR,again\n", "appears twice"),
        (b"\xff\xfe,x\n", "not UTF-8"),
    ],
)
def test_an_invalid_file_is_a_form_error_and_nothing_is_held(world, as_user, table, content, says):
    client = as_user(world.tenant_admin)
    before = state(table)
    response = client.post(page(world.marketing, table), replace(table, content))
    html = unescape(response.content.decode())
    assert response.status_code == 400 and says in html and 'name="confirmed"' not in html
    assert state(table) == before and staged_keys() == []


def test_with_the_cache_down_nothing_is_replaced_and_the_page_says_so(world, as_user, table):
    client = as_user(world.tenant_admin)
    before = state(table)
    down = {"default": {"BACKEND": "config.cache.FailOpenRedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    with override_settings(CACHES=down):
        response = client.post(page(world.marketing, table), replace(table))
    html = unescape(response.content.decode())
    assert response.status_code == 503 and "cannot be held" in html and 'name="confirmed"' not in html
    assert response["Retry-After"]
    assert state(table) == before


# -- what does not ask ---------------------------------------------------------------------------------------------


def test_merging_is_done_at_once(world, as_user, table):
    client = as_user(world.tenant_admin)
    data = {"action": "import", "mode": "merge", "version": table.version, "file": upload(b"ES,Spain\nDE,Deutschland")}
    response = client.post(page(world.marketing, table), data)
    assert response.status_code == 302 and staged_keys() == []
    assert state(table)[0] == {"FR": "France", "DE": "Deutschland", "IT": "Italy", "ES": "Spain"}


def test_a_file_posted_already_confirmed_is_imported(world, as_user, table):
    """As every destructive write: a client that posts ``confirmed=1`` has confirmed (a script, not the page)."""
    client = as_user(world.tenant_admin)
    response = client.post(page(world.marketing, table), replace(table, confirmed="1"))
    assert response.status_code == 302 and state(table)[0] == AFTER and staged_keys() == []


def test_the_api_replaces_without_asking(world, api_as, table):
    response = api_as(world.tenant_admin).post(
        f"/api/v1/lookup-tables/{table.pk}/import", {"csv": FILE.decode(), "mode": "replace"}, format="json"
    )
    assert response.status_code == 200 and state(table)[0] == AFTER and staged_keys() == []


def test_the_plan_counts_a_merge_without_removing(world, table):
    plan = services.plan_lookup_import(actor=world.tenant_admin, table=table, content=FILE, replace=False)
    assert (plan.rows_now, plan.rows_in_file, plan.added, plan.changed, plan.removed) == (3, 3, 1, 1, 0)
    assert state(table)[0] == {r["key"]: r["value"] for r in ROWS}
