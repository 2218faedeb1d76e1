"""Placement (runtimes.placement): the task's runtime, else the effective default_runtime, else the platform's default;
always inside the effective list and the effective allowed_runtimes. A locked allowed_runtimes cannot be escaped: not
by the task's runtime (400), not at run time (409 ``placement``, nothing queued), not by overriding it below, not by
moving the project's org under the locked subtree."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from access.models import AuditEvent
from config.actors import SYSTEM
from config.errors import Conflict
from orgs import services as org_services
from resources import services as resource_services
from resources.models import Run, Task
from runtimes import placement, services
from runtimes.models import Runtime
from tests.factories import make_project

pytestmark = pytest.mark.django_db


def local(org: Any, name: str, **fields: Any) -> Runtime:
    return services.create_local_runtime(actor=SYSTEM, org=org, name=name, **fields).runtime


def restrict(org: Any, names: list[str], *, locked: bool = True) -> None:
    resource_services.set_setting(actor=SYSTEM, org=org, key="allowed_runtimes", value=names, locked=locked)


def task_in(project: Any, runtime: Runtime | None = None, name: str = "sync") -> Task:
    return Task.objects.create(project=project, name=name, steps=[{"type": "log", "message": "hi"}], runtime=runtime)


def test_a_run_goes_to_the_task_runtime_else_the_default_setting_else_the_platform(world, monkeypatch) -> None:
    woken: list[Any] = []
    monkeypatch.setattr("runtimes.wakeup.wake", woken.append)
    platform = Runtime.objects.get(is_platform_default=True)
    edge = local(world.marketing, "edge", sovereign=True)
    local(world.root, "corporate")
    plain = task_in(world.website)
    run = resource_services.run_task(actor=SYSTEM, task=plain)
    assert (run.runtime, run.runtime_name, run.sovereign, run.status) == (platform, "platform", False, "queued")
    resource_services.set_setting(actor=SYSTEM, org=world.root, key="default_runtime", value="Corporate")
    assert resource_services.run_task(actor=SYSTEM, task=plain).runtime.name == "corporate"
    pinned = task_in(world.website, edge, "pinned")
    run = resource_services.run_task(actor=SYSTEM, task=pinned)
    assert (run.runtime, run.runtime_name, run.sovereign) == (edge, "edge", True)
    assert woken == [platform.pk, Runtime.objects.get(name="corporate").pk, edge.pk]


def test_a_default_runtime_that_names_nothing_usable_refuses_the_run(world) -> None:
    local(world.logistics, "trucks")  # exists, but not on Marketing's path
    resource_services.set_setting(actor=SYSTEM, org=world.marketing, key="default_runtime", value="trucks")
    with pytest.raises(Conflict) as refused:
        placement.place(task_in(world.website))
    assert refused.value.code == "placement" and "trucks" in refused.value.detail
    assert "Marketing" in refused.value.detail


def test_without_any_runtime_the_run_is_refused(world) -> None:
    Runtime.objects.filter(is_platform_default=True).delete()
    with pytest.raises(Conflict) as refused:
        placement.place(task_in(world.website))
    assert refused.value.code == "placement"


def test_a_task_runtime_outside_the_allowed_ones_is_a_field_error(world, people) -> None:
    edge = local(world.marketing, "edge")
    eu = local(world.root, "eu-local")
    restrict(world.root, ["eu-local"])
    with pytest.raises(ValidationError) as refused:
        resource_services.create_task(actor=people["admin"], project=world.website, name="t", runtime=edge)
    (message,) = refused.value.message_dict["runtime"]
    assert "edge" in message and "Acme" in message and "eu-local" in message  # names the runtime and the org
    assert not Task.objects.filter(name="t").exists()
    task = resource_services.create_task(actor=people["admin"], project=world.website, name="t", runtime=eu)
    assert task.runtime == eu
    with pytest.raises(ValidationError):
        resource_services.update_task(actor=people["admin"], task=task, runtime=edge)
    assert Task.objects.get(pk=task.pk).runtime == eu


def test_a_task_cannot_name_a_runtime_its_editor_does_not_see_or_its_org_cannot_use(world, people) -> None:
    theirs = local(world.globex_root, "globex-box")
    sibling = local(world.logistics, "trucks")
    for runtime in (theirs, sibling):
        with pytest.raises(ValidationError) as refused:
            resource_services.create_task(actor=people["admin"], project=world.website, name="t", runtime=runtime)
        assert refused.value.message_dict == {"runtime": ["No such runtime."]}  # not even its name is said back
    # the tenant admin sees Logistics' runtime, but the project's org cannot use it
    with pytest.raises(ValidationError) as refused:
        resource_services.create_task(actor=world.tenant_admin, project=world.website, name="t", runtime=sibling)
    assert "not usable in Marketing" in refused.value.message_dict["runtime"][0]
    assert not Task.objects.filter(name="t").exists()


def test_a_locked_allowed_runtimes_refuses_the_run_and_queues_nothing(world, people) -> None:
    platform = Runtime.objects.get(is_platform_default=True)
    task = resource_services.create_task(actor=people["admin"], project=world.website, name="t", runtime=platform)
    local(world.root, "eu-local")
    restrict(world.root, ["eu-local"])  # set after the task was saved
    runs, events = Run.objects.count(), AuditEvent.objects.filter(action="run.create").count()
    with pytest.raises(Conflict) as refused:
        resource_services.run_task(actor=people["admin"], task=task)
    assert refused.value.code == "placement"
    assert "platform" in refused.value.detail and "Acme" in refused.value.detail
    assert Run.objects.count() == runs and AuditEvent.objects.filter(action="run.create").count() == events
    # the default placement (the platform's runtime) is refused the same way
    with pytest.raises(Conflict):
        resource_services.run_task(actor=people["admin"], task=task_in(world.website, name="plain"))


def test_a_lower_org_cannot_override_a_locked_allowed_runtimes(world, people) -> None:
    local(world.root, "eu-local")
    restrict(world.root, ["eu-local"])
    with pytest.raises(Conflict) as locked:
        resource_services.set_setting(
            actor=world.tenant_admin, org=world.marketing, key="allowed_runtimes", value=["platform"]
        )
    assert locked.value.code == "locked"
    with pytest.raises(Conflict):
        placement.place(task_in(world.website))


def test_an_unlocked_restriction_can_be_widened_below(world) -> None:
    local(world.root, "eu-local")
    restrict(world.root, ["eu-local"], locked=False)
    resource_services.set_setting(actor=SYSTEM, org=world.marketing, key="allowed_runtimes", value=[])
    assert placement.place(task_in(world.website)).name == "platform"


def test_moving_the_project_org_under_a_locked_subtree_refuses_its_runs(world, people) -> None:
    local(world.logistics, "eu-local")
    restrict(world.logistics, ["eu-local"])
    platform = Runtime.objects.get(is_platform_default=True)
    task = resource_services.create_task(actor=people["admin"], project=world.website, name="t", runtime=platform)
    assert resource_services.run_task(actor=people["admin"], task=task).runtime == platform
    org_services.move_org(actor=world.tenant_admin, org=world.marketing, parent=world.logistics)
    task = Task.objects.select_related("project__org").get(pk=task.pk)
    runs = Run.objects.count()
    with pytest.raises(Conflict) as refused:
        resource_services.run_task(actor=people["admin"], task=task)
    assert refused.value.code == "placement" and "Logistics" in refused.value.detail
    assert Run.objects.count() == runs


def test_a_paused_runtime_is_still_placed_its_runs_wait(world) -> None:
    edge = local(world.marketing, "edge", paused=True)
    run = resource_services.run_task(actor=SYSTEM, task=task_in(world.website, edge))
    assert run.runtime == edge and run.status == Run.Status.QUEUED


def test_a_hidden_runtime_is_not_placed(world, people) -> None:
    services.hide_runtime(actor=people["admin"], org=world.marketing, name="platform")
    with pytest.raises(Conflict) as refused:
        placement.place(task_in(world.website))
    assert "hidden" in refused.value.detail
    other = make_project(world.logistics, "Elsewhere")
    assert placement.place(task_in(other)).name == "platform"


def test_the_task_form_choices_are_the_allowed_effective_runtimes(world, people) -> None:
    local(world.marketing, "edge")
    local(world.root, "eu-local")
    assert {row.runtime.name for row in placement.allowed_rows(world.marketing, people["guest"])} == {
        "edge", "eu-local", "platform",
    }  # fmt: skip
    restrict(world.root, ["eu-local", "EDGE"])
    assert {row.runtime.name for row in placement.allowed_rows(world.marketing)} == {"edge", "eu-local"}
