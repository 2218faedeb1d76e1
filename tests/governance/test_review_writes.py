"""Attesting and revoking from the access review (governance.review.service), and the attacks on them: each attack
is the attacker's request, then the victim's state read back."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from access.models import AuditEvent, OrgTeamGrant, OrgUserGrant, ProjectUserGrant, TenantMembership
from access.services.custom_roles import create_role
from access.services.grants import grant_role
from config.errors import Forbidden
from governance.models import Attestation
from governance.review import service
from tests.governance.review_world import ReviewWorld, build_review_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def rw(world: Any) -> ReviewWorld:
    return build_review_world(world)


def _ids(rw: ReviewWorld, *names: str) -> list[str]:
    return [str(rw.grants[name].pk) for name in names]


def _state() -> tuple[int, int, int, int]:
    return (
        Attestation.objects.count(),
        OrgUserGrant.objects.count() + OrgTeamGrant.objects.count() + ProjectUserGrant.objects.count(),
        TenantMembership.objects.filter(is_admin=True).count(),
        AuditEvent.objects.count(),
    )


def test_attesting_records_an_attestation_and_an_audit_event_each(rw: ReviewWorld) -> None:
    outcome = service.attest(actor=rw.marta, org=rw.world.marketing, grant_ids=_ids(rw, "ivan", "ops", "pete"),
                             note="Q4 review")  # fmt: skip
    assert outcome.done == _ids(rw, "ivan", "ops", "pete") and outcome.refused == []
    attestation = Attestation.objects.get(grant_id=str(rw.grants["ops"].pk))
    assert (attestation.grant_kind, attestation.holder_name) == ("org_team", "team:Ops")
    assert attestation.role_key == "integrator"
    assert attestation.attested_by == rw.marta and attestation.note == "Q4 review"
    assert attestation.org == rw.world.emea and attestation.tenant == rw.world.acme
    events = AuditEvent.objects.filter(action="grant.attest").order_by("created_at")
    assert [e.target_id for e in events] == _ids(rw, "ivan", "ops", "pete")
    assert events[0].actor == rw.marta and events[0].changes["note"] == "Q4 review"
    assert events[0].changes["holder"] == "ivan" and events[0].org == rw.world.marketing
    review = service.review(rw.world.emea, viewer=rw.marta)
    dana = next(row for row in review.rows if row.user == rw.dana)
    assert dana.attested_by == "marta" and dana.attested_at == attestation.attested_at


def test_revoking_removes_the_grants_through_the_grant_services(rw: ReviewWorld) -> None:
    outcome = service.revoke(actor=rw.marta, org=rw.world.marketing, grant_ids=_ids(rw, "ivan", "pete", "ops"))
    assert sorted(outcome.done) == sorted(_ids(rw, "ivan", "pete", "ops")) and outcome.refused == []
    assert not OrgUserGrant.objects.filter(pk=rw.grants["ivan"].pk).exists()
    assert not ProjectUserGrant.objects.filter(pk=rw.grants["pete"].pk).exists()
    assert not OrgTeamGrant.objects.filter(pk=rw.grants["ops"].pk).exists()
    events = AuditEvent.objects.filter(action="grant.delete")
    assert {e.target_id for e in events} == set(_ids(rw, "ivan", "pete", "ops"))
    assert all(e.changes["via"] == "access review" and e.actor == rw.marta for e in events)


def test_an_integrator_can_neither_attest_nor_revoke_and_nothing_changes(rw: ReviewWorld) -> None:
    before = _state()
    for act in (service.attest, service.revoke):
        with pytest.raises(Forbidden) as refused:
            act(actor=rw.ivan, org=rw.world.marketing, grant_ids=_ids(rw, "marta", "emil", "greta"))
        assert refused.value.code == "grants_refused"
        assert {r["code"] for r in refused.value.outcome.refused} == {"permission_denied"}
    assert _state() == before
    assert OrgUserGrant.objects.filter(pk__in=_ids(rw, "marta", "emil", "greta")).count() == 3


def test_a_reviewer_below_cannot_act_on_grants_above_them_partial_outcome(rw: ReviewWorld) -> None:
    # emil is Admin of EMEA: he may act on greta's grant there, not on marta's (made on Marketing, above him).
    outcome = service.revoke(actor=rw.emil, org=rw.world.emea, grant_ids=_ids(rw, "greta", "marta"))
    assert outcome.done == _ids(rw, "greta")
    assert [r["grant"] for r in outcome.refused] == _ids(rw, "marta")
    assert outcome.refused[0]["code"] in ("permission_denied", "not_found")
    assert OrgUserGrant.objects.filter(pk=rw.grants["marta"].pk).exists()
    assert not OrgUserGrant.objects.filter(pk=rw.grants["greta"].pk).exists()


def test_no_escalation_a_custom_role_without_member_manage_scope(rw: ReviewWorld) -> None:
    # A manager whose role lacks credential.* cannot attest or revoke an integrator's grant (the delegation rule).
    capabilities = ["org.view", "member.view", "member.manage", "project.view", "task.view"]
    role = create_role(
        actor=rw.alice, org=rw.world.marketing, key="people-manager", name="People manager", capabilities=capabilities
    )
    grant_role(actor=rw.alice, target=rw.world.emea, role=role, user=rw.lou)
    before = _state()
    for act in (service.attest, service.revoke):
        with pytest.raises(Forbidden):
            act(actor=rw.lou, org=rw.world.emea, grant_ids=_ids(rw, "emil"))
    assert _state() == before


def test_grant_ids_of_another_tenant_are_not_found_and_nothing_changes(rw: ReviewWorld) -> None:
    before = _state()
    for act in (service.attest, service.revoke):
        with pytest.raises(service.GrantsNotFound) as missing:
            act(actor=rw.marta, org=rw.world.marketing, grant_ids=_ids(rw, "ivan", "gus"))
        assert missing.value.code == "grants_not_found" and missing.value.missing == _ids(rw, "gus")
    # The Globex administrator cannot reach Acme's grants through her own org either.
    with pytest.raises(service.GrantsNotFound):
        service.revoke(actor=rw.world.other_admin, org=rw.world.globex_root, grant_ids=_ids(rw, "ivan"))
    assert _state() == before
    assert OrgUserGrant.objects.filter(pk=rw.grants["gus"].pk).exists()


def test_grants_outside_the_orgs_scope_are_not_found(rw: ReviewWorld) -> None:
    # lou's grant is on Logistics: not in Marketing's review, whoever asks.
    before = _state()
    with pytest.raises(service.GrantsNotFound):
        service.revoke(actor=rw.alice, org=rw.world.marketing, grant_ids=_ids(rw, "lou"))
    assert _state() == before


def test_revoking_the_last_tenant_administrator_is_refused(rw: ReviewWorld) -> None:
    before = _state()
    with pytest.raises(Forbidden) as refused:
        service.revoke(actor=rw.alice, org=rw.world.root, grant_ids=[str(rw.alice.pk)])
    assert refused.value.outcome.refused[0]["code"] == "last_tenant_admin"
    assert _state() == before
    assert TenantMembership.objects.get(user=rw.alice, tenant=rw.world.acme).is_admin


def test_a_tenant_administrator_row_needs_tenant_admin(rw: ReviewWorld) -> None:
    before = _state()
    with pytest.raises(Forbidden):
        service.revoke(actor=rw.marta, org=rw.world.marketing, grant_ids=[str(rw.alice.pk)])
    with pytest.raises(Forbidden):
        service.attest(actor=rw.marta, org=rw.world.marketing, grant_ids=[str(rw.alice.pk)])
    assert _state() == before
    outcome = service.attest(actor=rw.alice, org=rw.world.root, grant_ids=[str(rw.alice.pk)])
    assert outcome.done == [str(rw.alice.pk)]
    assert Attestation.objects.get().grant_kind == "tenant_admin"


@pytest.mark.parametrize(
    "grants", [[], "not a list", ["nope"], [1234], [f"00000000-0000-4000-8000-{n:012d}" for n in range(501)]]
)
def test_bad_input_is_a_field_error_and_changes_nothing(rw: ReviewWorld, grants: Any) -> None:
    before = _state()
    with pytest.raises(ValidationError) as bad:
        service.revoke(actor=rw.marta, org=rw.world.marketing, grant_ids=grants)
    assert "grants" in bad.value.message_dict
    with pytest.raises(ValidationError) as note:
        service.attest(actor=rw.marta, org=rw.world.marketing, grant_ids=_ids(rw, "ivan"), note="x" * 1001)
    assert "note" in note.value.message_dict
    assert _state() == before


def test_a_grant_cut_off_above_is_not_in_the_review_below_the_cut(rw: ReviewWorld) -> None:
    # ivan's Integrator grant on Marketing does not reach Campaigns (admins_only): Campaigns' review cannot name it.
    before = _state()
    with pytest.raises(service.GrantsNotFound):
        service.attest(actor=rw.alice, org=rw.world.campaigns, grant_ids=_ids(rw, "ivan"))
    assert _state() == before
    assert service.attest(actor=rw.alice, org=rw.world.campaigns, grant_ids=_ids(rw, "marta")).done == _ids(rw, "marta")
