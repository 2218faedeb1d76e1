"""The preview of a move and of an access-inheritance change against the change itself (the oracle), in the world of
tests/governance/impact_world.py: the preview writes nothing, and applying the change right after it gives the
same sections. Plus what the sections say in that world, the bulk resolution of the declarations part checked org
by org against the inheritance engine, and query budgets independent of the subtree's size."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from access.models import AuditEvent, Invitation, OrgTeamGrant, OrgUserGrant
from config.concurrency import Stale
from config.errors import Conflict, Forbidden, NotFound
from governance.impact import org_changes
from governance.impact.declarations import DeclarationPart
from governance.impact.engine import CapabilityPart, Impact, Scope, observe
from governance.impact.parts import PARTS
from governance.impact.runs import RunsPart
from governance.impact.settings_part import SettingsPart
from orgs import services
from orgs.models import Organization
from resources import inheritance
from resources.models import Credential, EnvVar, LookupTable, OrgSetting, Run, Task
from resources.settings_registry import REGISTRY, effective_settings
from runtimes import placement
from runtimes.models import Runtime
from runtimes.selectors import effective_runtimes
from tests.governance.impact_world import ImpactWorld, build_impact_world, grow, queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def iw(world: Any) -> ImpactWorld:
    return build_impact_world(world)


def state(tenant_id: Any) -> dict[str, Any]:
    """Everything a move or an inheritance change could write, read back."""
    return {
        "orgs": sorted(
            Organization.objects.filter(tenant_id=tenant_id).values_list(
                "pk", "parent_id", "lft", "rght", "level", "tree_id", "access_inheritance", "version", "name"
            )
        ),
        "grants": OrgUserGrant.objects.count() + OrgTeamGrant.objects.count(),
        "invitations": sorted(Invitation.objects.values_list("pk", "revoked_at")),
        "events": AuditEvent.objects.count(),
        "runs": sorted(Run.objects.values_list("pk", "status", "runtime_id")),
    }


def texts(impact: Impact, key: str) -> list[str]:
    return [e.text for e in impact.section(key).entries]


def kinds(impact: Impact, key: str) -> list[str]:
    return sorted(e.kind for e in impact.section(key).entries)


def check_oracle(iw: ImpactWorld, previewed: Callable[[], Impact], change: Callable[[], Any], root: Any) -> Impact:
    """The preview changes nothing; the change made right after, observed, gives the same sections."""
    before = state(iw.base.acme.pk)
    impact = previewed()
    assert state(iw.base.acme.pk) == before, "the preview wrote something"
    with transaction.atomic():
        _, observed = observe(change, Scope(root=root), describe=impact.change, parts=PARTS)
    assert observed.as_dict() == impact.as_dict()
    assert state(iw.base.acme.pk) != before  # and the change did happen
    return impact


# -- moves ---------------------------------------------------------------------------------------------------------


def test_moving_under_a_locked_parent_shows_every_consequence_and_matches_the_move(iw: ImpactWorld) -> None:
    alice = iw.base.tenant_admin
    impact = check_oracle(
        iw,
        lambda: org_changes.preview_move(actor=alice, org=iw.depot, parent=iw.berlin),
        lambda: services.move_org(actor=alice, org=iw.depot, parent=iw.berlin),
        iw.depot,
    )
    assert impact.change == "Move Depot under Berlin"
    # eve's Guest role on Logistics reached Depot and Bay, never the cut Vault
    assert (
        texts(impact, "capabilities")
        == [t for t in texts(impact, "capabilities") if t.startswith("eve loses") and t.endswith("in Depot and Bay")]
        and len(texts(impact, "capabilities")) == 1
    )
    declared = texts(impact, "declarations")
    # a lock above the new parent shadows the overrides below it
    assert "Bay: the override of environment variable “REGION” from Bay is shadowed by the lock from Europe" in declared
    settings = texts(impact, "settings")
    assert "Run log retention (days) set in Depot (90) is shadowed by a lock above" in settings, settings
    assert "Run log retention (days): 90 → 30 in Depot and 2 other organizations" in settings
    assert "Depot and Vault: environment variable “REGION” comes from Europe instead of from Acme" in declared
    assert "Depot and 2 other organizations start inheriting lookup table “rates” from Acme" in declared
    assert "Depot and 2 other organizations start inheriting lookup table “holidays” from Europe" in declared
    assert "Depot and 2 other organizations: runtime “us-east” comes from Europe instead of from Logistics" in declared
    assert 'Allowed runtimes: [] → ["eu-west", "us-east"] in Depot and 2 other organizations' in settings
    assert "Allowed runtimes becomes locked from above in Depot and 2 other organizations" in " ".join(settings)
    assert not any("Default runtime" in t for t in settings)  # us-east before and after: no change of value
    assert not any("setting" in t for t in declared)  # settings are the settings part's, not said twice
    assert not any("bank" in t or "crm" in t for t in declared)  # the root's lock decides bank; Bay's own crm
    runs = {e.data["task"]["name"]: e for e in impact.section("runs").entries}
    assert runs["ship"].kind == "unplaceable" and runs["ship"].data["runs"] == 2
    assert "“us-east” is not usable in Depot" in runs["ship"].text
    assert runs["load"].kind == "displaced"
    assert runs["load"].text.endswith("would be placed on us-east of Europe instead of us-east of Logistics")


def test_moving_under_marketing_gives_the_team_and_the_integrator(iw: ImpactWorld) -> None:
    alice = iw.base.tenant_admin
    impact = check_oracle(
        iw,
        lambda: org_changes.preview_move(actor=alice, org=iw.depot, parent=iw.base.marketing),
        lambda: services.move_org(actor=alice, org=iw.depot, parent=iw.base.marketing),
        iw.depot,
    )
    capabilities = texts(impact, "capabilities")
    assert any(t.startswith("dora gains") and t.endswith("in Depot and Bay") for t in capabilities), capabilities
    assert any(t.startswith("erin gains") and t.endswith("in Depot and Bay") for t in capabilities), capabilities
    assert any(t.startswith("eve loses") for t in capabilities)
    assert not any("frank" in t or "gus" in t or "Vault" in t for t in capabilities)
    declared = texts(impact, "declarations")
    assert "Depot and Vault start inheriting credential “crm” from Marketing" in declared
    assert "Depot and 2 other organizations stop inheriting runtime “us-east” from Logistics" in declared
    assert 'Default runtime: "us-east" → (not set) in Depot and 2 other organizations' in texts(impact, "settings")
    runs = {e.data["task"]["name"]: e for e in impact.section("runs").entries}
    assert runs["ship"].kind == "unplaceable"
    assert runs["load"].kind == "displaced" and "would be placed on platform (platform)" in runs["load"].text


def test_a_small_move_with_nothing_to_report_is_empty(iw: ImpactWorld) -> None:
    berlin = iw.berlin
    impact = check_oracle(
        iw,
        lambda: org_changes.preview_move(actor=iw.base.tenant_admin, org=berlin, parent=iw.base.logistics),
        lambda: services.move_org(actor=iw.base.tenant_admin, org=berlin, parent=iw.base.logistics),
        berlin,
    )
    assert texts(impact, "runs") == []
    # Berlin leaves Europe: its locks stop deciding there
    assert "Berlin stop inheriting lookup table “holidays” from Europe" in texts(impact, "declarations")
    assert any(t.startswith("eve gains") and t.endswith("in Berlin") for t in texts(impact, "capabilities"))


def test_moving_a_cut_subtree_changes_nobodys_access_there(iw: ImpactWorld) -> None:
    impact = check_oracle(
        iw,
        lambda: org_changes.preview_move(actor=iw.base.tenant_admin, org=iw.vault, parent=iw.base.marketing),
        lambda: services.move_org(actor=iw.base.tenant_admin, org=iw.vault, parent=iw.base.marketing),
        iw.vault,
    )
    assert texts(impact, "capabilities") == []  # cut: only tenant administrators reach it from above
    assert "Vault start inheriting credential “crm” from Marketing" in texts(impact, "declarations")


def test_apply_move_records_the_summary_in_the_move_event(iw: ImpactWorld) -> None:
    org, impact = org_changes.apply_move(actor=iw.base.tenant_admin, org=iw.depot, parent=iw.berlin)
    assert org.parent_id == iw.berlin.pk
    event = AuditEvent.objects.get(action="org.move", target_id=str(iw.depot.pk))
    summary = event.changes["impact"]
    assert summary["change"] == "Move Depot under Berlin"
    assert summary["runs"]["counts"] == {"displaced": 1, "unplaceable": 1}
    assert summary["capabilities"]["counts"] == {"loses": 1}
    assert summary["declarations"]["counts"]["shadowed"] == 1  # Bay's REGION; Depot's retention is in settings
    assert summary["settings"]["counts"] == {"changes": 2, "locked": 2, "shadowed": 1}
    assert summary == {"change": impact.change, **impact.summary()}
    assert event.changes["parent"] == [str(iw.base.logistics.pk), str(iw.berlin.pk)]


@pytest.mark.parametrize(
    ("who", "target", "error"),
    [
        ("frank", "berlin", NotFound),  # Admin of Vault only: Depot is not visible to him
        ("dora", "berlin", NotFound),
        ("alice", "bay", Conflict),  # into its own subtree
    ],
)
def test_a_refused_move_is_refused_by_its_preview_and_nothing_changes(
    iw: ImpactWorld, who: str, target: str, error: type[Exception]
) -> None:
    actor = iw.base.tenant_admin if who == "alice" else iw.users[who]
    before = state(iw.base.acme.pk)
    with pytest.raises(error):
        org_changes.preview_move(actor=actor, org=iw.depot, parent=getattr(iw, target))
    assert state(iw.base.acme.pk) == before


def test_a_forbidden_move_of_a_visible_org_is_refused_by_its_preview(iw: ImpactWorld) -> None:
    frank = iw.users["frank"]  # Admin of Vault: sees it, may not restructure the tree
    with pytest.raises(Forbidden):
        org_changes.preview_move(actor=frank, org=iw.vault, parent=iw.berlin)


def test_a_stale_version_is_refused_by_the_preview(iw: ImpactWorld) -> None:
    with pytest.raises(Stale):
        org_changes.preview_move(
            actor=iw.base.tenant_admin, org=iw.depot, parent=iw.berlin, version=iw.depot.version - 1
        )


# -- access inheritance --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("org", "value", "expected"),
    [
        # cut Logistics: gus (Integrator on the root) loses it and what is below (Vault was cut already)
        ("logistics", "none", ["gus loses"]),
        ("logistics", "admins_only", ["gus loses"]),
        # lift Vault's cut: eve (Logistics) and gus (the root) reach it again
        ("vault", "all", ["eve gains", "gus gains"]),
    ],
)
def test_an_inheritance_change_previews_who_gains_and_loses(
    iw: ImpactWorld, org: str, value: str, expected: list[str]
) -> None:
    target = getattr(iw.base, org, None) or getattr(iw, org)
    alice = iw.base.tenant_admin
    impact = check_oracle(
        iw,
        lambda: org_changes.preview_update(actor=alice, org=target, access_inheritance=value),
        lambda: services.update_org(actor=alice, org=target, access_inheritance=value),
        target,
    )
    capabilities = texts(impact, "capabilities")
    assert sorted(" ".join(t.split(" ")[:2]) for t in capabilities) == expected, capabilities
    if org == "logistics":
        assert any(t.endswith("in Logistics and 2 other organizations") for t in capabilities), capabilities
    assert texts(impact, "declarations") == [] and texts(impact, "runs") == []  # access only: nothing inherited


def test_apply_update_records_the_summary_in_the_update_event(iw: ImpactWorld) -> None:
    alice = iw.base.tenant_admin
    org, _ = org_changes.apply_update(actor=alice, org=iw.base.logistics, access_inheritance="none")
    assert org.access_inheritance == "none"
    event = AuditEvent.objects.filter(action="org.update", target_id=str(org.pk)).latest("created_at")
    assert event.changes["impact"]["capabilities"]["counts"] == {"loses": 1}
    assert event.changes["access_inheritance"] == ["all", "none"]


def test_an_org_admin_previews_lifting_the_cut_of_their_org(iw: ImpactWorld) -> None:
    """frank is Admin of Vault: what lifting its cut lets in he holds himself (the delegation rule lets him)."""
    before = state(iw.base.acme.pk)
    impact = org_changes.preview_update(actor=iw.users["frank"], org=iw.vault, access_inheritance="all")
    assert state(iw.base.acme.pk) == before
    assert sorted(e.data["user"]["username"] for e in impact.section("capabilities").entries) == ["eve", "gus"]


@pytest.mark.parametrize(("who", "org", "error"), [("eve", "depot", Forbidden), ("dora", "vault", NotFound)])
def test_an_inheritance_change_by_someone_who_may_not_is_refused_by_its_preview(
    iw: ImpactWorld, who: str, org: str, error: type[Exception]
) -> None:
    before = state(iw.base.acme.pk)
    with pytest.raises(error):
        org_changes.preview_update(actor=iw.users[who], org=getattr(iw, org), access_inheritance="none")
    assert state(iw.base.acme.pk) == before


# -- the declarations part resolves as the engine does -------------------------------------------------------------


def test_the_bulk_resolution_agrees_with_the_inheritance_engine_org_by_org(iw: ImpactWorld) -> None:
    for root in (iw.base.root, iw.base.logistics, iw.depot, iw.europe):
        snapshot = DeclarationPart().capture(Scope(root=root))
        for org in Scope(root=root).subtree():
            for model, key in ((Credential, "resources.credential"), (LookupTable, "resources.lookuptable"),
                               (EnvVar, "resources.envvar")):  # fmt: skip
                engine = {e.name.lower(): e.item.pk for e in inheritance.effective(model, org)}
                part = {name: src[0] for (k, name, o), src in snapshot.winners.items() if k == key and o == org.pk}
                assert part == engine, (org.name, key)
            runtimes = {row.runtime.name.lower(): row.runtime.pk for row in effective_runtimes(org)}
            part = {n: s[0] for (k, n, o), s in snapshot.winners.items() if k == "runtimes.runtime" and o == org.pk}
            assert part == runtimes, org.name
            settings = {s.spec.key: s.value for s in effective_settings(org)}
            decided = SettingsPart().capture(Scope(root=root)).decided[org.pk]
            part = {key: decided[key][0] if key in decided else spec.default for key, spec in REGISTRY.items()}
            assert part == settings, org.name


@pytest.mark.parametrize("moved_under", [None, "berlin", "marketing"])
def test_the_runs_part_places_as_placement_does(iw: ImpactWorld, moved_under: str | None) -> None:
    if moved_under is not None:
        parent = getattr(iw, moved_under, None) or getattr(iw.base, moved_under)
        services.move_org(actor=iw.base.tenant_admin, org=iw.depot, parent=parent)
    Task.objects.create(project=iw.base.website, name="web", steps=[])  # Marketing's project: no default_runtime
    queue(Task.objects.get(name="web"), None)
    snapshot = RunsPart().capture(Scope(root=iw.base.root))
    assert len(snapshot) == 4  # the world's three queued runs and this one
    for run_id, queued in snapshot.items():
        task = Run.objects.select_related("task__project__org").get(pk=run_id).task
        try:
            runtime: Runtime | None = placement.place(task)
        except Conflict as error:
            assert queued.outcome == ("refused", error.detail)
        else:
            assert runtime is not None and queued.outcome[:2] == ("runtime", str(runtime.pk))


# -- budgets -------------------------------------------------------------------------------------------------------


def _queries(fn: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx)


def test_the_capability_and_declaration_parts_cost_the_same_for_5_and_60_orgs(iw: ImpactWorld) -> None:
    logistics = iw.base.logistics
    small = services.create_org(actor=iw.base.tenant_admin, parent=logistics, name="Small")
    big = services.create_org(actor=iw.base.tenant_admin, parent=logistics, name="Big")
    grow(small, 4)
    grow(big, 59)
    assert len(Scope(root=small).subtree()) == 5 and len(Scope(root=big).subtree()) == 60
    for part in (CapabilityPart(), DeclarationPart()):
        cost = {org.name: _queries(lambda org=org, part=part: part.capture(Scope(root=org))) for org in (small, big)}
        assert cost["Small"] == cost["Big"], (part.key, cost)
    whole = {
        org.name: _queries(
            lambda org=org: org_changes.preview_move(actor=iw.base.tenant_admin, org=org, parent=iw.berlin)
        )
        for org in (small, big)
    }
    assert whole["Small"] == whole["Big"], whole
    assert whole["Big"] <= 70, whole  # the move itself, its checks and invitations, and the parts before and after
    assert OrgSetting.objects.exists()  # the settings took part
