"""The access review's faces: the console page /o/<org>/review/ (filters, CSV, bulk attest, revoke through the
confirmation page), the API (GET /orgs/{id}/review, POST …/attest and …/revoke), the admin, the reports with their
two settings, and the query budgets."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access import policy
from access.models import AuditEvent, OrgUserGrant
from access.services import issue_token
from access.services.custom_roles import create_role
from access.services.grants import grant_role
from governance.models import Attestation
from governance.review import service
from resources.services import set_setting
from tests.factories import UserFactory, add_to_tenant
from tests.governance.review_world import ReviewWorld, build_review_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def rw(world: Any) -> ReviewWorld:
    return build_review_world(world)


def _url(org: Any) -> str:
    return f"/o/{org.pk}/review/"


def _api(org: Any, tail: str = "") -> str:
    return f"/api/v1/orgs/{org.pk}/review{tail}"


def _client(client: Any, user: Any) -> Any:
    client.force_login(user)
    return client


def _token(api: Any, user: Any) -> Any:
    _, raw = issue_token(user=user)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


def _viewer_without_member_view(rw: ReviewWorld) -> Any:
    """gil sees EMEA and its tasks through a custom role without member.view."""
    role = create_role(actor=rw.alice, org=rw.world.marketing, key="task-viewer", name="Task viewer",
                       capabilities=["org.view", "project.view", "task.view"])  # fmt: skip
    gil = UserFactory(username="gil")
    add_to_tenant(gil, rw.world.acme)
    grant_role(actor=rw.alice, target=rw.world.emea, role=role, user=gil)
    return gil


# -- console --------------------------------------------------------------------------------------------------------


def test_the_page_lists_the_review_to_member_viewers(
    rw: ReviewWorld, client: Any, django_assert_max_num_queries: Any
) -> None:
    page = _client(client, rw.marta)
    with django_assert_max_num_queries(30):
        response = page.get(_url(rw.world.emea))
    html = response.content.decode()
    assert response.status_code == 200
    for name in ("marta", "ivan", "emil", "greta", "dana", "erin", "Ops"):
        assert name in html
    assert "holly" not in html and "cara" not in html and 'name="grants"' in html  # marta may act: checkboxes
    assert 'href="/o/' in html and "Access review" in html  # the tab


def test_the_page_denies_who_cannot_view_members_and_hides_what_they_cannot_see(rw: ReviewWorld, client: Any) -> None:
    guest = _viewer_without_member_view(rw)
    assert _client(client, guest).get(_url(rw.world.emea)).status_code == 403
    assert client.get(_url(rw.world.logistics)).status_code == 404  # not visible at all
    assert _client(client, rw.world.other_admin).get(_url(rw.world.emea)).status_code == 404
    # An integrator sees the review, without checkboxes.
    html = _client(client, rw.ivan).get(_url(rw.world.emea)).content.decode()
    assert "emil" in html and 'name="grants"' not in html


def test_filters_and_csv(rw: ReviewWorld, client: Any) -> None:
    page = _client(client, rw.marta)
    service.attest(actor=rw.marta, org=rw.world.marketing, grant_ids=[str(rw.grants["ivan"].pk)])
    html = page.get(_url(rw.world.marketing), {"subtree": "1", "not_attested": "1"}).content.decode()
    assert "cara" in html and "pete" in html and "ivan" not in html
    response = page.get(_url(rw.world.marketing), {"subtree": "1", "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_user = {(r["username"], r["role"]): r for r in rows}
    assert by_user[("ivan", "integrator")]["attested_by"] == "marta"
    assert by_user[("ivan", "integrator")]["not_attested"] == "no"
    assert (
        by_user[("pete", "integrator")]["source"] == "project"
        and by_user[("pete", "integrator")]["project"] == "Website"
    )
    assert by_user[("dana", "integrator")]["team"] == "Ops"
    assert "gus" not in {r["username"] for r in rows} and "lou" not in {r["username"] for r in rows}


def test_bulk_attest_in_the_console(rw: ReviewWorld, client: Any) -> None:
    page = _client(client, rw.marta)
    ids = [str(rw.grants["greta"].pk), str(rw.grants["ops"].pk)]
    response = page.post(_url(rw.world.emea), {"action": "attest", "grants": ids, "note": "looked at it"})
    assert response.status_code == 302
    assert set(Attestation.objects.values_list("grant_id", flat=True)) == set(ids)
    assert AuditEvent.objects.filter(action="grant.attest").count() == 2


def test_bulk_revoke_asks_first_with_the_impact_then_revokes(rw: ReviewWorld, client: Any) -> None:
    page = _client(client, rw.marta)
    ids = [str(rw.grants["greta"].pk)]
    asked = page.post(_url(rw.world.emea), {"action": "revoke", "grants": ids})
    html = asked.content.decode()
    assert asked.status_code == 200 and "Revoke 1 grant?" in html and "greta" in html
    assert "loses" in html  # the preview: greta loses her capabilities at EMEA
    assert OrgUserGrant.objects.filter(pk=ids[0]).exists()  # nothing done before the confirmation
    done = page.post(_url(rw.world.emea), {"action": "revoke", "grants": ids, "confirmed": "1"})
    assert done.status_code == 302 and not OrgUserGrant.objects.filter(pk=ids[0]).exists()


def test_console_attacks_change_nothing(rw: ReviewWorld, client: Any) -> None:
    before = (Attestation.objects.count(), OrgUserGrant.objects.count())
    page = _client(client, rw.ivan)  # member.view, no member.manage
    ids = [str(rw.grants["marta"].pk), str(rw.grants["emil"].pk)]
    for action in ("attest", "revoke"):
        response = page.post(_url(rw.world.emea), {"action": action, "grants": ids, "confirmed": "1"})
        assert response.status_code == 403
    other = page.post(_url(rw.world.emea), {"action": "attest", "grants": [str(rw.grants["gus"].pk)]})
    assert other.status_code == 404
    bad = page.post(_url(rw.world.emea), {"action": "attest", "grants": ["not-an-id"]})
    assert bad.status_code == 400
    assert (Attestation.objects.count(), OrgUserGrant.objects.count()) == before


# -- API ------------------------------------------------------------------------------------------------------------


def test_api_lists_the_review_paginated_with_filters(
    rw: ReviewWorld, api: Any, django_assert_max_num_queries: Any
) -> None:
    type(rw.marta).objects.filter(pk=rw.marta.pk).update(last_seen_at=timezone.now() - timedelta(days=365))
    client = _token(api, rw.marta)
    with django_assert_max_num_queries(20):
        response = client.get(_api(rw.world.marketing), {"subtree": "true"})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == len(body["results"]) == 10
    pete = next(r for r in body["results"] if r["user"] and r["user"]["username"] == "pete")
    assert pete["source"] == "project" and pete["project"]["name"] == "Website" and pete["kind"] == "project_user"
    assert pete["granted_by"] == "alice" and pete["grant"] == str(rw.grants["pete"].pk)
    inactive = client.get(_api(rw.world.marketing), {"subtree": "true", "inactive": "true"}).json()
    assert {r["user"]["username"] for r in inactive["results"]} == {"dana"}  # marta just used her token
    assert client.get(_api(rw.world.marketing), {"subtree": "maybe"}).status_code == 400


def test_api_allow_deny_and_not_found(rw: ReviewWorld, api: Any) -> None:
    guest = _viewer_without_member_view(rw)
    assert _token(api, guest).get(_api(rw.world.emea)).status_code == 403
    assert api.get(_api(rw.world.logistics)).status_code == 404
    assert _token(api, rw.world.other_admin).get(_api(rw.world.emea)).status_code == 404
    assert _token(api, rw.ivan).get(_api(rw.world.emea)).status_code == 200


def test_api_attest_and_revoke(rw: ReviewWorld, api: Any) -> None:
    client = _token(api, rw.marta)
    ids = [str(rw.grants["ivan"].pk), str(rw.grants["pete"].pk)]
    attested = client.post(_api(rw.world.marketing, "/attest"), {"grants": ids, "note": "ok"}, format="json")
    assert attested.status_code == 200 and attested.json() == {"done": ids, "refused": []}
    assert Attestation.objects.filter(note="ok").count() == 2
    revoked = client.post(_api(rw.world.marketing, "/revoke"), {"grants": ids[:1]}, format="json")
    assert revoked.status_code == 200 and revoked.json()["done"] == ids[:1]
    assert not OrgUserGrant.objects.filter(pk=ids[0]).exists()


def test_api_partial_failure_is_reported_per_grant(rw: ReviewWorld, api: Any) -> None:
    client = _token(api, rw.emil)  # Admin of EMEA: greta's grant yes, marta's (made above him) no
    ids = [str(rw.grants["greta"].pk), str(rw.grants["marta"].pk)]
    response = client.post(_api(rw.world.emea, "/revoke"), {"grants": ids}, format="json")
    body = response.json()
    assert response.status_code == 200 and body["done"] == ids[:1] and [r["grant"] for r in body["refused"]] == ids[1:]
    assert OrgUserGrant.objects.filter(pk=ids[1]).exists()


def test_api_attacks_and_bad_input_change_nothing(rw: ReviewWorld, api: Any) -> None:
    before = (Attestation.objects.count(), OrgUserGrant.objects.count(), AuditEvent.objects.count())
    integrator = _token(api, rw.ivan)
    for tail in ("/attest", "/revoke"):
        refused = integrator.post(_api(rw.world.emea, tail), {"grants": [str(rw.grants["emil"].pk)]}, format="json")
        assert refused.status_code == 403 and refused.json()["code"] == "grants_refused"
        assert refused.json()["refused"][0]["grant"] == str(rw.grants["emil"].pk)
    marta = _token(api, rw.marta)
    foreign = marta.post(_api(rw.world.marketing, "/revoke"), {"grants": [str(rw.grants["gus"].pk)]}, format="json")
    assert foreign.status_code == 404 and foreign.json()["code"] == "grants_not_found"
    for body in (
        {},
        {"grants": []},
        {"grants": "x"},
        {"grants": ["x"]},
        {"grants": [str(rw.grants["ivan"].pk)], "note": "n" * 1001},
    ):
        assert marta.post(_api(rw.world.marketing, "/attest"), body, format="json").status_code == 400, body
    alice = _token(api, rw.alice)
    last = alice.post(_api(rw.world.root, "/revoke"), {"grants": [str(rw.alice.pk)]}, format="json")
    assert last.status_code == 403 and last.json()["refused"][0]["code"] == "last_tenant_admin"
    assert (Attestation.objects.count(), OrgUserGrant.objects.count(), AuditEvent.objects.count()) == before


# -- reports and settings -------------------------------------------------------------------------------------------


def test_reports_follow_the_two_settings(rw: ReviewWorld) -> None:
    now = timezone.now()
    old = now - timedelta(days=40)
    Attestation.objects.create(
        tenant=rw.world.acme, org=rw.world.emea, grant_kind="org_user", grant_id=str(rw.grants["greta"].pk),
        holder_name="greta", role_key="guest", attested_by=rw.marta, attested_by_name="marta", attested_at=old,
    )  # fmt: skip
    type(rw.greta).objects.filter(pk=rw.greta.pk).update(last_seen_at=old)
    type(rw.emil).objects.filter(pk=rw.emil.pk).update(last_seen_at=now - timedelta(days=2))
    review = service.review(rw.world.emea, viewer=rw.marta)
    assert (review.review_days, review.inactive_days) == (90, 60)  # the defaults
    unattested = {row.user.username for row in review.filtered(unattested=True)}
    assert "greta" not in unattested and "emil" in unattested
    inactive = {user.username for user in review.inactive_people}
    assert "greta" not in inactive and "emil" not in inactive and "dana" in inactive  # dana was never seen

    set_setting(actor=rw.alice, org=rw.world.marketing, key="access_review_days", value=30)
    set_setting(actor=rw.alice, org=rw.world.marketing, key="inactive_days", value=30)
    review = service.review(rw.world.emea, viewer=rw.marta)  # inherited from Marketing
    assert (review.review_days, review.inactive_days) == (30, 30)
    assert "greta" in {row.user.username for row in review.filtered(unattested=True)}
    assert "greta" in {user.username for user in review.inactive_people}
    assert {row.user.username for row in review.filtered(unattested=True, inactive=True)} >= {"greta", "dana"}


# -- budgets --------------------------------------------------------------------------------------------------------


def test_the_review_costs_the_same_queries_whatever_the_size(rw: ReviewWorld) -> None:
    def count() -> int:
        policy.forget(rw.alice)
        with CaptureQueriesContext(connection) as queries:
            service.review(rw.world.marketing, viewer=rw.alice, subtree=True)
        return len(queries.captured_queries)

    small = count()
    for n in range(15):
        user = UserFactory(username=f"x{n}")
        add_to_tenant(user, rw.world.acme)
        grant_role(actor=rw.alice, target=rw.world.campaigns if n % 2 else rw.world.emea, role="guest", user=user)
        rw.ops.group.user_set.add(user)
        service.attest(actor=rw.alice, org=rw.world.marketing, grant_ids=[str(rw.grants["ops"].pk)])
    assert count() == small <= 12


# -- admin ----------------------------------------------------------------------------------------------------------


def test_the_admin_lists_attestations_of_the_own_tenant_read_only(rw: ReviewWorld, client: Any) -> None:
    service.attest(actor=rw.alice, org=rw.world.marketing, grant_ids=[str(rw.grants["ivan"].pk)])
    service.attest(actor=rw.world.other_admin, org=rw.world.globex_root, grant_ids=[str(rw.grants["gus"].pk)])
    page = _client(client, rw.alice)
    listed = page.get("/admin/governance/attestation/")
    assert [a.holder_name for a in listed.context["cl"].result_list] == ["ivan"]
    foreign = Attestation.objects.get(holder_name="gus")
    assert page.get(f"/admin/governance/attestation/{foreign.pk}/change/").status_code in (302, 404)
    assert page.get("/admin/governance/attestation/add/").status_code == 403
