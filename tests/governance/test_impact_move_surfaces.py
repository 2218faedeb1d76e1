"""The previews of a move and of an inheritance change where people make them: the API (``?dry_run=true``), the
console (the confirmation page shows the preview before the button) and the admin (the audit keeps the summary).
Allow and deny for each; a refused or malformed request changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from access.models import AuditEvent
from governance.impact.engine import Scope
from orgs.models import Organization
from tests.governance.impact_world import ImpactWorld, build_impact_world
from tests.governance.test_impact_move import state

pytestmark = pytest.mark.django_db


@pytest.fixture
def iw(world: Any) -> ImpactWorld:
    return build_impact_world(world)


def move_url(org: Organization, dry_run: str | None = "true") -> str:
    return f"/api/v1/orgs/{org.pk}/move" + (f"?dry_run={dry_run}" if dry_run is not None else "")


def org_url(org: Organization, dry_run: str | None = "true") -> str:
    return f"/api/v1/orgs/{org.pk}" + (f"?dry_run={dry_run}" if dry_run is not None else "")


def sections(body: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {s["key"]: s["entries"] for s in body["sections"]}


# -- API: move -----------------------------------------------------------------------------------------------------


def test_a_dry_run_move_answers_the_impact_and_changes_nothing(iw: ImpactWorld, api_as: Any) -> None:
    before = state(iw.base.acme.pk)
    response = api_as(iw.base.tenant_admin).post(move_url(iw.depot), {"parent": str(iw.berlin.pk)}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["change"] == "Move Depot under Berlin" and body["empty"] is False
    found = sections(body)
    assert [e["details"]["user"]["username"] for e in found["capabilities"]] == ["eve"]
    assert {e["kind"] for e in found["runs"]} == {"displaced", "unplaceable"}
    assert any(e["kind"] == "shadowed" and e["details"].get("name") == "REGION" for e in found["declarations"])
    assert "ETag" not in response.headers  # nothing changed: no new version to name
    assert state(iw.base.acme.pk) == before


def test_the_move_itself_records_the_previews_summary(iw: ImpactWorld, api_as: Any) -> None:
    client = api_as(iw.base.tenant_admin)
    response = client.post(move_url(iw.depot, None), {"parent": str(iw.berlin.pk)}, format="json")
    assert response.status_code == 200 and response.json()["id"] == str(iw.depot.pk)
    assert Organization.objects.get(pk=iw.depot.pk).parent_id == iw.berlin.pk
    event = AuditEvent.objects.get(action="org.move", target_id=str(iw.depot.pk))
    assert event.changes["impact"]["change"] == "Move Depot under Berlin"
    assert event.changes["impact"]["runs"]["counts"] == {"displaced": 1, "unplaceable": 1}
    # dry_run=false is the move too
    response = client.post(move_url(iw.depot, "false"), {"parent": str(iw.base.logistics.pk)}, format="json")
    assert response.status_code == 200
    assert Organization.objects.get(pk=iw.depot.pk).parent_id == iw.base.logistics.pk


@pytest.mark.parametrize(
    ("who", "status"),
    [("frank", 403), ("eve", 403), ("dora", 404), ("outsider", 404), ("other_admin", 404)],
)
def test_a_dry_run_move_is_refused_as_the_move(iw: ImpactWorld, api_as: Any, who: str, status: int) -> None:
    """frank (Admin of Vault) and eve (Guest on Logistics) see the org but may not move it; the others do not see it."""
    actor = iw.users.get(who) or getattr(iw.base, who)
    org = iw.vault if who == "frank" else iw.depot
    before = state(iw.base.acme.pk)
    response = api_as(actor).post(move_url(org), {"parent": str(iw.berlin.pk)}, format="json")
    assert response.status_code == status, response.content
    assert state(iw.base.acme.pk) == before


def test_a_dry_run_move_into_its_own_subtree_is_a_409(iw: ImpactWorld, api_as: Any) -> None:
    before = state(iw.base.acme.pk)
    response = api_as(iw.base.tenant_admin).post(move_url(iw.depot), {"parent": str(iw.bay.pk)}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "cycle"
    assert state(iw.base.acme.pk) == before


def test_a_dry_run_move_with_a_stale_if_match_is_a_412(iw: ImpactWorld, api_as: Any) -> None:
    before = state(iw.base.acme.pk)
    response = api_as(iw.base.tenant_admin).post(
        move_url(iw.depot), {"parent": str(iw.berlin.pk)}, format="json", HTTP_IF_MATCH=f'"{iw.depot.version - 1}"'
    )
    assert response.status_code == 412
    assert state(iw.base.acme.pk) == before
    fresh = api_as(iw.base.tenant_admin).post(
        move_url(iw.depot), {"parent": str(iw.berlin.pk)}, format="json", HTTP_IF_MATCH=f'"{iw.depot.version}"'
    )
    assert fresh.status_code == 200 and fresh.json()["sections"]


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_a_bad_dry_run_value_is_a_400_and_nothing_moves(iw: ImpactWorld, api_as: Any, value: str) -> None:
    before = state(iw.base.acme.pk)
    response = api_as(iw.base.tenant_admin).post(move_url(iw.depot, value), {"parent": str(iw.berlin.pk)})
    assert response.status_code == 400 and response.json()["dry_run"] == ["Must be a valid boolean."], response.json()
    assert state(iw.base.acme.pk) == before
    patched = api_as(iw.base.tenant_admin).patch(
        org_url(iw.base.logistics, value), {"access_inheritance": "none"}, format="json"
    )
    assert patched.status_code == 400
    assert state(iw.base.acme.pk) == before


def test_a_dry_run_move_of_another_tenants_org_is_a_404(iw: ImpactWorld, api_as: Any) -> None:
    response = api_as(iw.base.tenant_admin).post(
        move_url(iw.base.globex_root), {"parent": str(iw.berlin.pk)}, format="json"
    )
    assert response.status_code == 404


# -- API: inheritance ----------------------------------------------------------------------------------------------


def test_a_dry_run_inheritance_change_answers_the_impact(iw: ImpactWorld, api_as: Any) -> None:
    before = state(iw.base.acme.pk)
    response = api_as(iw.base.tenant_admin).patch(
        org_url(iw.base.logistics), {"access_inheritance": "none"}, format="json"
    )
    assert response.status_code == 200, response.content
    found = sections(response.json())
    assert [e["details"]["user"]["username"] for e in found["capabilities"]] == ["gus"]
    assert found["capabilities"][0]["details"]["org_count"] == 3  # Logistics, Depot, Bay (Vault is cut already)
    assert state(iw.base.acme.pk) == before


def test_the_inheritance_change_itself_records_the_summary_and_a_rename_does_not_preview(
    iw: ImpactWorld, api_as: Any
) -> None:
    client = api_as(iw.base.tenant_admin)
    response = client.patch(org_url(iw.base.logistics, None), {"access_inheritance": "none"}, format="json")
    assert response.status_code == 200 and response.json()["access_inheritance"] == "none"
    event = AuditEvent.objects.filter(action="org.update", target_id=str(iw.base.logistics.pk)).latest("created_at")
    assert event.changes["impact"]["capabilities"]["counts"] == {"loses": 1}
    renamed = client.patch(org_url(iw.base.logistics, None), {"name": "Freight"}, format="json")
    assert renamed.status_code == 200
    event = AuditEvent.objects.filter(action="org.update", target_id=str(iw.base.logistics.pk)).latest("created_at")
    assert event.changes == {"name": ["Logistics", "Freight"]}


def test_a_dry_run_inheritance_change_is_refused_as_the_change(iw: ImpactWorld, api_as: Any) -> None:
    before = state(iw.base.acme.pk)
    eve = api_as(iw.users["eve"]).patch(org_url(iw.depot), {"access_inheritance": "none"}, format="json")
    assert eve.status_code == 403
    dora = api_as(iw.users["dora"]).patch(org_url(iw.vault), {"access_inheritance": "all"}, format="json")
    assert dora.status_code == 404
    root = api_as(iw.base.tenant_admin).patch(org_url(iw.base.root), {"access_inheritance": "none"}, format="json")
    assert root.status_code == 409
    bad = api_as(iw.base.tenant_admin).patch(org_url(iw.depot), {"access_inheritance": "some"}, format="json")
    assert bad.status_code == 400
    assert state(iw.base.acme.pk) == before


# -- console -------------------------------------------------------------------------------------------------------


def test_the_console_move_shows_the_preview_then_moves_on_confirmation(iw: ImpactWorld, as_user: Any) -> None:
    client = as_user(iw.base.tenant_admin)
    page = f"/o/{iw.depot.pk}/move/"
    before = state(iw.base.acme.pk)
    preview = client.post(page, {"parent": str(iw.berlin.pk), "version": iw.depot.version})
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "Move Depot under Berlin?" in html and "What this change does" in html
    assert "eve loses" in html and "is shadowed by the lock from Europe" in html and "could not be placed" in html
    assert 'name="confirmed" value="1"' in html
    assert state(iw.base.acme.pk) == before
    done = client.post(page, {"parent": str(iw.berlin.pk), "version": iw.depot.version, "confirmed": "1"})
    assert done.status_code == 302
    assert Organization.objects.get(pk=iw.depot.pk).parent_id == iw.berlin.pk
    event = AuditEvent.objects.get(action="org.move", target_id=str(iw.depot.pk))
    assert event.changes["impact"]["capabilities"]["counts"] == {"loses": 1}


def test_the_console_move_is_denied_before_any_preview(iw: ImpactWorld, as_user: Any) -> None:
    before = state(iw.base.acme.pk)
    frank = as_user(iw.users["frank"]).post(f"/o/{iw.vault.pk}/move/", {"parent": str(iw.berlin.pk)})
    assert frank.status_code == 403 and "What this change does" not in frank.content.decode()
    dora = as_user(iw.users["dora"]).post(f"/o/{iw.depot.pk}/move/", {"parent": str(iw.berlin.pk)})
    assert dora.status_code == 404
    assert state(iw.base.acme.pk) == before


def test_the_console_edit_previews_an_inheritance_change_only(iw: ImpactWorld, as_user: Any) -> None:
    client = as_user(iw.base.tenant_admin)
    logistics = iw.base.logistics
    page = f"/o/{logistics.pk}/edit/"
    fields = {"name": "Logistics", "description": "", "access_inheritance": "none", "version": logistics.version}
    preview = client.post(page, fields)
    html = preview.content.decode()
    assert preview.status_code == 200 and "What this change does" in html and "gus loses" in html
    assert Organization.objects.get(pk=logistics.pk).access_inheritance == "all"
    done = client.post(page, {**fields, "confirmed": "1"})
    assert done.status_code == 302
    logistics.refresh_from_db()
    assert logistics.access_inheritance == "none"
    event = AuditEvent.objects.filter(action="org.update", target_id=str(logistics.pk)).latest("created_at")
    assert event.changes["impact"]["capabilities"]["counts"] == {"loses": 1}
    renamed = client.post(page, {**fields, "name": "Freight", "version": logistics.version})
    assert renamed.status_code == 302  # a rename goes straight through
    assert Organization.objects.get(pk=logistics.pk).name == "Freight"


def test_the_console_edit_preview_is_denied_to_a_guest(iw: ImpactWorld, as_user: Any) -> None:
    before = state(iw.base.acme.pk)
    response = as_user(iw.users["eve"]).post(f"/o/{iw.depot.pk}/edit/", {"name": "Depot", "access_inheritance": "none"})
    assert response.status_code == 403
    assert state(iw.base.acme.pk) == before


# -- admin ---------------------------------------------------------------------------------------------------------


def test_the_admin_moves_and_cuts_with_the_summary_in_the_audit(iw: ImpactWorld, client: Any) -> None:
    client.force_login(iw.base.tenant_admin)
    depot = iw.depot
    response = client.post(
        f"/admin/orgs/organization/{depot.pk}/change/",
        {"parent": str(iw.berlin.pk), "name": "Depot", "description": "", "access_inheritance": "admins_only",
         "version": depot.version},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    depot.refresh_from_db()
    assert depot.parent_id == iw.berlin.pk and depot.access_inheritance == "admins_only"
    update = AuditEvent.objects.get(action="org.update", target_id=str(depot.pk))
    assert "impact" in update.changes and update.changes["access_inheritance"] == ["all", "admins_only"]
    move = AuditEvent.objects.get(action="org.move", target_id=str(depot.pk))
    assert move.changes["impact"]["change"] == "Move Depot under Berlin"
    assert Scope(root=depot).subtree()[0].pk == depot.pk


def test_admin_drag_and_drop_records_the_summary(iw: ImpactWorld, client: Any) -> None:
    client.force_login(iw.base.tenant_admin)
    response = client.post(
        "/admin/orgs/organization/",
        {"cmd": "move_node", "cut_item": str(iw.depot.pk), "pasted_on": str(iw.berlin.pk), "position": "last-child"},
    )
    assert response.content == b"OK, moved."
    move = AuditEvent.objects.get(action="org.move", target_id=str(iw.depot.pk))
    assert move.changes["impact"]["runs"]["counts"] == {"displaced": 1, "unplaceable": 1}
