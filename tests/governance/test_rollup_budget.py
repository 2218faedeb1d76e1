"""The roll-up costs the same number of queries with 3 children as with 50 (more than the rows shown by name), each
child holding a project, a task with runs, a local runtime, a member and an invitation: aggregates grouped by child
subtree in SQL, never a query per child."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from access.models import Invitation
from access.services.grants import grant_role, resolve_role
from governance.models import RollupSnapshot
from governance.rollup.service import CHILD_ROWS, rollup
from resources.models import Run, Task
from runtimes.models import Runtime
from tests.factories import UserFactory, add_to_tenant, make_org, make_project

pytestmark = pytest.mark.django_db

# the viewer's grants, their fences, the children, 11 aggregates (the runs and each kind of org grant scanned once
# for several groupings), the snapshot kept (an update; for a new audience the org's unread rows deleted and an
# insert; in a savepoint); on PostgreSQL also SET LOCAL jit and the savepoints' statements
SERVICE_BUDGET = 20
PAGE_BUDGET = 27  # the service, the session and user, the breadcrumb, the switcher, the tab's capabilities
API_BUDGET = 24


def _fill(world: Any, children: int) -> Any:
    guest = resolve_role(world.root, "guest")
    now = timezone.now()
    for i in range(children):
        child = make_org(world.logistics, f"unit-{i}")
        grandchild = make_org(child, f"team-{i}")
        project = make_project(grandchild, f"p-{i}")
        task = Task.objects.create(project=project, name=f"t-{i}")
        Run.objects.create(task=task, status="failed", runtime_name="platform")
        Run.objects.create(task=task, status="succeeded", runtime_name="platform")
        Runtime.objects.create(org=child, name=f"rt-{i}", kind="local", last_seen=now)
        user = UserFactory(username=f"member-{i}")
        add_to_tenant(user, world.acme)
        grant_role(actor=world.tenant_admin, target=grandchild, role="guest", user=user,
                   expires_at=now + timedelta(days=3))  # fmt: skip
        Invitation.objects.create(org=child, email=f"i{i}@example.com", role=guest, token_hash=f"{i:064d}",
                                  expires_at=now + timedelta(days=2))  # fmt: skip
    world.logistics.refresh_from_db()
    return world.logistics


@pytest.mark.parametrize("children", [3, 50])
def test_the_service_budget_does_not_grow_with_the_children(
    world: Any, children: int, django_assert_max_num_queries: Any
) -> None:
    org = _fill(world, children)
    viewer = UserFactory(username="viewer")
    add_to_tenant(viewer, world.acme)
    grant_role(actor=world.tenant_admin, target=world.root, role="admin", user=viewer)
    with django_assert_max_num_queries(SERVICE_BUDGET):
        result = rollup(viewer, org, "7d", use_cache=False)
    shown = min(children, CHILD_ROWS)
    assert len(result.children) == shown
    assert result.more_children is (children > CHILD_ROWS)
    total = result.total
    assert (total.tasks, total.failing_tasks, total.runs_total, total.runtimes_online) == (
        children, 0, 2 * children, children,
    )  # fmt: skip
    assert (total.invitations, total.expiring_grants, total.orgs) == (children, children, 1 + 2 * children)
    assert sum(row.counts.tasks for row in result.rows) == children  # every task in exactly one row
    if children > CHILD_ROWS:
        elsewhere = result.rows[-1]
        assert elsewhere.kind == "elsewhere" and elsewhere.counts.tasks == children - CHILD_ROWS


@pytest.mark.parametrize("children", [3, 50])
def test_the_page_and_the_api_keep_their_budgets(
    world: Any, children: int, as_user: Any, api_as: Any, django_assert_max_num_queries: Any
) -> None:
    org = _fill(world, children)
    client = as_user(world.tenant_admin)
    api = api_as(world.tenant_admin)
    with django_assert_max_num_queries(PAGE_BUDGET):
        assert client.get(reverse("org-rollup", args=[org.pk])).status_code == 200
    RollupSnapshot.objects.all().delete()  # computed again, not served from what the page kept
    with django_assert_max_num_queries(API_BUDGET):
        assert api.get(f"/api/v1/orgs/{org.pk}/rollup").status_code == 200


#: Served from the snapshot (governance/rollup/snapshots.py): the aggregates replaced by one read.
SERVED_PAGE_BUDGET = 8  # the session and user, the breadcrumb, the switcher, the tab's capabilities
SERVED_API_BUDGET = 4


@pytest.mark.parametrize("children", [3, 50])
def test_a_served_roll_up_costs_one_read_instead_of_the_aggregates(
    world: Any, children: int, as_user: Any, api_as: Any, django_assert_max_num_queries: Any
) -> None:
    org = _fill(world, children)
    client, api = as_user(world.tenant_admin), api_as(world.tenant_admin)
    assert client.get(reverse("org-rollup", args=[org.pk])).status_code == 200  # computed and kept
    with django_assert_max_num_queries(SERVED_PAGE_BUDGET):
        page = client.get(reverse("org-rollup", args=[org.pk]))
    assert page.status_code == 200 and page.context["rollup"].from_snapshot
    with django_assert_max_num_queries(SERVED_API_BUDGET):
        assert api.get(f"/api/v1/orgs/{org.pk}/rollup").status_code == 200
