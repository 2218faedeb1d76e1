"""The run page (console) says how many workload identity tokens the run's agent got, for runs whose steps can ask
for one; other runs' pages show nothing about it and cost no query more."""

from __future__ import annotations

import re

from tests.runtimes.queue_helpers import make_task
from tests.workload.helpers import claimed_run, identity_task


def count_on(page: str) -> str | None:
    found = re.search(r'id="run-identity-tokens">(\d+)<', page)
    return found.group(1) if found else None


def test_the_run_page_counts_the_identity_tokens_issued(world, signing_keys, edge, as_user):
    claimed = claimed_run(edge, identity_task(world.website))
    page = f"/o/{world.marketing.pk}/runs/{claimed.run.pk}/"
    client = as_user(world.tenant_admin)
    response = client.get(page)
    assert response.status_code == 200 and count_on(response.content.decode()) == "0"
    claimed.ask()
    claimed.ask()
    assert count_on(client.get(page).content.decode()) == "2"


def test_a_run_without_identity_steps_shows_no_count(world, signing_keys, edge, as_user):
    claimed = claimed_run(edge, make_task(world.website, "Plain"))
    response = as_user(world.tenant_admin).get(f"/o/{world.marketing.pk}/runs/{claimed.run.pk}/")
    assert response.status_code == 200 and "Identity tokens issued" not in response.content.decode()


def test_another_tenants_admin_gets_404_on_the_run_page(world, signing_keys, edge, as_user):
    claimed = claimed_run(edge, identity_task(world.website))
    claimed.ask()
    response = as_user(world.other_admin).get(f"/o/{world.marketing.pk}/runs/{claimed.run.pk}/")
    assert response.status_code == 404 and "Identity tokens issued" not in response.content.decode()
