"""Sign-up as a service, check_org_tree catching corruption, purge and seed commands, and settings rules."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.utils import timezone

from access import audit, policy
from access.models import OrgUserGrant, TenantMembership
from config.errors import Conflict, Forbidden
from orgs import services
from orgs.integrity import tree_problems
from orgs.models import Organization, Tenant
from resources import inheritance
from resources.models import Component, Credential, LookupTable, Run, Task
from tests.factories import PASSWORD
from workload.models import SigningKey

ROOT = Path(__file__).resolve().parent.parent


def test_sign_up_makes_user_tenant_root_and_admin_together(db):
    result = services.sign_up(tenant_name="Initech", username="peter", email="p@initech.example", password=PASSWORD)
    assert result.tenant.plan == "free" and result.org.is_root and result.org.tenant == result.tenant
    assert TenantMembership.objects.get(user=result.user, tenant=result.tenant).is_admin
    # No staff bit: the admin site opens to tenant administrators by their membership (config/admin.py).
    assert not result.user.is_staff and not result.user.is_superuser
    assert not result.user.email_verified  # until the link sent to the address is opened
    assert OrgUserGrant.objects.get(user=result.user).role.key == "admin"


def test_a_failure_half_way_through_sign_up_leaves_nothing(db, monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(audit, "record", explode)
    with pytest.raises(RuntimeError):
        services.sign_up(tenant_name="Initech", username="peter", email="p@initech.example", password=PASSWORD)
    assert not Tenant.objects.exists() and not get_user_model().objects.exists()
    assert not Organization.objects.exists()


def test_sign_up_refuses_bad_fields_by_name(db):
    with pytest.raises(ValidationError) as excinfo:
        services.sign_up(tenant_name=" ", username="bad name!", email="nope", password="123")
    assert set(excinfo.value.message_dict) == {"tenant_name", "username", "email", "password"}


def test_sign_up_refuses_a_taken_username(world):
    with pytest.raises(Conflict):
        services.sign_up(tenant_name="X", username="ALICE", email="a@example.com", password=PASSWORD)


def test_sign_up_can_be_disabled(db, settings):
    settings.SIGNUP_ENABLED = False
    with pytest.raises(Forbidden):
        services.sign_up(tenant_name="X", username="x", email="x@example.com", password=PASSWORD)


def test_each_tenant_gets_a_tree_of_its_own(world):
    tree_ids = list(Organization.objects.filter(parent__isnull=True).values_list("tree_id", flat=True))
    assert len(tree_ids) == len(set(tree_ids)) == 2


def test_check_org_tree_passes_on_a_sound_tree(world):
    out = StringIO()
    call_command("check_org_tree", stdout=out)
    assert "OK: 2 tenant(s), 6 organization(s)." in out.getvalue()


@pytest.mark.parametrize(
    "corruption",
    [
        {"lft": 99},
        {"rght": 3},
        {"level": 7},
        {"tree_id": 999},
    ],
)
def test_check_org_tree_catches_a_corrupted_node_and_names_the_tenant(world, corruption):
    Organization.objects.filter(pk=world.emea.pk).update(**corruption)
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("check_org_tree", stderr=err)
    assert "Acme" in err.getvalue()
    assert "Globex" not in err.getvalue()


def test_check_org_tree_catches_a_parent_link_that_disagrees(world):
    Organization.objects.filter(pk=world.campaigns.pk).update(parent=world.logistics)
    assert any("Acme" in problem for problem in tree_problems())


def test_the_database_refuses_two_roots_in_one_tree(world):

    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.filter(pk=world.globex_root.pk).update(tree_id=world.root.tree_id)


def test_check_org_tree_catches_a_node_in_another_tenants_tree(world):
    Organization.objects.filter(pk=world.logistics.pk).update(tenant=world.globex)
    problems = tree_problems()
    assert any("Globex" in p for p in problems) and any("Acme" in p for p in problems)


def test_purge_command_reports_what_it_removed(world):
    services.delete_org(actor=world.tenant_admin, org=world.logistics)
    out = StringIO()
    call_command("purge_deleted_orgs", "--older-than-days", "0", stdout=out)
    assert "Purged 1 organization(s)" in out.getvalue()
    assert tree_problems() == []


def test_seed_demo_is_idempotent_and_deep(db, settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())
    counts = (Organization.objects.count(), OrgUserGrant.objects.count(), get_user_model().objects.count())
    keys = list(SigningKey.objects.order_by("kid").values_list("kid", "state"))
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert (Organization.objects.count(), OrgUserGrant.objects.count(), get_user_model().objects.count()) == counts
    # Workload identity works at once (an active key and the next one published), and a second seed rotates nothing.
    assert sorted(state for _, state in keys) == ["active", "next"]
    assert list(SigningKey.objects.order_by("kid").values_list("kid", "state")) == keys
    assert "acme-admin" in out.getvalue() and "canopy-demo" in out.getvalue()
    assert Organization.objects.filter(tenant__name="Acme").order_by("-level").first().level >= 3
    assert Organization.objects.filter(tenant__name="Globex").count() == 1
    assert tree_problems() == []


def test_seed_demo_shows_inheritance_at_work(db, settings):

    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())
    # + the runtimes demo (runtimes.demo): a credential kept on eu-local and three tasks (tests/runtimes/test_demo.py);
    # the two runs of today, beside thirty days of history (orgs/demo_history.py, written once: seeded twice here)
    today = Run.objects.filter(created_at__gte=timezone.now() - timedelta(hours=1))
    assert (Credential.objects.count(), LookupTable.objects.count(), Task.objects.count(), today.count()) == (
        3,
        2,
        4,
        2,
    )
    history = Run.objects.exclude(pk__in=today)
    assert set(history.values_list("status", flat=True)) == {"succeeded", "failed"}
    oldest = history.order_by("created_at").values_list("created_at", flat=True).first()
    assert timezone.now() - timedelta(days=31) < oldest < timezone.now() - timedelta(days=29)
    size = Run.objects.count()
    call_command("seed_demo", stdout=StringIO())
    assert Run.objects.count() == size
    campaigns = Organization.objects.get(name="Campaigns")
    countries = inheritance.effective(LookupTable, campaigns)
    assert [(e.org.name, e.inherited, e.overrides is not None) for e in countries] == [("Marketing", True, True)]
    assert inheritance.effective(LookupTable, Organization.objects.get(name="Customer Success")) == []
    crm = inheritance.effective(Credential, campaigns)[0]
    assert crm.locked and crm.item.name == "CRM"
    assert Component.objects.get(name="Parser").members.get().user.username == "carla"


def test_seed_demo_refuses_to_run_without_debug(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("seed_demo", stdout=StringIO())
    assert not Tenant.objects.exists()
    call_command("seed_demo", "--allow-production", stdout=StringIO())
    assert Tenant.objects.count() == 2


def _settings_with(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
         "print(settings.DATABASES['default']['ENGINE'])"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = _settings_with({"DEBUG": "False"})
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_development_settings_use_sqlite_by_default_and_honour_database_url():
    assert "sqlite3" in _settings_with({"DEBUG": "True"}).stdout
    result = _settings_with({"DEBUG": "True", "DATABASE_URL": "postgres://u@127.0.0.1:5432/x"})
    assert "postgresql" in result.stdout


def test_a_new_tenant_never_renumbers_another_tenants_tree(world):
    """mptt sorts root trees by name if asked: a sign-up must not shift every other tenant's tree_id."""
    before = dict(Organization.objects.values_list("pk", "tree_id"))
    services.sign_up(tenant_name="Aardvark", username="aardvark", email="a@aardvark.example", password=PASSWORD)
    after = dict(Organization.objects.values_list("pk", "tree_id"))
    assert all(after[pk] == tree_id for pk, tree_id in before.items())
    assert tree_problems() == []


def test_seed_scale_builds_a_sound_tenant_with_a_chain_and_a_bench_user(db):

    out = StringIO()
    call_command("seed_scale", "--orgs", "300", "--depth", "40", "--users", "30", "--tasks", "50", "--quiet",
                 stdout=out)  # fmt: skip
    tenant = Tenant.objects.get(name="Scale-300")
    assert Organization.objects.filter(tenant=tenant).count() == 300
    assert tree_problems(tenant) == []
    deepest = Organization.objects.get(tenant=tenant, name="chain-40")
    assert deepest.level == 40
    bench = get_user_model().objects.get(username="scale-300-bench")
    assert policy.can(bench, "task.run", deepest)
    assert not policy.can(bench, "org.view", Organization.objects.get(tenant=tenant, parent__isnull=True))
