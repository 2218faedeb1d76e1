"""Data migrations keep data: invite domains move to the settings registry and back."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("orgs", "0004_fewer_tree_indexes"), ("resources", "0001_initial")]
AFTER = [("orgs", "0005_invite_domains_moved_to_settings"), ("resources", "0002_invite_domains_become_a_setting")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_invite_domains_move_to_the_setting_and_back():
    try:
        apps = migrate(BEFORE)
        Tenant = apps.get_model("orgs", "Tenant")
        Organization = apps.get_model("orgs", "Organization")
        tenant = Tenant.objects.create(id=uuid.uuid4(), name="Mig")
        root = Organization.objects.create(
            id=uuid.uuid4(), tenant=tenant, name="Mig", tree_id=9000, lft=1, rght=4, level=0,
            invite_domains=["mig.example"],
        )  # fmt: skip
        Organization.objects.create(
            id=uuid.uuid4(), tenant=tenant, parent=root, name="Child", tree_id=9000, lft=2, rght=3, level=1,
            invite_domains=[],
        )  # fmt: skip

        apps = migrate(AFTER)
        OrgSetting = apps.get_model("resources", "OrgSetting")
        assert list(OrgSetting.objects.values_list("org_id", "key", "value", "locked")) == [
            (root.pk, "allowed_invite_domains", ["mig.example"], False)
        ]

        apps = migrate(BEFORE)
        Organization = apps.get_model("orgs", "Organization")
        assert Organization.objects.get(pk=root.pk).invite_domains == ["mig.example"]
        assert apps.get_model("resources", "OrgSetting").objects.count() == 0
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_usernames_differing_only_by_case_stop_the_migration_and_change_nothing():
    try:
        apps = migrate([("access", "0003_builtin_roles")])
        User = apps.get_model("access", "User")
        User.objects.create(id=uuid.uuid4(), username="Sam", email="s1@example.com", password="!")
        User.objects.create(id=uuid.uuid4(), username="sam", email="s2@example.com", password="!")
        with pytest.raises(RuntimeError, match="Sam, sam"):
            migrate([("access", "0004_accounts_own_their_identity")])
        assert sorted(User.objects.values_list("username", flat=True)) == ["Sam", "sam"]  # nothing renamed
        User.objects.filter(username="sam").update(username="sam-2")
        apps = migrate([("access", "0004_accounts_own_their_identity")])
        assert apps.get_model("access", "User").objects.filter(username__in=["Sam", "sam-2"]).count() == 2
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_tasks_and_runs_keep_everything_when_runs_move_onto_runtimes():
    """Task.runtime was a plain id with no runtime behind it: it becomes an empty foreign key; every task, its steps
    and its runs survive, and old runs read as attempt 1 with no runtime."""
    others = [node for node in MigrationExecutor(connection).loader.graph.leaf_nodes() if node[0] != "resources"]
    before = [*others, ("resources", "0005_hidden_kinds_from_the_registry")]
    after = [*others, ("resources", "0006_runs_on_runtimes")]
    try:
        apps = migrate(before)
        Tenant = apps.get_model("orgs", "Tenant")
        Organization = apps.get_model("orgs", "Organization")
        Project = apps.get_model("orgs", "Project")
        Task = apps.get_model("resources", "Task")
        Run = apps.get_model("resources", "Run")
        tenant = Tenant.objects.create(id=uuid.uuid4(), name="Mig")
        org = Organization.objects.create(
            id=uuid.uuid4(), tenant=tenant, name="Mig", tree_id=9001, lft=1, rght=2, level=0
        )
        project = Project.objects.create(id=uuid.uuid4(), org=org, name="P")
        steps = [{"type": "log", "message": "hello"}]
        task = Task.objects.create(id=uuid.uuid4(), project=project, name="T", steps=steps, runtime=uuid.uuid4())
        run = Run.objects.create(id=uuid.uuid4(), task=task, status="succeeded", steps=steps)

        apps = migrate(after)
        Task = apps.get_model("resources", "Task")
        Run = apps.get_model("resources", "Run")
        migrated = Task.objects.get(pk=task.pk)
        assert (migrated.name, migrated.steps, migrated.runtime_id, migrated.retry_on_lost) == ("T", steps, None, False)
        old_run = Run.objects.get(pk=run.pk)
        assert (old_run.status, old_run.attempt, old_run.runtime_id, old_run.steps) == ("succeeded", 1, None, steps)
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
