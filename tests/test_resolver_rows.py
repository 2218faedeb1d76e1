"""The resolver's hand-composed SQL returns exactly what the equivalent ORM queries return, row kind by row kind.

The resolver (access/resolver.py) answers the policy in one UNION ALL statement per question; the ORM cannot, so
the SQL is written by hand. These tests rebuild every kind of row it returns (user, team, project_user,
project_team, cut, tenant_admin, tenant_member, share) with plain ORM queries on a world that has each kind — and
rows that must NOT come back (expired grants, someone else's grants, a team the user is not in, a deleted org) —
and compare the two as multisets. They run on SQLite and on PostgreSQL (CI runs the suite on both).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access import resolver
from access.models import OrgTeamGrant, OrgUserGrant, ProjectTeamGrant, ProjectUserGrant, TenantMembership
from access.roles import SHARE_LEVELS
from access.services.custom_roles import create_role
from access.services.grants import grant_role
from access.services.teams import add_team_member, create_team
from config.actors import SYSTEM
from orgs.models import Organization, Project
from orgs.services import delete_org, update_org
from resources.models import TaskTeamShare, TaskUserShare
from resources.services.tasks import create_task, share_task
from tests.factories import UserFactory, add_to_tenant, make_org, make_project, make_tenant, root_of

ORG_KINDS = {"user", "team", "cut", "project_user", "project_team", "tenant_admin"}
SUBTREE_KINDS = ORG_KINDS | {"tenant_member", "share"}


def _unexpired() -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())


def _role_row(kind: str, grant: Any, team_name: str = "") -> resolver.Row:
    on_org = isinstance(grant.content_object, Organization)
    org = grant.content_object
    return resolver.Row(
        kind=kind,
        tree_id=org.tree_id if on_org else None,
        lft=org.lft if on_org else None,
        rght=org.rght if on_org else None,
        key=grant.role.key,
        builtin=grant.role.is_builtin,
        capabilities=grant.role.capabilities,
        object_id=grant.content_object_id,
        object_name=org.name if on_org else "",
        grant_id=grant.pk,
        team_name=team_name,
    )


def _cut_row(org: Organization) -> resolver.Row:
    return resolver.Row(
        "cut", org.tree_id, org.lft, org.rght, org.access_inheritance, True, frozenset(), org.pk, org.name, None, ""
    )


def _tenant_row(membership: TenantMembership) -> resolver.Row:
    kind = "tenant_admin" if membership.is_admin else "tenant_member"
    return resolver.Row(kind, None, None, None, "", True, frozenset(), membership.tenant_id, "", None, "")


def _share_row(share: Any, team_name: str = "") -> resolver.Row:
    codename = share.permission.codename
    return resolver.Row(
        "share", None, None, None, codename, True, SHARE_LEVELS[codename], share.content_object_id, "", share.pk,
        team_name,
    )  # fmt: skip


def _grants(model: Any, user: Any, *conditions: Q) -> list[resolver.Row]:
    """The user's unexpired grants in ``model`` as rows, direct or through a team, by the ORM."""
    team = "group_id" in {f.attname for f in model._meta.concrete_fields}
    holder = Q(group__user=user) if team else Q(user=user)
    kind = {OrgUserGrant: "user", OrgTeamGrant: "team", ProjectUserGrant: "project_user"}.get(model, "project_team")
    grants = model.objects.filter(holder, _unexpired(), *conditions).select_related("role", "content_object")
    return [_role_row(kind, g, g.group.team.name if team else "") for g in grants]


def orm_org_rows(user: Any, org: Organization, project: Project | None = None) -> list[resolver.Row]:
    on_path = Q(
        content_object__tree_id=org.tree_id, content_object__lft__lte=org.lft, content_object__rght__gte=org.rght
    )
    rows = _grants(OrgUserGrant, user, on_path) + _grants(OrgTeamGrant, user, on_path)
    rows += [_cut_row(o) for o in Organization.objects.filter(org.ancestors_q()).exclude(access_inheritance="all")]
    rows += [_tenant_row(m) for m in TenantMembership.objects.filter(user=user, tenant_id=org.tenant_id, is_admin=True)]
    if project is not None:
        rows += _grants(ProjectUserGrant, user, Q(content_object=project))
        rows += _grants(ProjectTeamGrant, user, Q(content_object=project))
    return rows


