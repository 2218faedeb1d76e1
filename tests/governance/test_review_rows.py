"""The rows of an access review (governance.review.service.review) against the hand-built world of review_world.py:
direct, inherited, team and project grants, tenant administrators, expiry, a cut, another tenant absent."""

from __future__ import annotations

from typing import Any

import pytest

from access.services.teams import remove_team_member
from governance.review import service
from tests.governance.review_world import ReviewWorld, build_review_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def rw(world: Any) -> ReviewWorld:
    return build_review_world(world)


def _table(review: service.Review) -> set[tuple[str, str, str, str]]:
    """(holder, role, source, where) of every row."""
    return {
        (row.user.username if row.user else "", row.role_key, row.source, "" if row.source == "tenant" else row.place)
        for row in review.rows
    }


def test_rows_at_an_org_are_its_grants_those_inherited_its_teams_and_the_tenant_administrators(rw: ReviewWorld) -> None:
    review = service.review(rw.world.emea, viewer=rw.alice)
    assert _table(review) == {
        ("alice", "tenant_admin", "tenant", ""),
        ("alice", "admin", "inherited", "Acme"),  # the tenant's creator is Admin of its root
        ("marta", "admin", "inherited", "Marketing"),
        ("ivan", "integrator", "inherited", "Marketing"),
        ("emil", "admin", "direct", "EMEA"),
        ("greta", "guest", "direct", "EMEA"),
        ("dana", "integrator", "team", "EMEA"),
        ("erin", "integrator", "team", "EMEA"),
    }  # holly's grant expired; cara's is below; pete's is on a project; lou's elsewhere; gus in another tenant
    greta = next(row for row in review.rows if row.user == rw.greta)
    assert greta.expires_at == rw.grants["greta"].expires_at
    assert greta.granted_by == rw.alice and greta.granted_at == rw.grants["greta"].created_at
    marta = next(row for row in review.rows if row.user == rw.marta)
    assert marta.inherited and marta.org == rw.world.marketing and marta.grant_id == str(rw.grants["marta"].pk)
    team_rows = [row for row in review.rows if row.source == "team"]
    assert {row.team.name for row in team_rows} == {"Ops"}
    assert {row.grant_id for row in team_rows} == {str(rw.grants["ops"].pk)}  # one grant, one row per member


def test_a_cut_stops_what_it_stops_and_lets_admin_grants_through(rw: ReviewWorld) -> None:
    review = service.review(rw.world.campaigns, viewer=rw.alice)
    assert _table(review) == {
        ("alice", "tenant_admin", "tenant", ""),
        ("alice", "admin", "inherited", "Acme"),  # the tenant's creator is Admin of its root
        ("marta", "admin", "inherited", "Marketing"),  # admins_only lets admins in
        ("emil", "admin", "inherited", "EMEA"),
        ("cara", "integrator", "direct", "Campaigns"),
    }  # ivan, greta and the Ops team are cut off


def test_a_subtree_lists_every_grant_made_below_and_on_its_projects(rw: ReviewWorld) -> None:
    review = service.review(rw.world.marketing, viewer=rw.marta, subtree=True)
    assert _table(review) == {
        ("alice", "tenant_admin", "tenant", ""),
        ("alice", "admin", "inherited", "Acme"),  # the tenant's creator is Admin of its root
        ("marta", "admin", "direct", "Marketing"),
        ("ivan", "integrator", "direct", "Marketing"),
        ("emil", "admin", "direct", "EMEA"),
        ("greta", "guest", "direct", "EMEA"),
        ("dana", "integrator", "team", "EMEA"),
        ("erin", "integrator", "team", "EMEA"),
        ("cara", "integrator", "direct", "Campaigns"),
        ("pete", "integrator", "project", "Marketing / Website"),
    }
    without = service.review(rw.world.marketing, viewer=rw.marta)
    assert {row.user.username for row in without.rows} == {"alice", "marta", "ivan", "pete"}  # its own project too


def test_a_subtree_shows_a_reviewer_only_the_departments_they_may_see(rw: ReviewWorld) -> None:
    # ivan holds member.view on Marketing and EMEA, but Campaigns (admins_only) cuts his integrator grant off.
    review = service.review(rw.world.marketing, viewer=rw.ivan, subtree=True)
    usernames = {row.user.username for row in review.rows}
    assert "cara" not in usernames and "emil" in usernames and "pete" in usernames


def test_other_tenants_are_absent_and_theirs_see_only_their_own(rw: ReviewWorld) -> None:
    acme = service.review(rw.world.root, viewer=rw.alice, subtree=True)
    assert "gus" not in {row.user.username for row in acme.rows if row.user}
    globex = service.review(rw.world.globex_root, viewer=rw.world.other_admin, subtree=True)
    assert {row.user.username for row in globex.rows} == {"gina", "gus"}


def test_a_team_without_members_is_one_row_naming_the_team(rw: ReviewWorld) -> None:
    for user in (rw.dana, rw.erin):
        remove_team_member(actor=rw.alice, team=rw.ops, user=user)
    review = service.review(rw.world.emea, viewer=rw.alice)
    rows = [row for row in review.rows if row.source == "team"]
    assert len(rows) == 1 and rows[0].user is None and rows[0].team.name == "Ops" and rows[0].holder == "team:Ops"
