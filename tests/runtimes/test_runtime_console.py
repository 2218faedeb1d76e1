"""The console's runtime pages: the Runtimes tab, the effective list with status, registering a runtime (the token
and command shown once, never cached), a runtime's page and its writes (pause/resume, revoke, new enrollment token,
delete) with the role table, CSRF and stale versions; the task form's runtime choice; the settings page's
allowed_runtimes."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from access.models import AuditEvent, hash_token
from config.actors import SYSTEM
from resources import services as resource_services
from resources.models import Hidden, Run, Task
from runtimes import services, tokens
from runtimes.models import AgentToken, EnrollmentToken, Runtime, RuntimeInstance

pytestmark = pytest.mark.django_db


def local(org: Any, name: str = "edge", **fields: Any) -> Runtime:
    return services.create_local_runtime(actor=SYSTEM, org=org, name=name, **fields).runtime


def test_the_runtimes_tab_and_list(world, people, as_user) -> None:
    edge = local(world.marketing, sovereign=True, labels=["eu"])
    Runtime.objects.filter(pk=edge.pk).update(last_seen=timezone.now(), agent_version="2.0.1")
    local(world.root, "corporate")
    client = as_user(people["guest"])
    overview = client.get(reverse("org", args=[world.marketing.pk])).content.decode()
    assert f'href="{reverse("runtimes", args=[world.marketing.pk])}"' in overview
    page = client.get(reverse("runtimes", args=[world.marketing.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    for text in ("edge", "corporate", "inherited from Acme", "platform", "status-online", "2.0.1", "sovereign",
                 "never connected"):  # fmt: skip
        assert text in html, text
    assert "Register a local runtime" not in html  # a Guest does not manage runtimes
    assert 'aria-current="page">Runtimes' in html


@pytest.mark.parametrize("who", ["newcomer", "other tenant admin"])
def test_pages_of_an_org_without_a_role_are_404(world, people, as_user, who: str) -> None:
    edge = local(world.marketing)
    client = as_user(world.other_admin if who == "other tenant admin" else people[who])
    assert client.get(reverse("runtimes", args=[world.marketing.pk])).status_code == 404
    assert client.get(reverse("runtime", args=[world.marketing.pk, edge.pk])).status_code == 404
    response = client.post(reverse("runtime", args=[world.marketing.pk, edge.pk]), {"action": "pause", "version": 1})
    assert response.status_code == 404
    assert Runtime.objects.get(pk=edge.pk).paused is False


def test_a_runtime_of_another_org_is_404_under_this_org(world, people, as_user) -> None:
    trucks = local(world.logistics, "trucks")
    client = as_user(world.tenant_admin)  # sees both orgs
    assert client.get(reverse("runtime", args=[world.marketing.pk, trucks.pk])).status_code == 404
    assert client.get(reverse("runtime", args=[world.logistics.pk, trucks.pk])).status_code == 200


def test_an_admin_registers_a_runtime_the_token_is_shown_once(world, people, as_user) -> None:
    client = as_user(people["admin"])
    url = reverse("runtimes", args=[world.marketing.pk])
    assert "Register a local runtime" in client.get(url).content.decode()
    response = client.post(url, {"action": "create", "name": "edge", "labels": "eu, gpu", "sovereign": "on"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    runtime = Runtime.objects.get(name="edge")
    token = EnrollmentToken.objects.get(runtime=runtime)
    raw = next(word for word in html.replace("<", " ").replace(">", " ").split() if word.startswith("cne_"))
    assert token.token_hash == hash_token(raw)
    assert "python -m runtimes.agent" in html and 'data-copy="agent-command"' in html and "js/copy.js" in html
    assert "<script>" not in html  # no inline script: the CSP allows files only
    assert (runtime.labels, runtime.sovereign, runtime.org) == (["eu", "gpu"], True, world.marketing)
    detail = client.get(reverse("runtime", args=[world.marketing.pk, runtime.pk])).content.decode()
    listing = client.get(url).content.decode()
    assert raw not in detail and raw not in listing


@pytest.mark.parametrize("role", ["integrator", "guest"])
def test_integrators_and_guests_cannot_write(world, people, as_user, role: str) -> None:
    edge = local(world.marketing)
    agent, _ = tokens.issue_agent_token(RuntimeInstance.objects.create(runtime=edge))
    client = as_user(people[role])
    list_url = reverse("runtimes", args=[world.marketing.pk])
    detail_url = reverse("runtime", args=[world.marketing.pk, edge.pk])
    assert client.get(detail_url).status_code == 200
    statuses = [
        client.post(list_url, {"action": "create", "name": "mine"}).status_code,
        client.post(list_url, {"action": "hide", "name": "platform"}).status_code,
        *(client.post(detail_url, {"action": action, "version": 1}).status_code
          for action in ("pause", "revoke", "token", "delete")),
        client.post(detail_url, {"action": "edit", "name": "renamed", "version": 1}).status_code,
    ]  # fmt: skip
    assert statuses == [403] * 7
    edge.refresh_from_db()
    assert (edge.name, edge.paused, edge.version) == ("edge", False, 1)
    assert not Runtime.objects.filter(name="mine").exists() and not Hidden.objects.exists()
    assert EnrollmentToken.objects.filter(runtime=edge).count() == 1
    assert AgentToken.objects.get(pk=agent.pk).revoked_at is None


def test_pause_resume_revoke_token_and_delete(world, people, as_user) -> None:
    edge = local(world.marketing)
    agent, _ = tokens.issue_agent_token(RuntimeInstance.objects.create(runtime=edge, hostname="box-1"))
    client = as_user(people["admin"])
    url = reverse("runtime", args=[world.marketing.pk, edge.pk])
    page = client.get(url).content.decode()
    assert "box-1" in page and "Pause" in page
    assert client.post(url, {"action": "pause", "version": 1}).status_code == 302
    assert Runtime.objects.get(pk=edge.pk).paused is True
    stale = client.post(url, {"action": "resume", "version": 1})
    assert stale.status_code == 409 and Runtime.objects.get(pk=edge.pk).paused is True
    assert client.post(url, {"action": "resume", "version": 2}).status_code == 302
    assert client.post(url, {"action": "revoke", "confirmed": "1"}).status_code == 302
    assert AgentToken.objects.get(pk=agent.pk).revoked_at is not None
    token_page = client.post(url, {"action": "token"})
    assert token_page.status_code == 200 and "cne_" in token_page.content.decode()
    assert "no-store" in token_page["Cache-Control"]
    assert EnrollmentToken.objects.filter(runtime=edge).count() == 2
    edited = client.post(url, {"action": "edit", "name": "edge-2", "labels": "x", "region": "r", "version": 3})
    assert edited.status_code == 302 and Runtime.objects.get(pk=edge.pk).name == "edge-2"
    assert client.post(url, {"action": "delete", "confirmed": "1", "version": 1}).status_code == 409
    assert client.post(url, {"action": "delete", "confirmed": "1", "version": 4}).status_code == 302
    assert not Runtime.objects.filter(pk=edge.pk).exists()
    assert {"runtime.pause", "runtime.resume", "runtime.revoke", "runtime.enrollment_token", "runtime.update",
            "runtime.delete"} <= set(AuditEvent.objects.values_list("action", flat=True))  # fmt: skip


def test_a_busy_runtime_is_not_deleted(world, people, as_user) -> None:
    edge = local(world.marketing)
    resource_services.run_task(actor=SYSTEM, task=Task.objects.create(project=world.website, name="t", runtime=edge))
    response = as_user(people["admin"]).post(
        reverse("runtime", args=[world.marketing.pk, edge.pk]), {"action": "delete", "confirmed": "1", "version": 1}
    )
    assert response.status_code == 409 and "active run" in response.content.decode()
    assert Runtime.objects.filter(pk=edge.pk).exists()


def test_writes_need_the_csrf_token(world, people) -> None:
    edge = local(world.marketing)
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["admin"])
    response = client.post(reverse("runtime", args=[world.marketing.pk, edge.pk]), {"action": "pause", "version": 1})
    assert response.status_code == 403
    assert Runtime.objects.get(pk=edge.pk).paused is False


def test_hide_and_unhide_a_platform_runtime_here(world, people, as_user) -> None:
    client = as_user(people["admin"])
    url = reverse("runtimes", args=[world.marketing.pk])
    assert client.post(url, {"action": "hide", "name": "platform"}).status_code == 302
    hidden = Hidden.objects.get(org=world.marketing, kind="runtime", name="platform")
    html = client.get(url).content.decode()
    assert "Hidden here" in html and 'aria-label="Hide platform here"' not in html
    assert client.post(url, {"action": "unhide", "hidden": str(hidden.pk)}).status_code == 302
    assert not Hidden.objects.exists()


def test_the_global_runtime_page_is_read_only_for_tenant_members(world, people, as_user) -> None:
    platform = Runtime.objects.get(is_platform_default=True)
    client = as_user(world.tenant_admin)
    url = reverse("runtime", args=[world.marketing.pk, platform.pk])
    page = client.get(url)
    assert page.status_code == 200 and "offered by the platform" in page.content.decode()
    assert client.post(url, {"action": "pause", "version": 1}).status_code == 403
    assert Runtime.objects.get(pk=platform.pk).paused is False


def test_the_list_page_has_a_query_budget(world, people, as_user, django_assert_max_num_queries) -> None:
    client = as_user(people["guest"])
    url = reverse("runtimes", args=[world.marketing.pk])
    client.get(url)
    with django_assert_max_num_queries(40) as few:
        client.get(url)
    task = Task.objects.create(project=world.website, name="t")
    for i in range(20):
        runtime = local(world.marketing, f"r{i}")
        RuntimeInstance.objects.create(runtime=runtime, last_heartbeat=timezone.now())
        Run.objects.create(task=task, runtime=runtime, status=Run.Status.RUNNING)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url).status_code == 200


def test_the_task_form_offers_the_allowed_runtimes(world, people, as_user) -> None:
    edge = local(world.marketing)
    trucks = local(world.logistics, "trucks")
    client = as_user(people["admin"])
    url = reverse("tasks", args=[world.marketing.pk, world.website.pk])
    html = client.get(url).content.decode()
    assert f'value="{edge.pk}"' in html and f'value="{trucks.pk}"' not in html and "retry_on_lost" in html
    refused = client.post(url, {"name": "t", "runtime": str(trucks.pk)})
    assert refused.status_code == 400 and not Task.objects.filter(name="t").exists()
    created = client.post(url, {"name": "t", "runtime": str(edge.pk), "retry_on_lost": "on", "no_steps": "on"})
    assert created.status_code == 302
    task = Task.objects.get(name="t")
    assert (task.runtime, task.retry_on_lost) == (edge, True)
    resource_services.set_setting(actor=SYSTEM, org=world.root, key="allowed_runtimes", value=["platform"],
                                  locked=True)  # fmt: skip
    task_url = reverse("task", args=[world.marketing.pk, task.pk])
    page = client.get(task_url).content.decode()
    assert "edge (not allowed here)" in page
    run = client.post(task_url, {"action": "run"})
    assert run.status_code == 409 and "not allowed" in run.content.decode()
    assert not Run.objects.filter(task=task).exists()


def test_the_settings_page_shows_allowed_runtimes(world, people, as_user) -> None:
    resource_services.set_setting(actor=SYSTEM, org=world.root, key="allowed_runtimes", value=["eu-local", "edge"])
    html = as_user(people["guest"]).get(reverse("org-settings", args=[world.marketing.pk])).content.decode()
    assert "eu-local, edge" in html
    resource_services.reset_setting(actor=SYSTEM, org=world.root, key="allowed_runtimes")
    html = as_user(people["guest"]).get(reverse("org-settings", args=[world.marketing.pk])).content.decode()
    assert "any runtime" in html