def orm_subtree_rows(user: Any) -> list[resolver.Row]:
    alive = Q(content_object__deleted_at__isnull=True)
    rows = _grants(OrgUserGrant, user, alive) + _grants(OrgTeamGrant, user, alive)
    # Cuts in every tree where the user holds an org grant (expired ones too: the resolver's superset).
    trees = set(OrgUserGrant.objects.filter(user=user).values_list("content_object__tree_id", flat=True))
    trees |= set(OrgTeamGrant.objects.filter(group__user=user).values_list("content_object__tree_id", flat=True))
    rows += [_cut_row(o) for o in Organization.objects.filter(tree_id__in=trees).exclude(access_inheritance="all")]
    rows += _grants(ProjectUserGrant, user) + _grants(ProjectTeamGrant, user)
    rows += [_tenant_row(m) for m in TenantMembership.objects.filter(user=user)]
    rows += [_share_row(s) for s in TaskUserShare.objects.filter(user=user).select_related("permission")]
    team_shares = TaskTeamShare.objects.filter(group__user=user).select_related("permission", "group__team")
    rows += [_share_row(s, s.group.team.name) for s in team_shares]
    return rows


@pytest.fixture
def rich(world: Any) -> dict[str, Any]:
    """A user (dana) with every kind of fact, and facts around her that must not come back."""
    dana, eve = UserFactory(username="dana"), UserFactory(username="eve")
    for user in (dana, eve):
        add_to_tenant(user, world.acme)
    initech = make_tenant("Initech", admin=dana)  # dana administers a second tenant: tenant_admin there
    engineers = create_team(actor=SYSTEM, org=world.root, name="Engineers")
    add_team_member(actor=SYSTEM, team=engineers, user=dana)
    strangers = create_team(actor=SYSTEM, org=world.root, name="Strangers")  # dana is not in it
    add_team_member(actor=SYSTEM, team=strangers, user=eve)
    auditor = create_role(actor=SYSTEM, org=world.root, name="Auditor", capabilities=["org.view", "audit.view"])
    lab = make_project(world.campaigns, "Lab")
    archive = make_org(world.root, "Archive")

    grant_role(actor=SYSTEM, target=world.root, role="guest", user=dana)
    grant_role(actor=SYSTEM, target=world.logistics, role="admin", user=dana)  # off the Campaigns path
    grant_role(actor=SYSTEM, target=world.marketing, role=auditor, team=engineers)  # a custom role, by team
    expired = grant_role(actor=SYSTEM, target=world.emea, role="integrator", user=dana)
    OrgUserGrant.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    grant_role(actor=SYSTEM, target=archive, role="integrator", user=dana)
    grant_role(actor=SYSTEM, target=world.emea, role="admin", team=strangers)
    grant_role(actor=SYSTEM, target=world.emea, role="admin", user=eve)
    grant_role(actor=SYSTEM, target=lab, role="integrator", user=dana)
    grant_role(actor=SYSTEM, target=lab, role="guest", team=engineers)
    grant_role(actor=SYSTEM, target=lab, role="admin", team=strangers)
    update_org(actor=SYSTEM, org=world.emea, access_inheritance="admins_only")
    update_org(actor=SYSTEM, org=world.campaigns, access_inheritance="none")
    update_org(actor=SYSTEM, org=world.logistics, access_inheritance="none")  # a cut off the Campaigns path
    delete_org(actor=SYSTEM, org=archive)

    ops = make_project(world.logistics, "Ops")
    nightly = create_task(actor=SYSTEM, project=ops, name="Nightly")
    hourly = create_task(actor=SYSTEM, project=lab, name="Hourly")
    share_task(actor=SYSTEM, task=nightly, permission="view", user=dana)
    share_task(actor=SYSTEM, task=hourly, permission="run", team=engineers)
    share_task(actor=SYSTEM, task=hourly, permission="edit", team=strangers)
    world.refresh()
    return {"dana": dana, "initech": root_of(initech), "lab": lab, "campaigns": world.campaigns}


