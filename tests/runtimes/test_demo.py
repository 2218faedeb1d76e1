"""The demo (manage.py seed_demo → runtimes.demo): the platform's global runtime that `make run` serves, a sovereign
local runtime at Logistics with a locked allowed_runtimes, and tasks placed where the demo says; idempotent."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client

from config.errors import Conflict
from orgs.models import Organization
from resources import services as rs
from resources.models import Credential, OrgSetting, Run, Task
from resources.settings_registry import setting_value
from runtimes.models import EnrollmentToken, Runtime
from runtimes.placement import place


@pytest.fixture
def seeded(db, settings):
    settings.DEBUG = True
    settings.SITE_URL = "http://127.0.0.1:8123"
    first = StringIO()
    call_command("seed_demo", stdout=first)
    return first.getvalue()


def counts() -> tuple[int, ...]:
    return (Runtime.objects.count(), EnrollmentToken.objects.count(), Task.objects.count(), Run.objects.count(),
            Credential.objects.count(), OrgSetting.objects.count())  # fmt: skip


def test_the_demo_has_the_platform_runtime_and_a_sovereign_local_one_for_logistics(seeded):
    platform = Runtime.objects.get(name="platform")
    assert platform.org_id is None and platform.kind == "global" and platform.is_platform_default
    assert platform.all_tenants and platform.allow_private_network
    local = Runtime.objects.get(name="eu-local")
    logistics = Organization.objects.get(tenant__name="Acme", name="Logistics")
    assert local.org_id == logistics.pk and local.kind == "local" and local.sovereign
    allowed = OrgSetting.objects.get(org=logistics, key="allowed_runtimes")
    assert allowed.value == ["eu-local"] and allowed.locked
    warehousing = Organization.objects.get(name="Warehousing")
    assert setting_value(warehousing, "allowed_runtimes") == ["eu-local"]  # inherited below
    # the agent command of eu-local is printed once, with its one-time token (only the hash is stored)
    assert "python -m runtimes.agent --url http://127.0.0.1:8123" in seeded and "--enrollment-token cne_" in seeded
    raw = seeded.split("--enrollment-token ")[1].split()[0]
    assert not EnrollmentToken.objects.filter(token_hash=raw).exists()


def test_seed_demo_twice_creates_nothing_more(seeded, settings):
    before = counts()
    again = StringIO()
    call_command("seed_demo", stdout=again)
    assert counts() == before
    assert "--enrollment-token" not in again.getvalue()  # no new token on a second seed


def test_demo_tasks_are_placed_on_platform_and_logistics_on_eu_local(seeded):
    health = Task.objects.get(name="Health check")
    assert place(health).name == "platform"
    assert place(Task.objects.get(name="Country report")).name == "platform"
    assert place(Task.objects.get(name="Carrier sync")).name == "eu-local"
    http = next(step for step in health.steps if step["type"] == "http")
    assert http["url"] == "http://127.0.0.1:8123/api/v1/health"  # the dev server's own health endpoint
    carrier = Credential.objects.get(name="Carrier API")
    assert carrier.source == "runtime" and carrier.secret_ciphertext == "" and carrier.secret_names == []
    # the demo's runs of the newsletter went to the platform too, and the history of each task where it runs today
    where = [("Publish newsletter", "platform"), ("Country report", "platform"), ("Carrier sync", "eu-local")]
    for task, runtime in where:
        assert set(Run.objects.filter(task__name=task).values_list("runtime_name", flat=True)) == {runtime}


def test_logistics_cannot_escape_its_locked_runtime(seeded):
    ivan = Organization.objects.get(name="Logistics").tenant.memberships.get(user__username="ivan").user
    warehousing = Organization.objects.get(name="Warehousing")
    acme_admin = warehousing.tenant.memberships.get(user__username="acme-admin").user
    with pytest.raises(Conflict):  # not even the tenant admin overrides a lock from below
        rs.set_setting(actor=acme_admin, org=warehousing, key="allowed_runtimes", value=["platform"])
    sync = Task.objects.get(name="Carrier sync")
    platform = Runtime.objects.get(name="platform")
    with pytest.raises(ValidationError):  # the task cannot name the platform runtime
        rs.update_task(actor=ivan, task=sync, runtime=platform)
    assert Task.objects.get(pk=sync.pk).runtime_id is None
    assert setting_value(warehousing, "allowed_runtimes") == ["eu-local"]


def test_the_demo_health_endpoint_the_task_calls_answers(seeded):
    assert Client().get("/api/v1/health").status_code == 200
