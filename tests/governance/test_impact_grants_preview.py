"""Previews of a grant's removal, role change and expiry (governance/impact/access_changes.py), checked against the
change itself (the oracle: preview, then make the change for real with engine.observe: the same sections)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access.models import AuditEvent, OrgTeamGrant, OrgUserGrant, ProjectUserGrant
from access.services.grants import change_grant, grant_role, revoke_grant
from config.actors import SYSTEM
from config.errors import Forbidden, NotFound
from governance.impact import access_changes
from governance.impact.access_changes import (
    apply_change,
    apply_removal,
    grant_parts,
    grant_scope,
    preview_change,
    preview_removal,
)
from governance.impact.engine import observe
from tests.factories import UserFactory, add_to_tenant, make_chain, make_org
from tests.governance.impact_grants_world import GrantWorld, build, texts

pytestmark = pytest.mark.django_db


@pytest.fixture
def g(world: Any) -> GrantWorld:
    return build(world)


def _sections(impact: Any) -> list[dict[str, Any]]:
    return impact.as_dict()["sections"]


def _oracle(preview: Any, change: Any, grant: Any) -> Any:
    """The real change, observed with the same scope and parts as the preview: its sections must equal the preview's."""
    scope = grant_scope(grant)
    _, observed = observe(change, scope, describe=preview.change, parts=grant_parts())
    assert _sections(observed) == _sections(preview)
    return observed


def test_removing_a_direct_grant_matches_the_removal(world: Any, g: GrantWorld) -> None:
    impact = preview_removal(actor=world.tenant_admin, grant=g.dora_grant)
    assert OrgUserGrant.objects.filter(pk=g.dora_grant.pk).exists()  # nothing removed
    lines = texts(impact)
    assert len(lines) == 1 and lines[0].startswith("dora loses") and "Marketing and 2 other organizations" in lines[0]
    assert impact.change == "Remove dora's role Integrator on Marketing"
    _oracle(impact, lambda: revoke_grant(actor=world.tenant_admin, grant=g.dora_grant), g.dora_grant)
    assert not OrgUserGrant.objects.filter(pk=g.dora_grant.pk).exists()


def test_removing_a_team_grant_costs_every_member(world: Any, g: GrantWorld) -> None:
    impact = preview_removal(actor=world.tenant_admin, grant=g.ops_grant)
    lines = texts(impact)
    assert [line.split(" ")[0] for line in lines] == ["erin", "finn"], lines
    assert all("loses" in line and "Logistics" in line for line in lines)
    assert OrgTeamGrant.objects.filter(pk=g.ops_grant.pk).exists()
    _oracle(impact, lambda: revoke_grant(actor=world.tenant_admin, grant=g.ops_grant), g.ops_grant)


def test_removing_a_project_grant_names_the_project(world: Any, g: GrantWorld) -> None:
    impact = preview_removal(actor=world.tenant_admin, grant=g.gus_grant)
    lines = texts(impact)
    assert len(lines) == 1 and lines[0].startswith("gus loses") and "project Website" in lines[0], lines
    entry = impact.section("capabilities").entries[0]
    assert entry.data["project"]["name"] == "Website" and "task.run" in entry.data["lost"]
    assert ProjectUserGrant.objects.filter(pk=g.gus_grant.pk).exists()
    _oracle(impact, lambda: revoke_grant(actor=world.tenant_admin, grant=g.gus_grant), g.gus_grant)


def test_a_role_downgrade_matches_the_change(world: Any, g: GrantWorld) -> None:
    impact = preview_change(actor=world.tenant_admin, grant=g.dora_grant, role="guest")
    assert OrgUserGrant.objects.get(pk=g.dora_grant.pk).role.key == "integrator"
    lines = texts(impact)
    assert len(lines) == 1 and lines[0].startswith("dora loses") and "Run" not in lines[0].split("loses")[0]
    assert impact.change == "Change dora's role on Marketing from Integrator to Guest"
    observed = _oracle(
        impact, lambda: change_grant(actor=world.tenant_admin, grant=g.dora_grant, role="guest"), g.dora_grant
    )
    assert observed.section("capabilities").entries[0].data["gained"] == []


