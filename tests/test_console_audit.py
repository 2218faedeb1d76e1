"""The console's audit log (issue #11 §4, §6): changes in words with names instead of ids (one query per model per
page), filters that validate (a bad one is a form error, 400, and nothing is listed), the org-subtree and target
filters, search, pagination and the readable CSV."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.exceptions import ValidationError

from access import audit
from access.audit_log import parse_moment
from orgs.services import create_org, move_org, update_org
from tests.factories import make_org


def url(org):
    return f"/o/{org.pk}/audit/"


def html_of(response):
    return response.content.decode()


@pytest.fixture
def admin(world, as_user):
    client = as_user(world.tenant_admin)
    client.get(f"/o/{world.root.pk}/")  # the landing page remembered: budgets measure the audit page alone
    return client


def test_an_update_reads_old_to_new_and_a_move_names_the_parents(world, admin):
    update_org(actor=world.tenant_admin, org=world.emea, name="Europe")
    world.campaigns.refresh_from_db()
    move_org(actor=world.tenant_admin, org=world.campaigns, parent=world.logistics)
    html = html_of(admin.get(url(world.root)))
    assert "<del>EMEA</del> → <ins>Europe</ins>" in html
    assert "<del>Europe</del> → <ins>Logistics</ins>" in html  # org.move's parent ids, by name
    assert str(world.logistics.pk) not in html.split("<tbody>")[1]
    assert "{&#x27;" not in html and "{'" not in html  # no Python dict


def test_a_creation_names_its_parent_and_lists_read_as_lists(world, admin):
    create_org(actor=world.tenant_admin, parent=world.marketing, name="Brand")
    audit.record(actor=world.tenant_admin, action="role.update", tenant=world.acme, org=world.marketing,
                 target_name="Auditor", changes={"custom_capabilities": [["org.view"], ["org.view", "audit.view"]],
                                                 "locked": [False, True], "expires_at": None})  # fmt: skip
    html = html_of(admin.get(url(world.marketing)))
    assert "Parent:</span> Marketing" in html
    assert "Custom capabilities:</span> added View the audit log" in html  # a capability in words
    assert "<del>no</del> → <ins>yes</ins>" in html and "Expires at:</span> —" in html


def test_ids_of_another_tenant_stay_ids(world, admin):
    audit.record(actor=world.tenant_admin, action="runtime.update", tenant=world.acme, org=world.root,
                 target_name="shared", changes={"tenants": [str(world.acme.pk), str(world.globex.pk)]})  # fmt: skip
    html = html_of(admin.get(url(world.root)))
    assert f"Tenants:</span> Acme, {world.globex.pk}" in html and "Globex" not in html


def test_names_cost_one_query_per_model_per_page_not_per_row(world, admin, django_assert_max_num_queries):
    orgs = [make_org(world.logistics, f"Team {i}") for i in range(6)]
    for i in range(60):
        audit.record(actor=world.tenant_admin, action="org.move", tenant=world.acme, org=world.root,
                     target_name=f"moved {i}", changes={"parent": [str(orgs[i % 6].pk), str(orgs[(i + 1) % 6].pk)],
                                                        "user": str(world.member.pk)})  # fmt: skip
    with django_assert_max_num_queries(20) as few:
        html = html_of(admin.get(url(world.root), {"action": "org.move"}))
    budget = len(few.captured_queries)  # now: a later request resets the query log
    assert "<del>Team 5</del> → <ins>Team 0</ins>" in html and "User:</span> bob" in html  # event 59
    for i in range(60, 200):
        audit.record(
            actor=world.tenant_admin,
            action="org.move",
            tenant=world.acme,
            org=world.root,
            target_name=f"moved {i}",
            changes={"parent": [str(orgs[i % 6].pk), str(world.root.pk)]},
        )
    with django_assert_max_num_queries(budget):
        html = html_of(admin.get(url(world.root), {"action": "org.move"}))
    assert "<del>Team 1</del> → <ins>Acme</ins>" in html and "moved 199" in html  # event 199


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "soon"}, "since"),
        ({"since": "2026-13-01"}, "since"),
        ({"until": "yesterday"}, "until"),
        ({"since": "2026-11-02", "until": "2026-11-01"}, "until"),
        ({"org": "not-an-id"}, "org"),
        ({"target_type": "auth.nothing"}, "target_type"),
    ],
)
def test_a_bad_filter_is_a_form_error_and_lists_nothing(world, admin, params, field):
    response = admin.get(url(world.root), params)
    html = html_of(response)
    assert response.status_code == 400
    assert f'id="f-{field}-error"' in html and "no event is listed" in html
    assert "<tbody>" not in html
    assert admin.get(url(world.root), {**params, "format": "csv"}).status_code == 400  # no CSV of a wrong filter


def test_an_org_outside_the_subtree_or_tenant_is_refused(world, admin):
    for other in (world.logistics, world.globex_root):
        response = admin.get(url(world.marketing), {"org": str(other.pk), "descendants": "on"})
        assert response.status_code == 400 and "Choose an organization of this subtree." in html_of(response)


def test_subtree_filter_with_and_without_descendants(world, admin):
    for org, name in ((world.marketing, "at-marketing"), (world.emea, "at-emea"), (world.campaigns, "at-campaigns")):
        audit.record(actor=world.tenant_admin, action="test.mark", tenant=world.acme, org=org, target_name=name)
    subtree = html_of(admin.get(url(world.marketing), {"org": str(world.emea.pk), "descendants": "on"}))
    assert "at-emea" in subtree and "at-campaigns" in subtree and "at-marketing" not in subtree
    alone = html_of(admin.get(url(world.marketing), {"org": str(world.emea.pk)}))
    assert "at-emea" in alone and "at-campaigns" not in alone and "at-marketing" not in alone
    everything = html_of(admin.get(url(world.marketing)))
    assert all(name in everything for name in ("at-emea", "at-campaigns", "at-marketing"))
    assert 'name="descendants" checked' in everything  # the page opens on the whole subtree
    assert '<details class="more-filters">' in everything and '<details class="more-filters" open>' in alone


def test_target_filter_by_type_id_or_name_and_search(world, admin):
    update_org(actor=world.tenant_admin, org=world.emea, description="Europe and around")
    audit.record(actor=world.member, action="test.mark", tenant=world.acme, org=world.root, target_name="Zebra")
    by_type = html_of(admin.get(url(world.root), {"target_type": "orgs.organization", "target": "emea"}))
    assert "org.update" in by_type and "Zebra" not in by_type
    by_id = html_of(admin.get(url(world.root), {"target": str(world.emea.pk)}))
    assert "org.update" in by_id and "Zebra" not in by_id
    assert "Zebra" in html_of(admin.get(url(world.root), {"q": "zebr"}))
    searched = html_of(admin.get(url(world.root), {"q": "bob"}))
    assert "Zebra" in searched and "org.update" not in searched
    assert "Organization</span> EMEA" in by_id  # the target's type in words


def test_pages_of_fifty_out_of_range_is_the_last_page(world, admin, django_assert_max_num_queries):
    for i in range(120):
        audit.record(actor=world.tenant_admin, action="test.mark", tenant=world.acme, org=world.root,
                     target_name=f"row-{i:03d}")  # fmt: skip
    with django_assert_max_num_queries(20):
        first = html_of(admin.get(url(world.root), {"action": "test.mark"}))
    assert "row-119" in first and "row-070" in first and "row-069" not in first and "1–50 of 120" in first
    assert "action=test.mark&amp;page=2" in first  # the filters are kept by the page links
    last = html_of(admin.get(url(world.root), {"action": "test.mark", "page": "3"}))
    assert "row-000" in last and "Page 3 of 3" in last
    assert "Page 3 of 3" in html_of(admin.get(url(world.root), {"action": "test.mark", "page": "999"}))
    assert "Page 1 of 3" in html_of(admin.get(url(world.root), {"action": "test.mark", "page": "x"}))


def test_the_csv_is_readable_and_keeps_the_recorded_json(world, admin):
    update_org(actor=world.tenant_admin, org=world.emea, name="Europe")
    audit.record(actor=world.tenant_admin, action="test.mark", tenant=world.acme, org=world.root,
                 target_name="=cmd()", changes={"n": 1})  # fmt: skip
    response = admin.get(url(world.root), {"format": "csv", "action": "org.update"})
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["time", "actor", "action", "org", "target_type", "target", "changes", "ip", "changes_json"]
    assert len(rows) == 2 and rows[1][2] == "org.update" and rows[1][6] == "Name: EMEA → Europe"
    assert rows[1][8] == '{"name": ["EMEA", "Europe"]}'
    marked = list(csv.reader(io.StringIO(admin.get(url(world.root), {"format": "csv", "action": "test.mark"})
                                         .content.decode())))  # fmt: skip
    assert marked[1][5] == "'=cmd()"  # still no formula


def test_deny_and_other_tenants(world, people, as_user):
    assert as_user(people["guest"]).get(url(world.marketing)).status_code == 403
    assert as_user(people["guest"]).get(url(world.marketing), {"format": "csv"}).status_code == 403
    assert as_user(world.other_admin).get(url(world.marketing), {"since": "soon"}).status_code == 404
    assert as_user(people["admin"]).get(url(world.marketing)).status_code == 200


def test_parse_moment():
    assert parse_moment("2026-11-01").isoformat() == "2026-11-01T00:00:00+00:00"
    assert parse_moment("2026-11-01", end_of_day=True).isoformat() == "2026-11-02T00:00:00+00:00"
    assert parse_moment("2026-11-01T10:00:00+02:00").isoformat() == "2026-11-01T08:00:00+00:00"
    with pytest.raises(ValidationError):
        parse_moment("0001-01-01T00:00:00+05:00")  # before year 1 in UTC
