"""The impact engine (governance/impact/engine.py): a preview changes nothing and reports what the change does."""

from __future__ import annotations

from typing import Any

import pytest

from access.models import AuditEvent, OrgUserGrant
from access.services.grants import grant_role
from config.errors import NotFound
from governance.impact.engine import CapabilityPart, Scope, apply, preview
from orgs import services
from orgs.models import Organization
from tests.factories import UserFactory, add_to_tenant, make_org

pytestmark = pytest.mark.django_db


@pytest.fixture
def moved(world: Any) -> dict[str, Any]:
    """dora is an Integrator in Marketing; Logistics has a child Depot; moving Depot under EMEA gives her Depot."""
    dora = UserFactory(username="dora")
    add_to_tenant(dora, world.acme)
    grant_role(actor=world.tenant_admin, user=dora, role="integrator", target=world.marketing)
    eve = UserFactory(username="eve")
    add_to_tenant(eve, world.acme)
    grant_role(actor=world.tenant_admin, user=eve, role="guest", target=world.logistics)
    depot = make_org(world.logistics, "Depot")
    make_org(depot, "Bay")
    return {"dora": dora, "eve": eve, "depot": depot}


def _move(world: Any, depot: Organization) -> Any:
    return lambda: services.move_org(actor=world.tenant_admin, org=depot, parent=world.emea)


def test_a_preview_changes_nothing_and_matches_the_change(world: Any, moved: dict[str, Any]) -> None:
    depot = moved["depot"]
    scope = Scope(root=depot)
    impact = preview(_move(world, depot), scope, describe="move", parts=[CapabilityPart()])
    depot.refresh_from_db()
    assert depot.parent_id == world.logistics.pk  # rolled back

    texts = [e.text for e in impact.section("capabilities").entries]
    assert any(t.startswith("dora gains") and "Depot and Bay" in t for t in texts), texts
    assert any(t.startswith("eve loses") for t in texts), texts

    _, applied = apply(
        _move(world, depot), Scope(root=depot), describe="move", parts=[CapabilityPart()], action="org.move"
    )
    assert applied.as_dict() == impact.as_dict()
    depot.refresh_from_db()
    assert depot.parent_id == world.emea.pk
    event = AuditEvent.objects.get(action="org.move", target_id=str(depot.pk))
    assert event.changes["impact"]["capabilities"]["counts"] == {"gains": 1, "loses": 1}
    assert event.changes["impact"]["change"] == "move"


def test_a_refused_change_is_refused_by_its_preview(world: Any, moved: dict[str, Any]) -> None:
    with pytest.raises(NotFound):
        preview(
            lambda: services.move_org(actor=moved["dora"], org=moved["depot"], parent=world.emea),
            Scope(root=moved["depot"]),
            describe="move",
            parts=[CapabilityPart()],
        )
    assert OrgUserGrant.objects.filter(user=moved["dora"]).count() == 1
