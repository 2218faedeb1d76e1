"""The run page (console) and the log tail it polls (GET /api/v1/runs/{id}/logs?after=): where the run runs, its
attempt, status and times, per-step results, the error and the log; a sovereign run's log is kept on the runtime;
Stop for active runs; nothing for who cannot see the run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from config.actors import SYSTEM
from resources import services
from resources.models import Run, RunLogLine, Task
from runtimes.models import Runtime

STEPS = [
    {"type": "log", "name": "hello", "message": "hi"},
    {"type": "transform", "name": "shape", "expression": "env", "into": "shaped"},
    {"type": "log", "name": "bye", "message": "bye"},
]


@pytest.fixture
def platform(world: Any) -> Runtime:
    """The platform's default global runtime (the world may have made it already)."""
    existing = Runtime.objects.filter(org__isnull=True, is_platform_default=True).first()
    return existing or Runtime.objects.create(
        name="platform", kind=Runtime.Kind.GLOBAL, org=None, all_tenants=True, is_platform_default=True
    )


@pytest.fixture
def task(world: Any) -> Task:
    return services.create_task(actor=SYSTEM, project=world.website, name="Sync", steps=STEPS)


def make_run(task: Task, runtime: Runtime | None, **fields: Any) -> Run:
    name = runtime.name if runtime else ""
    defaults: dict[str, Any] = {"steps": task.steps, "runtime": runtime, "runtime_name": name}
    return Run.objects.create(task=task, **(defaults | fields))


def add_lines(run: Run, *messages: str, start: int = 1, level: str = "info") -> None:
    now = timezone.now()
    RunLogLine.objects.bulk_create(
        RunLogLine(run=run, seq=start + i, at=now + timedelta(milliseconds=i), level=level, message=m)
        for i, m in enumerate(messages)
    )


def page_of(client: Any, world: Any, run: Run) -> Any:
    return client.get(f"/o/{world.marketing.pk}/runs/{run.pk}/")


def test_the_page_shows_runtime_attempt_times_step_results_error_and_log(world, task, platform, as_user):
    now = timezone.now()
    run = make_run(
        task, platform, status=Run.Status.FAILED, attempt=2, started_at=now, finished_at=now,
        error="Step 2 (shape) failed: expression error",
        step_results=[{"index": 0, "status": "succeeded", "ms": 12},
                      {"index": 1, "status": "failed", "ms": 3, "error": "expression error"},
                      {"index": 2, "status": "skipped", "ms": 0}],
    )  # fmt: skip
    add_lines(run, "Queued by alice with 3 step(s).", "hi there", "boom")
    response = page_of(as_user(world.tenant_admin), world, run)
    html = response.content.decode()
    assert response.status_code == 200
    assert "platform" in html and "global (run by the platform)" in html
    assert '<dd id="run-attempt">2</dd>' in html
    assert 'data-status="failed"' in html and "Step 2 (shape) failed: expression error" in html
    for text in ("hello", "shape", "bye", "12 ms", "3 ms", 'data-status="skipped"', "expression error"):
        assert text in html, text
    assert html.index("Queued by alice") < html.index("hi there") < html.index("boom")
    assert 'data-active="false"' in html and "run-log.js" not in html  # finished: no live tail
    assert 'value="stop"' not in html


@pytest.mark.parametrize("status", [Run.Status.QUEUED, Run.Status.CLAIMED, Run.Status.RUNNING])
def test_an_active_run_gets_the_live_tail_a_refresh_link_and_stop(world, task, platform, as_user, status):
    run = make_run(task, platform, status=status)
    add_lines(run, "one", "two")
    html = page_of(as_user(world.tenant_admin), world, run).content.decode()
    assert "js/run-log.js" in html and 'data-active="true"' in html and 'data-after="2"' in html
    assert f'data-logs-api="/api/v1/runs/{run.pk}/logs"' in html
    assert "Refresh</a>" in html  # without JavaScript
    assert 'value="stop"' in html
    assert f'data-status="{status}"' in html


def test_claimed_and_lost_runs_show_their_status_on_the_task_page(world, task, platform, as_user):
    make_run(task, platform, status=Run.Status.CLAIMED)
    make_run(task, platform, status=Run.Status.LOST, attempt=2)
    html = as_user(world.tenant_admin).get(f"/o/{world.marketing.pk}/tasks/{task.pk}/").content.decode()
    assert '<span class="badge" data-status="claimed">claimed</span>' in html
    assert '<span class="badge no" data-status="lost">lost</span>' in html and "attempt 2" in html


def test_stop_on_a_claimed_run_asks_the_runtime_to_stop(world, task, platform, as_user):
    run = make_run(task, platform, status=Run.Status.CLAIMED)
    response = as_user(world.tenant_admin).post(
        f"/o/{world.marketing.pk}/runs/{run.pk}/", {"action": "stop", "confirmed": "1"}
    )
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == Run.Status.STOP_REQUESTED and run.stopped_by == world.tenant_admin


def test_a_guest_sees_the_run_but_cannot_stop_it(world, people, task, platform, as_user):
    run = make_run(task, platform, status=Run.Status.RUNNING)
    client = as_user(people["guest"])
    html = page_of(client, world, run).content.decode()
    assert 'value="stop"' not in html
    assert (
        client.post(f"/o/{world.marketing.pk}/runs/{run.pk}/", {"action": "stop", "confirmed": "1"}).status_code == 403
    )
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING and run.stopped_by is None


