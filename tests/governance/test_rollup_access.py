"""Who may open the roll-up (page, CSV, API) and what each answer holds: allow and deny for every entry point."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.core.cache import cache
from django.urls import reverse

from orgs.models import Organization
from tests.governance import rollup_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def rw(world: Any) -> rollup_world.RollupWorld:
    cache.clear()
    return rollup_world.build(world)


def _page(org: Organization, **query: str) -> str:
    url = reverse("org-rollup", args=[org.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def _api(org: Any) -> str:
    return f"/api/v1/orgs/{getattr(org, 'pk', org)}/rollup"


# -- the console page ------------------------------------------------------------------------------------------------


def test_the_page_shows_each_child_with_a_link_to_its_own_dashboard(rw: Any, as_user: Any) -> None:
    response = as_user(rw.base.tenant_admin).get(_page(rw.base.root, period="30d"))
    assert response.status_code == 200
    html = response.content.decode()
    for child in (rw.base.marketing, rw.base.logistics, rw.vault):
        assert f'href="{reverse("org-rollup", args=[child.pk])}?period=30d"' in html
    assert "<svg" in html and '<title id="runs-svg-title">' in html  # charts, with accessible names
    assert "Runs per day as a table" in html
    assert 'aria-current="page">Last 30 days' in html
    assert "kept and renewed for up to 300 seconds, so a change may take that long to show" in html
    assert "Dashboard" in html  # the tab
    assert 'src="http' not in html and 'href="http' not in html  # nothing from a CDN


def test_the_page_hides_the_subtree_behind_the_cut(rw: Any, as_user: Any) -> None:
    html = as_user(rw.people["carol"]).get(_page(rw.base.root)).content.decode()
    assert "Vault" not in html and "vault-agent" not in html and "keys-rotate" not in html


@pytest.mark.parametrize("who", ["ivy", "outsider", "other_admin"])
def test_the_page_is_not_found_for_who_may_not_open_the_org(rw: Any, as_user: Any, who: str) -> None:
    user = rw.people.get(who) or getattr(rw.base, who)
    assert as_user(user).get(_page(rw.base.root)).status_code == 404
    assert as_user(user).get(_page(rw.base.root, format="csv")).status_code == 404


def test_the_page_needs_a_sign_in(rw: Any, client: Any) -> None:
    response = client.get(_page(rw.base.root))
    assert response.status_code == 302 and "login" in response["Location"]


def test_an_integrator_opens_their_own_part(rw: Any, as_user: Any) -> None:
    response = as_user(rw.people["ivy"]).get(_page(rw.base.logistics))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Marketing" not in html and "Vault" not in html  # nothing of the parts ivy may not see


def test_a_bad_period_is_a_400_page(rw: Any, as_user: Any) -> None:
    response = as_user(rw.base.tenant_admin).get(_page(rw.base.root, period="1y"))
    assert response.status_code == 400
    assert "24h, 7d, 30d" in response.content.decode()


# -- CSV ------------------------------------------------------------------------------------------------------------


def test_the_csv_holds_the_table_and_is_safe_in_a_spreadsheet(rw: Any, as_user: Any) -> None:
    Organization.objects.filter(pk=rw.base.logistics.pk).update(name="=HYPERLINK(1)")
    response = as_user(rw.base.tenant_admin).get(_page(rw.base.root, period="7d", format="csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="rollup-{rw.base.root.pk}-7d.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["part"], r["organization"]) for r in rows] == [
        ("here", "Acme"), ("child", "Marketing"), ("child", "'=HYPERLINK(1)"), ("child", "Vault"), ("total", "Acme"),
    ]  # fmt: skip
    marketing, total = rows[1], rows[-1]
    assert marketing["organization_id"] == str(rw.base.marketing.pk)
    assert (marketing["tasks"], marketing["failing_tasks"], marketing["runs"], marketing["runs_failed"]) == (
        "3", "1", "5", "2",
    )  # fmt: skip
    assert (total["organizations"], total["people"], total["pending_invitations"], total["grants_expiring_30d"]) == (
        "6", "6", "2", "3",
    )  # fmt: skip
    assert total["failure_rate"] == "0.571"


def test_the_csv_counts_only_what_the_viewer_sees(rw: Any, as_user: Any) -> None:
    response = as_user(rw.people["sec"]).get(_page(rw.base.root, format="csv"))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["organization"] for r in rows] == ["Acme", "Marketing", "Logistics", "Acme"]
    assert rows[-1]["tasks"] == "5" and rows[-1]["pending_invitations"] == "0"


# -- API ------------------------------------------------------------------------------------------------------------


def test_the_api_answers_the_rollup(rw: Any, api_as: Any) -> None:
    response = api_as(rw.base.tenant_admin).get(_api(rw.base.root), {"period": "24h"})
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["period"] == "24h" and data["step"] == "hour" and data["org_id"] == str(rw.base.root.pk)
    assert [(r["kind"], r["name"]) for r in data["rows"]] == [
        ("here", "Acme"), ("child", "Marketing"), ("child", "Logistics"), ("child", "Vault"),
    ]  # fmt: skip
    assert data["rows"][0]["org_id"] is None and data["rows"][1]["org_id"] == str(rw.base.marketing.pk)
    total = data["total"]
    assert total["runs"]["succeeded"] == 2 and total["runs"]["lost"] == 1 and total["runs_total"] == 3
    # failing within 24 hours: depot-feed (lost 5 hours ago) only; the other failures are older
    assert (total["tasks"], total["failing_tasks"], total["people"], total["pending_invitations"]) == (6, 1, 6, 2)
    assert len(data["per_step"]) in (24, 25) and set(data["per_step"][0]["runs"]) >= {"succeeded", "failed"}


def test_the_api_counts_only_what_the_caller_sees(rw: Any, api_as: Any) -> None:
    data = api_as(rw.people["ivy"]).get(_api(rw.base.logistics)).json()
    assert [r["kind"] for r in data["rows"]] == ["here"]
    assert (data["total"]["tasks"], data["total"]["runs"]["lost"], data["total"]["pending_invitations"]) == (1, 1, 0)


@pytest.mark.parametrize("who", ["ivy", "outsider", "other_admin"])
def test_the_api_is_not_found_for_who_may_not_open_the_org(rw: Any, api_as: Any, who: str) -> None:
    user = rw.people.get(who) or getattr(rw.base, who)
    response = api_as(user).get(_api(rw.base.root))
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_the_api_is_not_found_for_a_cut_off_subtree_and_a_missing_id(rw: Any, api_as: Any) -> None:
    assert api_as(rw.people["carol"]).get(_api(rw.vault)).status_code == 404
    assert api_as(rw.base.tenant_admin).get(_api("not-a-uuid")).status_code == 404
    assert api_as(rw.base.tenant_admin).get(_api(rw.base.globex_root)).status_code == 404


def test_the_api_refuses_a_bad_period_with_400(rw: Any, api_as: Any) -> None:
    response = api_as(rw.base.tenant_admin).get(_api(rw.base.root), {"period": "365d"})
    assert response.status_code == 400
    assert "24h, 7d, 30d" in response.json()["period"][0]


def test_the_api_needs_credentials(rw: Any, api: Any) -> None:
    assert api.get(_api(rw.base.root)).status_code == 401
