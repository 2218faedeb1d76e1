"""A reviewer attests or revokes what they read, not what a grant became meanwhile (the attack: between the review
page and the reviewer's tick, someone raises greta's Guest grant to Admin; attesting the ticked row must not
attest an Admin role nobody reviewed, and revoking it must not remove a grant someone just changed). The review's
rows carry their grant's version; ``<id>@<version>`` refuses a grant changed since, on its own, with ``stale``."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from access.models import AuditEvent, OrgUserGrant
from access.services.grants import change_grant
from access.services.tokens import issue_token
from config.errors import Forbidden
from governance.models import Attestation
from governance.review import service
from tests.governance.review_world import ReviewWorld, build_review_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def rw(world: Any) -> ReviewWorld:
    return build_review_world(world)


def _read(rw: ReviewWorld, name: str) -> str:
    """The reference the review page gives the reviewer for ``name``'s grant: its id and the version read."""
    grant = rw.grants[name]
    row = next(r for r in service.review(rw.world.emea, viewer=rw.marta).rows if r.grant_id == str(grant.pk))
    assert row.version == OrgUserGrant.objects.get(pk=grant.pk).version
    return f"{grant.pk}@{row.version}"


def _raise_greta(rw: ReviewWorld) -> OrgUserGrant:
    """Meanwhile, the tenant administrator makes greta an Admin of EMEA."""
    grant = change_grant(actor=rw.alice, grant=rw.grants["greta"], role="admin")
    assert grant.role.key == "admin"
    return grant


def test_attesting_a_grant_changed_since_it_was_read_is_refused_and_attests_nothing(rw: ReviewWorld) -> None:
    read = _read(rw, "greta")
    _raise_greta(rw)
    before = (Attestation.objects.count(), AuditEvent.objects.filter(action="grant.attest").count())
    with pytest.raises(Forbidden) as refused:
        service.attest(actor=rw.marta, org=rw.world.emea, grant_ids=[read], note="looked at it")
    [refusal] = refused.value.outcome.refused
    assert refusal["code"] == "stale" and refusal["grant"] == str(rw.grants["greta"].pk)
    assert (Attestation.objects.count(), AuditEvent.objects.filter(action="grant.attest").count()) == before

    # Read again, the Admin role is what gets attested; an unversioned id attests the role in force, never the old.
    again = _read(rw, "greta")
    assert service.attest(actor=rw.marta, org=rw.world.emea, grant_ids=[again]).done == [again.split("@")[0]]
    assert Attestation.objects.get(grant_id=str(rw.grants["greta"].pk)).role_key == "admin"


def test_an_unversioned_attestation_records_the_role_in_force(rw: ReviewWorld) -> None:
    stale_row = rw.grants["greta"]  # loaded before the change, as a slow request would hold it
    _raise_greta(rw)
    service.attest(actor=rw.marta, org=rw.world.emea, grant_ids=[str(stale_row.pk)])
    assert Attestation.objects.get().role_key == "admin"


def test_revoking_a_grant_changed_since_it_was_read_is_refused_and_keeps_it(rw: ReviewWorld) -> None:
    read = [_read(rw, "greta"), _read(rw, "emil")]
    _raise_greta(rw)
    outcome = service.revoke(actor=rw.marta, org=rw.world.emea, grant_ids=read)
    assert outcome.done == [str(rw.grants["emil"].pk)]
    assert [(r["grant"], r["code"]) for r in outcome.refused] == [(str(rw.grants["greta"].pk), "stale")]
    kept = OrgUserGrant.objects.get(pk=rw.grants["greta"].pk)
    assert kept.role.key == "admin" and not OrgUserGrant.objects.filter(pk=rw.grants["emil"].pk).exists()


def test_a_malformed_reference_is_a_clear_error_and_nothing_is_done(rw: ReviewWorld) -> None:
    grant = rw.grants["greta"]
    for bad in (f"{grant.pk}@x", f"{grant.pk}@-1", f"{grant.pk}@1@2", f"{grant.pk}@9999999999"):
        with pytest.raises(ValidationError) as error:
            service.attest(actor=rw.marta, org=rw.world.emea, grant_ids=[bad])
        assert error.value.message_dict["grants"] == [f"“{bad}” is not a grant id."]
    assert not Attestation.objects.exists()
    assert service.clean_ids([f"{grant.pk}@007", str(grant.pk).upper()]) == [f"{grant.pk}@7", str(grant.pk)]


def test_the_console_ticks_carry_the_version_and_a_stale_tick_is_refused(rw: ReviewWorld, client: Any) -> None:
    client.force_login(rw.marta)
    page = client.get(f"/o/{rw.world.emea.pk}/review/").content.decode()
    read = _read(rw, "greta")
    assert f'name="grants" value="{read}"' in page
    _raise_greta(rw)
    answer = client.post(f"/o/{rw.world.emea.pk}/review/", {"action": "attest", "grants": [read], "note": ""})
    html = answer.content.decode()
    assert answer.status_code == 403 and "This was changed by alice" in html and "after you loaded it" in html
    assert not Attestation.objects.exists()


def test_the_api_rows_carry_the_version_and_a_stale_reference_is_refused(rw: ReviewWorld) -> None:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user=rw.marta)[1]}")
    rows = api.get(f"/api/v1/orgs/{rw.world.emea.pk}/review").json()["results"]
    greta = next(r for r in rows if r["grant"] == str(rw.grants["greta"].pk))
    read = f"{greta['grant']}@{greta['version']}"
    _raise_greta(rw)
    answer = api.post(f"/api/v1/orgs/{rw.world.emea.pk}/review/revoke", {"grants": [read]}, format="json")
    assert answer.status_code == 403 and answer.json()["code"] == "grants_refused"
    assert answer.json()["refused"][0]["code"] == "stale"
    assert OrgUserGrant.objects.filter(pk=rw.grants["greta"].pk).exists()
    bad = api.post(f"/api/v1/orgs/{rw.world.emea.pk}/review/attest", {"grants": [f"{greta['grant']}@x"]},
                   format="json")  # fmt: skip
    assert bad.status_code == 400 and not Attestation.objects.exists()