def _kinds(rows: list[resolver.Row]) -> set[str]:
    return {r.kind for r in rows}


def test_org_rows_equal_the_orm_rows_for_every_kind(rich: dict[str, Any]) -> None:
    dana, campaigns, lab = rich["dana"], rich["campaigns"], rich["lab"]
    with CaptureQueriesContext(connection) as queries:
        rows = resolver.org_rows(dana, campaigns, lab)
    assert len(queries) == 1
    expected = orm_org_rows(dana, campaigns, lab)
    assert Counter(rows) == Counter(expected)
    assert _kinds(rows) == ORG_KINDS - {"tenant_admin"}
    # Not the expired grant, not eve's, not the Strangers' (dana is not in that team).
    assert {r.key for r in rows if r.kind in ("user", "team")} == {"guest", "auditor"}
    assert {r.key for r in rows if r.kind == "project_team"} == {"guest"}
    assert {(r.object_name, r.key) for r in rows if r.kind == "cut"} == {("EMEA", "admins_only"), ("Campaigns", "none")}

    admin_rows = resolver.org_rows(dana, rich["initech"])
    assert Counter(admin_rows) == Counter(orm_org_rows(dana, rich["initech"]))
    assert _kinds(admin_rows) == {"tenant_admin", "user"}  # a tenant's creator is also Admin of its root


def test_org_rows_without_a_project_carry_no_project_grant(rich: dict[str, Any]) -> None:
    rows = resolver.org_rows(rich["dana"], rich["campaigns"])
    assert Counter(rows) == Counter(orm_org_rows(rich["dana"], rich["campaigns"]))
    assert _kinds(rows) == {"user", "team", "cut"}


def test_subtree_rows_equal_the_orm_rows_for_every_kind(rich: dict[str, Any]) -> None:
    dana = rich["dana"]
    with CaptureQueriesContext(connection) as queries:
        rows = resolver.subtree_rows(dana)
    assert len(queries) == 1
    expected = orm_subtree_rows(dana)
    assert Counter(rows) == Counter(expected)
    assert _kinds(rows) == SUBTREE_KINDS
    assert "Archive" not in {r.object_name for r in rows if r.kind == "user"}  # the deleted org's grant
    assert {r.key for r in rows if r.kind == "share"} == {"view_task", "run_task"}  # not the Strangers' edit share
    assert {r.object_name for r in rows if r.kind == "cut"} == {"EMEA", "Campaigns", "Logistics"}


def test_a_user_with_nothing_gets_no_rows(world: Any) -> None:
    assert resolver.subtree_rows(world.outsider) == []
    assert resolver.org_rows(world.outsider, world.campaigns, world.website) == []


@pytest.mark.parametrize("question", ["org_rows", "subtree_rows"])
def test_every_placeholder_has_one_parameter(world: Any, question: str) -> None:
    if question == "org_rows":
        sql, params = resolver.org_rows_sql(world.member, world.campaigns, world.website)
    else:
        sql, params = resolver.subtree_rows_sql(world.member)
    assert sql.count("%s") == len(params) > 0
    # Table names come from the models' _meta: the grant and share tables all appear, quoted by the backend.
    for model in (OrgUserGrant, OrgTeamGrant, ProjectUserGrant, ProjectTeamGrant):
        assert connection.ops.quote_name(model._meta.db_table) in sql
    if question == "subtree_rows":
        for model in (TaskUserShare, TaskTeamShare):
            assert connection.ops.quote_name(model._meta.db_table) in sql


def test_a_name_that_is_no_column_is_refused_when_the_statement_is_composed() -> None:
    with pytest.raises(TypeError, match="not a column"):
        resolver._col(Organization, "o", "children")  # a reverse relation: no column of the org table
