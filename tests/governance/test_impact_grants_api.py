"""``dry_run=true`` on DELETE and PATCH /members/{id} and PUT /orgs/{id}/settings/{key}: the Impact, refused as the
change itself would be, nothing written; the attacker's requests, then the victim's state read back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from access.models import AuditEvent, OrgTeamGrant, OrgUserGrant, ProjectUserGrant
from config.actors import SYSTEM
from resources import services
from resources.models import OrgSetting
from tests.governance.impact_grants_world import GrantWorld, build

pytestmark = pytest.mark.django_db


@pytest.fixture
def g(world: Any) -> GrantWorld:
    return build(world)


def _grants() -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for model in (OrgUserGrant, OrgTeamGrant, ProjectUserGrant):
        rows += model.objects.order_by("pk").values_list("pk", "role_id", "expires_at", "version")
    return rows


def _member(grant: Any) -> str:
    return f"/api/v1/members/{grant.pk}"


def _soon() -> str:
    return (timezone.now() + timedelta(days=5)).isoformat()


# -- allowed ---------------------------------------------------------------------------------------------------------


def test_a_dry_run_removal_answers_the_impact_and_removes_nothing(world: Any, g: GrantWorld, api_as: Any) -> None:
    before, events = _grants(), AuditEvent.objects.count()
    response = api_as(world.tenant_admin).delete(_member(g.ops_grant) + "?dry_run=true")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["change"] == "Remove the team Ops's role Guest on Logistics" and body["empty"] is False
    lines = body["sections"][0]["entries"]
    assert [line["details"]["user"]["username"] for line in lines] == ["erin", "finn"]
    assert all(line["kind"] == "loses" and line["details"]["orgs"][0]["name"] == "Logistics" for line in lines)
    assert _grants() == before and AuditEvent.objects.count() == events


def test_the_removal_itself_records_the_summary(world: Any, g: GrantWorld, api_as: Any) -> None:
    response = api_as(world.tenant_admin).delete(_member(g.dora_grant))
    assert response.status_code == 204
    event = AuditEvent.objects.get(action="grant.delete", target_id=str(g.dora_grant.pk))
    assert event.changes["impact"]["capabilities"]["counts"] == {"loses": 1}


def test_a_dry_run_role_change_and_expiry(world: Any, g: GrantWorld, api_as: Any) -> None:
    client, before = api_as(world.tenant_admin), _grants()
    role = client.patch(_member(g.dora_grant) + "?dry_run=1", {"role": "guest"}, format="json")
    assert role.status_code == 200 and role.json()["sections"][0]["entries"][0]["kind"] == "loses"
    ending = client.patch(_member(g.gus_grant) + "?dry_run=yes", {"expires_at": _soon()}, format="json")
    assert ending.status_code == 200
    assert ending.json()["change"].startswith("End gus's role Integrator on the project Website on ")
    assert ending.json()["sections"][0]["entries"][0]["details"]["project"]["name"] == "Website"
    assert _grants() == before
    done = client.patch(_member(g.gus_grant), {"expires_at": _soon()}, format="json")
    assert done.status_code == 200 and done.json()["expires_at"] is not None
    event = AuditEvent.objects.get(action="grant.update", target_id=str(g.gus_grant.pk))
    assert event.changes["impact"]["capabilities"]["counts"] == {"loses": 1}


def test_a_dry_run_lock(world: Any, api_as: Any) -> None:
    url = f"/api/v1/orgs/{world.marketing.pk}/settings/allow_task_sharing"
    response = api_as(world.tenant_admin).put(url + "?dry_run=true", {"value": False, "locked": True}, format="json")
    assert response.status_code == 200, response.content
    kinds = [e["kind"] for s in response.json()["sections"] for e in s["entries"]]
    assert kinds == ["changes", "locked"]
    assert not OrgSetting.objects.exists()
    done = api_as(world.tenant_admin).put(url, {"value": False, "locked": True}, format="json")
    assert done.status_code == 200 and done.json()["locked"] is True
    assert AuditEvent.objects.get(action="setting.set").changes["impact"]["settings"]["counts"] == {
        "changes": 1,
        "locked": 1,
    }


# -- refused as the change is ----------------------------------------------------------------------------------------


def test_a_bad_dry_run_is_a_400_and_changes_nothing(world: Any, g: GrantWorld, api_as: Any) -> None:
    client, before = api_as(world.tenant_admin), _grants()
    for response in (
        client.delete(_member(g.dora_grant) + "?dry_run=maybe"),
        client.patch(_member(g.dora_grant) + "?dry_run=2", {"role": "guest"}, format="json"),
        client.put(
            f"/api/v1/orgs/{world.root.pk}/settings/allow_task_sharing?dry_run=perhaps",
            {"value": False, "locked": True},
            format="json",
        ),
    ):
        assert response.status_code == 400 and "dry_run" in response.json(), response.content
    assert _grants() == before and not OrgSetting.objects.exists()


def test_a_past_expiry_is_a_400_dry_run_or_not(world: Any, g: GrantWorld, api_as: Any) -> None:
    client, before = api_as(world.tenant_admin), _grants()
    past = (timezone.now() - timedelta(days=1)).isoformat()
    for suffix in ("?dry_run=true", ""):
        response = client.patch(_member(g.dora_grant) + suffix, {"expires_at": past}, format="json")
        assert response.status_code == 400 and "expires_at" in response.json()
    assert _grants() == before


def test_an_integrator_cannot_dry_run_a_removal_they_could_not_make(world: Any, g: GrantWorld, api_as: Any) -> None:
    """dora (Integrator on Marketing) probes: Marketing's grants she may see (403, as the removal), Logistics' and
    Globex's she cannot (404, nothing said about them); no preview answers her, nothing is removed."""
    client, before = api_as(g.dora), _grants()
    mine = client.delete(_member(g.hank_grant) + "?dry_run=true")
    assert mine.status_code == 403 and mine.json()["code"] == "permission_denied"
    assert client.delete(_member(g.hank_grant)).status_code == 403  # as the removal itself
    hidden = client.delete(_member(g.ops_grant) + "?dry_run=true")
    assert hidden.status_code == 404 and "Ops" not in hidden.content.decode() and "erin" not in hidden.content.decode()
    assert client.patch(_member(g.ops_grant) + "?dry_run=true", {"role": "admin"}, format="json").status_code == 404
    lock = client.put(f"/api/v1/orgs/{world.marketing.pk}/settings/allow_task_sharing?dry_run=true",
                      {"value": False, "locked": True}, format="json")  # fmt: skip
    assert lock.status_code == 403
    assert _grants() == before and not OrgSetting.objects.exists()