def test_another_tenant_gets_404_for_the_page_and_the_log(world, task, platform, as_user, api_as):
    run = make_run(task, platform, status=Run.Status.RUNNING)
    add_lines(run, "confidential")
    gina = as_user(world.other_admin)
    assert page_of(gina, world, run).status_code == 404
    assert gina.get(f"/o/{world.globex_root.pk}/runs/{run.pk}/").status_code == 404
    assert gina.post(f"/o/{world.marketing.pk}/runs/{run.pk}/", {"action": "stop", "confirmed": "1"}).status_code == 404
    api = api_as(world.other_admin)
    for path in (f"/api/v1/runs/{run.pk}", f"/api/v1/runs/{run.pk}/logs?after=0"):
        response = api.get(path)
        assert response.status_code == 404 and "confidential" not in response.content.decode()
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING


def test_a_sovereign_run_says_where_its_log_is_and_shows_only_levels_and_times(world, task, as_user):
    local = Runtime.objects.create(name="eu-local", kind=Runtime.Kind.LOCAL, org=world.root, sovereign=True)
    run = make_run(
        task, local, sovereign=True, status=Run.Status.SUCCEEDED, log_location="/var/lib/canopy-agent/runs/x.log",
        step_results=[{"index": 0, "status": "succeeded", "ms": 5}],
    )  # fmt: skip
    add_lines(run, "", "", level="warning")  # the server keeps no text of a sovereign run's lines
    html = page_of(as_user(world.tenant_admin), world, run).content.decode()
    assert "This run&#x27;s log is kept on the runtime" in html or "This run's log is kept on the runtime" in html
    assert "/var/lib/canopy-agent/runs/x.log" in html and ">sovereign<" in html
    assert html.count("kept on the runtime</span>") == 2 and html.count("<td>warning</td>") == 2


def test_the_page_shows_only_the_tail_of_a_long_log_in_a_bounded_number_of_queries(
    world, task, platform, as_user, django_assert_max_num_queries
):
    run = make_run(task, platform, status=Run.Status.RUNNING)
    add_lines(run, *[f"line {i}" for i in range(1, 1106)])
    client = as_user(world.tenant_admin)
    page_of(client, world, run)
    with django_assert_max_num_queries(25):
        html = page_of(client, world, run).content.decode()
    assert "line 1105" in html and "line 106<" in html and "line 105<" not in html
    assert "The last 1000 lines" in html and 'data-after="1105"' in html


# -- the log tail the page polls -------------------------------------------------------------------------------------


def test_the_log_api_gives_the_lines_after_a_seq_with_the_browser_session(world, task, platform, as_user):
    run = make_run(task, platform, status=Run.Status.RUNNING)
    add_lines(run, "a", "b", "c", "d")
    client = as_user(world.tenant_admin)  # the session, as the page's script uses it
    body = client.get(f"/api/v1/runs/{run.pk}/logs?after=2", HTTP_ACCEPT="application/json").json()
    assert [line["seq"] for line in body["results"]] == [3, 4] and body["results"][0]["message"] == "c"
    assert client.get(f"/api/v1/runs/{run.pk}/logs?after=4").json()["results"] == []
    assert len(client.get(f"/api/v1/runs/{run.pk}/logs").json()["results"]) == 4  # without: every line
    for bad in ("x", "-1", "99999999999"):
        response = client.get(f"/api/v1/runs/{run.pk}/logs?after={bad}")
        assert response.status_code == 400 and "after" in response.json()
    detail = client.get(f"/api/v1/runs/{run.pk}").json()
    assert detail["status"] == "running" and detail["runtime"] == str(platform.pk)
    assert detail["runtime_name"] == "platform" and detail["attempt"] == 1 and detail["step_results"] == []


def test_the_session_cannot_write_through_the_api_without_csrf(world, task, platform):
    run = make_run(task, platform, status=Run.Status.RUNNING)
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.tenant_admin)
    assert client.post(f"/api/v1/runs/{run.pk}/stop").status_code == 403
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING


def test_the_schema_documents_after_and_the_run_fields(api):
    schema = api.get("/api/v1/schema/?format=json").json()
    logs = schema["paths"]["/api/v1/runs/{id}/logs"]["get"]
    assert "after" in [p["name"] for p in logs["parameters"]]
    run = schema["components"]["schemas"]["Run"]["properties"]
    assert {"runtime", "runtime_name", "attempt", "step_results", "log_location", "sovereign"} <= set(run)


def test_the_live_tail_script_is_served(client):
    response = client.get("/static/js/run-log.js")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert response.status_code == 200 and b"?page_size=200&after=" in body and b"innerHTML" not in body


def test_the_runtime_is_a_link_only_for_who_may_see_it(world, people, task, platform, as_user):
    on_platform = make_run(task, platform, status=Run.Status.SUCCEEDED)
    html = page_of(as_user(people["admin"]), world, on_platform).content.decode()
    assert f'href="/o/{world.marketing.pk}/runtimes/{platform.pk}/"' in html  # offered to the tenant: visible
    # a runtime declared at Logistics, outside Marketing's admin's sight: its name, no link
    logistics = Runtime.objects.create(name="wh-local", kind=Runtime.Kind.LOCAL, org=world.logistics)
    elsewhere = make_run(task, logistics, status=Run.Status.SUCCEEDED)
    html = page_of(as_user(people["admin"]), world, elsewhere).content.decode()
    assert "wh-local" in html and f"/runtimes/{logistics.pk}/" not in html
    client = as_user(world.tenant_admin)
    html = page_of(client, world, elsewhere).content.decode()
    link = f"/o/{world.logistics.pk}/runtimes/{logistics.pk}/"  # the tenant admin sees it: at its own org
    assert f'href="{link}"' in html and client.get(link).status_code == 200
