"""The lists #15 made paginated (a task's shares, an org's settings) and the audit log with its validated filters
cost a bounded number of queries: the same for a few rows as for many."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from access import audit
from access.models import AuditEvent
from resources import services
from resources.models import TaskUserShare
from tests.factories import UserFactory, add_to_tenant


def queries(client: Any, url: str) -> tuple[int, dict[str, Any]]:
    client.get(url)  # warm the per-process caches (fences, roles)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    return len(captured), response.json()


def test_a_tasks_shares_cost_the_same_for_two_or_twelve(world, api_as, django_assert_max_num_queries):
    task = services.create_task(actor=world.tenant_admin, project=world.website, name="Budget")
    client = api_as(world.tenant_admin)
    url = f"/api/v1/tasks/{task.pk}/shares"
    counts = []
    for total in (2, 12):
        while TaskUserShare.objects.filter(content_object=task).count() < total:
            user = UserFactory()
            add_to_tenant(user, world.acme)
            services.share_task(actor=world.tenant_admin, task=task, user=user, permission="view")
        count, body = queries(client, url)
        assert body["count"] == total and len(body["results"]) == total
        counts.append(count)
    assert counts[0] == counts[1] <= 5
    with django_assert_max_num_queries(5):
        client.get(url)


def test_an_orgs_settings_page_has_a_budget(world, api_as, django_assert_max_num_queries):
    client = api_as(world.tenant_admin)
    url = f"/api/v1/orgs/{world.campaigns.pk}/settings"
    count, body = queries(client, url)
    assert body["count"] == len(body["results"]) > 0
    assert count <= 4
    with django_assert_max_num_queries(4):
        assert client.get(url).status_code == 200


def test_the_audit_log_with_filters_costs_the_same_for_five_or_fifty(world, api_as, django_assert_max_num_queries):
    client = api_as(world.tenant_admin)
    url = f"/api/v1/orgs/{world.root.pk}/audit-events?action=budget.test&since=2020-01-01T00:00:00Z"
    counts = []
    for total in (5, 50):
        for _ in range(total - AuditEvent.objects.filter(action="budget.test").count()):
            audit.record(
                actor=world.tenant_admin, action="budget.test", tenant=world.acme, org=world.root, target=world.root
            )
        count, body = queries(client, url)
        assert body["count"] == total and len(body["results"]) == min(total, 50)
        counts.append(count)
    assert counts[0] == counts[1] <= 5
    with django_assert_max_num_queries(5):
        client.get(url)