def test_an_org_admin_previews_what_they_may_remove(world: Any, g: GrantWorld, api_as: Any) -> None:
    """hank (Admin on Marketing) holds what dora's Integrator role gives there: his preview answers, nothing removed;
    a grant on Logistics (where he holds nothing) is not there for him."""
    client = api_as(g.hank)
    assert client.delete(_member(g.dora_grant) + "?dry_run=true").status_code == 200
    assert client.delete(_member(g.ops_grant) + "?dry_run=true").status_code == 404
    assert OrgUserGrant.objects.filter(pk=g.dora_grant.pk).exists()


def test_another_tenant_gets_404_dry_run_or_not(world: Any, g: GrantWorld, api_as: Any) -> None:
    client, before = api_as(world.other_admin), _grants()
    for suffix in ("?dry_run=true", ""):
        assert client.delete(_member(g.dora_grant) + suffix).status_code == 404
        assert client.patch(_member(g.dora_grant) + suffix, {"role": "guest"}, format="json").status_code == 404
        url = f"/api/v1/orgs/{world.marketing.pk}/settings/allow_task_sharing{suffix}"
        assert client.put(url, {"value": False, "locked": True}, format="json").status_code == 404
    assert _grants() == before and not OrgSetting.objects.exists()


def test_a_dry_run_never_changes_state_even_when_the_change_would(world: Any, g: GrantWorld, api_as: Any) -> None:
    client = api_as(world.tenant_admin)
    for _ in range(2):  # a preview repeated: still nothing written, the same answer
        first = client.delete(_member(g.dora_grant) + "?dry_run=true").json()
    assert first == client.delete(_member(g.dora_grant) + "?dry_run=true").json()
    assert OrgUserGrant.objects.filter(pk=g.dora_grant.pk).exists()
    # dora still has what the preview says she would lose.
    response = api_as(g.dora).get(f"/api/v1/orgs/{world.campaigns.pk}/members")
    assert response.status_code == 200


def test_a_refused_lock_is_refused_by_its_dry_run_with_the_same_answer(world: Any, api_as: Any) -> None:
    services.set_setting(actor=SYSTEM, org=world.emea, key="allow_task_sharing", value=True)
    url = f"/api/v1/orgs/{world.marketing.pk}/settings/allow_task_sharing"
    client, rows = api_as(world.tenant_admin), list(OrgSetting.objects.values_list("pk", "value", "locked"))
    previewed = client.put(url + "?dry_run=true", {"value": False, "locked": True}, format="json")
    real = client.put(url, {"value": False, "locked": True}, format="json")
    assert previewed.status_code == real.status_code == 409
    assert previewed.json()["code"] == real.json()["code"] == "overridden_below"
    assert previewed.json()["detail"] == real.json()["detail"]
    assert list(OrgSetting.objects.values_list("pk", "value", "locked")) == rows


def test_a_stale_dry_run_is_a_412(world: Any, g: GrantWorld, api_as: Any) -> None:
    client = api_as(world.tenant_admin)
    response = client.delete(_member(g.dora_grant) + "?dry_run=true", HTTP_IF_MATCH='"99"')
    assert response.status_code == 412
    assert OrgUserGrant.objects.filter(pk=g.dora_grant.pk).exists()