def test_an_expiry_is_previewed_as_the_grant_ended_on_its_date(world: Any, g: GrantWorld) -> None:
    ends = timezone.now() + timedelta(days=7)
    impact = preview_change(actor=world.tenant_admin, grant=g.dora_grant, expires_at=ends)
    assert OrgUserGrant.objects.get(pk=g.dora_grant.pk).expires_at is None  # nothing written
    assert impact.change.startswith("End dora's role Integrator on Marketing on ") and impact.change.endswith(" UTC")
    assert texts(impact)[0].startswith("dora loses")
    # The oracle: the expiry set for real, then the clock past its date.
    later = mock.patch("django.utils.timezone.now", return_value=ends + timedelta(seconds=1))

    def expire() -> Any:
        grant = change_grant(actor=world.tenant_admin, grant=g.dora_grant, expires_at=ends)
        later.start()
        return grant

    try:
        _oracle(impact, expire, g.dora_grant)
    finally:
        later.stop()
    # Removing the grant outright does the same, now.
    assert _sections(preview_removal(actor=world.tenant_admin, grant=g.dora_grant)) == _sections(impact)


def test_a_past_expiry_is_refused_by_its_preview(world: Any, g: GrantWorld) -> None:
    with pytest.raises(ValidationError) as refused:
        preview_change(actor=world.tenant_admin, grant=g.dora_grant, expires_at=timezone.now() - timedelta(hours=1))
    assert "expires_at" in refused.value.message_dict
    assert OrgUserGrant.objects.get(pk=g.dora_grant.pk).expires_at is None


def test_clearing_an_expiry_changes_nothing_now(world: Any, g: GrantWorld) -> None:
    change_grant(actor=SYSTEM, grant=g.dora_grant, expires_at=timezone.now() + timedelta(days=1))
    impact = preview_change(actor=world.tenant_admin, grant=g.dora_grant, expires_at=None)
    assert impact.empty and "without an expiry" in impact.change


def test_a_preview_is_refused_like_the_change(world: Any, g: GrantWorld) -> None:
    # dora (an Integrator) may see Marketing's members but not manage them; Logistics she cannot see at all.
    with pytest.raises(Forbidden):
        preview_removal(actor=g.dora, grant=g.hank_grant)
    with pytest.raises(NotFound):
        preview_removal(actor=g.dora, grant=g.ops_grant)
    # hank (Admin on Marketing) may not remove what he holds nowhere: nothing on Logistics.
    with pytest.raises(NotFound):
        preview_change(actor=g.hank, grant=g.ops_grant, role="admin")
    assert OrgUserGrant.objects.filter(pk=g.hank_grant.pk).exists() and OrgTeamGrant.objects.filter(pk=g.ops_grant.pk)


def test_applying_records_the_summary_in_the_audit_event(world: Any, g: GrantWorld) -> None:
    impact = apply_removal(actor=world.tenant_admin, grant=g.dora_grant)
    event = AuditEvent.objects.get(action="grant.delete", target_id=str(g.dora_grant.pk))
    assert event.changes["impact"]["change"] == impact.change
    assert event.changes["impact"]["capabilities"]["counts"] == {"loses": 1}
    assert event.changes["role"] == "integrator"  # the service's own fields kept

    apply_change(actor=world.tenant_admin, grant=g.ops_grant, role="integrator")
    event = AuditEvent.objects.get(action="grant.update", target_id=str(g.ops_grant.pk))
    assert event.changes["impact"]["capabilities"]["counts"] == {"gains": 2}
    assert event.changes["role"] == ["guest", "integrator"]

    ends = timezone.now() + timedelta(days=3)
    grant, expiring = apply_change(actor=world.tenant_admin, grant=g.gus_grant, expires_at=ends)
    assert grant.expires_at == ends and not expiring.empty
    event = AuditEvent.objects.filter(action="grant.update", target_id=str(g.gus_grant.pk)).get()
    assert event.changes["impact"]["change"].startswith("End gus's role Integrator on the project Website on ")
    assert event.changes["impact"]["capabilities"]["counts"] == {"loses": 1}


def test_a_removal_preview_costs_the_same_queries_whatever_the_subtree(world: Any, g: GrantWorld) -> None:
    def cost() -> int:
        grant = OrgUserGrant.objects.select_related("content_object", "role").get(pk=g.dora_grant.pk)
        with CaptureQueriesContext(connection) as queries:
            preview_removal(actor=world.tenant_admin, grant=grant)
        return len(queries)

    cost()  # caches warmed (content types)
    small = cost()
    for i in range(3):
        make_chain(make_org(world.campaigns, f"Region {i}"), 4, prefix=f"r{i}")
    assert cost() == small
    # One more person whose grants reach the subtree costs a bounded few queries more, never one per org.
    other = UserFactory(username="ivy")
    add_to_tenant(other, world.acme)
    grant_role(actor=SYSTEM, target=world.root, role="guest", user=other)
    assert cost() <= small + 3


def test_the_describe_words_of_a_role_and_expiry_together(world: Any, g: GrantWorld) -> None:
    ends = timezone.now() + timedelta(days=2)
    words = access_changes._describe(g.dora_grant, "guest", ends)
    assert words.startswith("Change dora's role on Marketing from Integrator to Guest and end it on ")
