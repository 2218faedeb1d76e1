"""Runtime services and the effective runtime list: the role table for every runtime action (Admin manages; Integrator
and Guest view only; no role and other tenants 404; global runtimes written by superusers only), enrollment tokens
shown once and hashed at rest, revoke, delete while busy, hides of inherited and global runtimes, status, audit, and
the list's query budget."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access import policy
from access.models import AuditEvent, hash_token
from config.actors import SYSTEM
from config.errors import Conflict, Forbidden, NotFound, Stale
from resources import services as resource_services
from resources.models import Hidden, Run, Task
from runtimes import selectors, services, tokens
from runtimes.models import AgentToken, EnrollmentToken, Runtime, RuntimeInstance
from tests.factories import make_project

pytestmark = pytest.mark.django_db


def local(org: Any, name: str = "edge", **fields: Any) -> Runtime:
    return services.create_local_runtime(actor=SYSTEM, org=org, name=name, **fields).runtime


def global_runtime(name: str = "shared-eu", tenants: Any = "all", **fields: Any) -> Runtime:
    return services.create_global_runtime(actor=SYSTEM, name=name, tenants=tenants, **fields).runtime


def instance(runtime: Runtime, hostname: str = "host-1", seen: Any = None) -> RuntimeInstance:
    return RuntimeInstance.objects.create(
        runtime=runtime, hostname=hostname, version="1.0", last_heartbeat=seen or timezone.now()
    )


# -- the role table ------------------------------------------------------------------------------------------------

ACTIONS = {
    "create": lambda user, w, rt: services.create_local_runtime(actor=user, org=w.marketing, name="new-one"),
    "update": lambda user, w, rt: services.update_runtime(actor=user, runtime=rt, labels=["x"]),
    "pause": lambda user, w, rt: services.pause(actor=user, runtime=rt),
    "resume": lambda user, w, rt: services.resume(actor=user, runtime=rt),
    "enrollment_token": lambda user, w, rt: services.new_enrollment_token(actor=user, runtime=rt),
    "revoke": lambda user, w, rt: services.revoke(actor=user, runtime=rt),
    "delete": lambda user, w, rt: services.delete_runtime(actor=user, runtime=rt),
}
# who → (sees the runtime, error on every write)
ROLE_TABLE = {
    "admin": (True, None),
    "integrator": (True, Forbidden),
    "guest": (True, Forbidden),
    "newcomer": (False, NotFound),  # in the tenant, no role
    "other tenant admin": (False, NotFound),
    "superuser": (True, None),
}


def _who(name: str, world: Any, people: dict[str, Any]) -> Any:
    return {"other tenant admin": world.other_admin, "superuser": world.superuser}.get(name) or people[name]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("who", ROLE_TABLE)
def test_the_role_table_of_every_runtime_action(world, people, who: str, action: str) -> None:
    runtime = local(world.marketing, "edge", paused=action == "resume")
    user = _who(who, world, people)
    sees, error = ROLE_TABLE[who]
    assert policy.can(user, "runtime.view", runtime) is sees
    before = (Runtime.objects.count(), AuditEvent.objects.count(), EnrollmentToken.objects.count())
    state = (runtime.labels, runtime.paused, runtime.version)
    if error is None:
        ACTIONS[action](user, world, runtime)
        assert AuditEvent.objects.filter(action=f"runtime.{action}").exists()
    else:
        with pytest.raises(error):
            ACTIONS[action](user, world, runtime)
        runtime.refresh_from_db()  # the victim's state: nothing changed
        assert (Runtime.objects.count(), AuditEvent.objects.count(), EnrollmentToken.objects.count()) == before
        assert (runtime.labels, runtime.paused, runtime.version) == state


def test_a_runtime_declared_above_is_seen_below_and_managed_only_where_declared(world, people) -> None:
    at_root = local(world.root, "corporate")
    assert policy.can(people["guest"], "runtime.view", at_root)  # a Guest of Marketing sees what the root declares
    with pytest.raises(Forbidden):
        services.pause(actor=people["admin"], runtime=at_root)  # an Admin of Marketing does not manage it
    sibling = local(world.logistics, "trucks")
    assert not policy.can(people["admin"], "runtime.view", sibling)
    with pytest.raises(NotFound):
        services.pause(actor=people["admin"], runtime=sibling)


def test_only_superusers_create_and_change_global_runtimes_that_tenants_see_when_offered(world, people) -> None:
    with pytest.raises(Forbidden):
        services.create_global_runtime(actor=world.tenant_admin, name="mine", tenants="all")
    assert not Runtime.objects.filter(name="mine").exists()
    created = services.create_global_runtime(actor=world.superuser, name="acme-only", tenants=[world.acme.pk])
    runtime = created.runtime
    assert runtime.kind == Runtime.Kind.GLOBAL and runtime.org is None
    assert policy.can(people["guest"], "runtime.view", runtime)
    assert policy.can(world.tenant_admin, "runtime.view", runtime)
    assert not policy.can(world.other_admin, "runtime.view", runtime)  # Globex is not offered it: 404
    with pytest.raises(NotFound):
        services.pause(actor=world.other_admin, runtime=runtime)
    for user in (world.tenant_admin, people["admin"]):  # seen, not theirs to change
        with pytest.raises(Forbidden):
            services.update_runtime(actor=user, runtime=runtime, name="renamed")
        with pytest.raises(Forbidden):
            services.revoke(actor=user, runtime=runtime)
    runtime.refresh_from_db()
    assert runtime.name == "acme-only" and runtime.version == 1
    # its events are in the audit log of the tenant it is offered to
    assert AuditEvent.objects.filter(action="runtime.create", tenant=world.acme, target_id=str(runtime.pk)).exists()
    assert not AuditEvent.objects.filter(tenant=world.globex, target_id=str(runtime.pk)).exists()
    services.update_runtime(actor=world.superuser, runtime=runtime, tenants=[world.globex.pk])
    assert policy.can(world.other_admin, "runtime.view", Runtime.objects.get(pk=runtime.pk))
    policy.forget(people["guest"])
    assert not policy.can(people["guest"], "runtime.view", Runtime.objects.get(pk=runtime.pk))


def test_superuser_only_fields_are_refused_to_an_admin(world, people) -> None:
    runtime = local(world.marketing)
    with pytest.raises(Forbidden, match="superuser"):
        services.update_runtime(actor=people["admin"], runtime=runtime, allow_private_network=True)
    with pytest.raises(Forbidden):
        services.create_local_runtime(actor=people["admin"], org=world.marketing, name="x", allow_private_network=True)
    runtime.refresh_from_db()
    assert runtime.allow_private_network is False and not Runtime.objects.filter(name="x").exists()
    services.update_runtime(actor=world.superuser, runtime=runtime, allow_private_network=True)
    assert Runtime.objects.get(pk=runtime.pk).allow_private_network is True


# -- enrollment tokens ---------------------------------------------------------------------------------------------


def test_an_enrollment_token_is_shown_once_and_only_its_hash_is_stored(world, people, settings) -> None:
    settings.SITE_URL = "https://canopy.example"
    created = services.create_local_runtime(actor=people["admin"], org=world.marketing, name="edge", sovereign=True)
    assert created.raw.startswith(tokens.ENROLLMENT_PREFIX) and len(created.raw) > 40
    assert created.command.startswith("python -m runtimes.agent --url https://canopy.example")
    assert created.raw in created.command
    stored = EnrollmentToken.objects.get(runtime=created.runtime)
    assert stored.token_hash == hash_token(created.raw) and created.raw not in stored.token_hash
    assert stored.used_at is None
    assert timedelta(minutes=59) < stored.expires_at - timezone.now() <= timedelta(hours=1)
    # the raw token is nowhere in the database's audit trail
    assert not any(created.raw in str(e.changes) for e in AuditEvent.objects.all())
    another = services.new_enrollment_token(actor=people["admin"], runtime=created.runtime)
    assert another.raw != created.raw and EnrollmentToken.objects.filter(runtime=created.runtime).count() == 2
    assert AuditEvent.objects.filter(action="runtime.enrollment_token").count() == 2


# -- revoke --------------------------------------------------------------------------------------------------------


def test_revoke_ends_every_agent_token_and_every_unused_enrollment_token(world, people) -> None:
    runtime = local(world.marketing)
    other = local(world.marketing, "other")
    agent_tokens = [tokens.issue_agent_token(instance(runtime, f"h{i}"))[0] for i in range(3)]
    untouched, _ = tokens.issue_agent_token(instance(other))
    revoked_before = AgentToken.objects.create(
        runtime=runtime, instance=agent_tokens[0].instance, token_hash="0" * 64, prefix="cna_old",
        expires_at=timezone.now() + timedelta(days=1), revoked_at=timezone.now() - timedelta(days=1),
    )  # fmt: skip
    assert services.revoke(actor=people["admin"], runtime=runtime) == 3
    assert all(t.revoked_at is not None for t in AgentToken.objects.filter(pk__in=[t.pk for t in agent_tokens]))
    assert AgentToken.objects.get(pk=revoked_before.pk).revoked_at < timezone.now() - timedelta(hours=23)
    assert AgentToken.objects.get(pk=untouched.pk).revoked_at is None  # another runtime's agents keep working
    assert not EnrollmentToken.objects.filter(runtime=runtime, expires_at__gt=timezone.now()).exists()
    assert EnrollmentToken.objects.filter(runtime=other, expires_at__gt=timezone.now()).exists()
    event = AuditEvent.objects.get(action="runtime.revoke")
    assert event.changes == {"agent_tokens": 3, "enrollment_tokens": 1}


# -- changes, pause, delete ----------------------------------------------------------------------------------------


def test_pause_and_resume_are_audited_as_such_and_a_stale_version_is_refused(world, people) -> None:
    runtime = local(world.marketing)
    paused = services.pause(actor=people["admin"], runtime=runtime, version=runtime.version)
    assert paused.paused and paused.version == runtime.version + 1
    assert AuditEvent.objects.filter(action="runtime.pause").count() == 1
    assert not AuditEvent.objects.filter(action="runtime.update").exists()
    with pytest.raises(Stale):
        services.resume(actor=people["admin"], runtime=runtime, version=runtime.version)
    assert Runtime.objects.get(pk=runtime.pk).paused is True
    services.resume(actor=people["admin"], runtime=paused, version=paused.version)
    assert AuditEvent.objects.filter(action="runtime.resume").count() == 1
    assert selectors.status_of(Runtime.objects.get(pk=runtime.pk)) == Runtime.Status.NEVER_CONNECTED


def test_labels_and_names_are_checked(world, people) -> None:
    with pytest.raises(ValidationError) as error:
        services.create_local_runtime(actor=people["admin"], org=world.marketing, name="x", labels=["ok", "no way"])
    assert "labels" in error.value.message_dict
    with pytest.raises(ValidationError):
        services.create_local_runtime(actor=people["admin"], org=world.marketing, name="../etc")
    runtime = services.create_local_runtime(
        actor=people["admin"], org=world.marketing, name="edge", labels="eu, gpu, eu"
    ).runtime
    assert runtime.labels == ["eu", "gpu"] and runtime.kind == Runtime.Kind.LOCAL
    with pytest.raises(Conflict) as taken:
        services.create_local_runtime(actor=people["admin"], org=world.marketing, name="EDGE")
    assert taken.value.code == "name_taken"


def test_a_name_locked_above_cannot_be_declared_below(world, people) -> None:
    local(world.root, "eu-local", locked=True)
    with pytest.raises(Conflict) as locked:
        services.create_local_runtime(actor=people["admin"], org=world.marketing, name="EU-local")
    assert locked.value.code == "locked"
    assert Runtime.objects.filter(name__iexact="eu-local").count() == 1


def test_a_runtime_with_active_runs_cannot_be_deleted(world, people) -> None:
    runtime = local(world.marketing)
    task = Task.objects.create(project=world.website, name="sync", steps=[], runtime=runtime)
    run = resource_services.run_task(actor=SYSTEM, task=task)
    assert run.runtime == runtime
    with pytest.raises(Conflict) as busy:
        services.delete_runtime(actor=people["admin"], runtime=runtime)
    assert busy.value.code == "runtime_busy"
    assert Runtime.objects.filter(pk=runtime.pk).exists()
    Run.objects.filter(pk=run.pk).update(status=Run.Status.SUCCEEDED)
    services.delete_runtime(actor=people["admin"], runtime=runtime)
    assert not Runtime.objects.filter(pk=runtime.pk).exists()
    run.refresh_from_db()
    assert run.runtime is None and run.runtime_name == "edge"  # the run still says where it ran
    assert AuditEvent.objects.filter(action="runtime.delete", changes={"name": "edge"}).exists()


# -- the effective list ----------------------------------------------------------------------------------------------


def _names(org: Any, viewer: Any = None) -> dict[str, str]:
    return {row.runtime.name: row.source for row in selectors.effective_runtimes(org, viewer)}


def test_the_effective_list_holds_local_runtimes_on_the_path_and_offered_globals(world, people) -> None:
    local(world.root, "corporate")
    local(world.marketing, "edge")
    local(world.logistics, "trucks")
    global_runtime("shared-eu")
    global_runtime("globex-only", tenants=[world.globex.pk])
    assert _names(world.campaigns) == {
        "corporate": "inherited", "edge": "inherited", "platform": "platform", "shared-eu": "platform",
    }  # fmt: skip
    assert _names(world.marketing)["edge"] == "here"
    assert _names(world.globex_root) == {"platform": "platform", "shared-eu": "platform", "globex-only": "platform"}
    # a viewer sees only what the policy lets them: the guest of Marketing sees the same list from Marketing
    assert _names(world.marketing, people["guest"]) == _names(world.marketing)


def test_a_local_runtime_shadows_a_global_one_of_the_same_name(world) -> None:
    global_runtime("shared-eu")
    mine = local(world.marketing, "Shared-EU")
    rows = [row for row in selectors.effective_runtimes(world.emea) if row.runtime.name.lower() == "shared-eu"]
    assert [row.runtime.pk for row in rows] == [mine.pk]


def test_hiding_an_inherited_or_a_global_runtime_removes_it_from_the_subtree_only(world, people) -> None:
    local(world.root, "corporate")
    global_runtime("shared-eu")
    services.hide_runtime(actor=people["admin"], org=world.marketing, name="corporate")
    services.hide_runtime(actor=people["admin"], org=world.marketing, name="Shared-EU")
    assert set(Hidden.objects.filter(org=world.marketing).values_list("kind", "name")) == {
        ("runtime", "corporate"), ("runtime", "shared-eu"),
    }  # fmt: skip
    for org in (world.marketing, world.campaigns):
        assert set(_names(org)) == {"platform"}
    assert set(_names(world.logistics)) == {"corporate", "platform", "shared-eu"}
    assert AuditEvent.objects.filter(action="hidden.create").count() == 2
    with pytest.raises(Conflict):
        services.hide_runtime(actor=people["admin"], org=world.marketing, name="shared-eu")
    with pytest.raises(Forbidden):
        services.hide_runtime(actor=people["integrator"], org=world.marketing, name="platform")
    with pytest.raises(NotFound):
        services.hide_runtime(actor=world.other_admin, org=world.marketing, name="platform")
    with pytest.raises(ValidationError):
        services.hide_runtime(actor=people["admin"], org=world.marketing, name="no-such-runtime")


def test_a_locked_runtime_cannot_be_hidden_below(world, people) -> None:
    local(world.root, "corporate", locked=True)
    with pytest.raises(Conflict) as locked:
        services.hide_runtime(actor=people["admin"], org=world.marketing, name="corporate")
    assert locked.value.code == "locked"
    assert not Hidden.objects.exists()


def test_status_last_seen_instances_and_running(world, settings) -> None:
    settings.RUNTIME_OFFLINE_AFTER_S = 30
    now = timezone.now()
    online = local(world.marketing, "online")
    Runtime.objects.filter(pk=online.pk).update(last_seen=now, agent_version="1.2.0")
    instance(online, "a", now)
    instance(online, "b", now - timedelta(seconds=5))
    instance(online, "gone", now - timedelta(minutes=5))
    offline = local(world.marketing, "offline")
    Runtime.objects.filter(pk=offline.pk).update(last_seen=now - timedelta(seconds=31))
    paused = local(world.marketing, "paused", paused=True)
    Runtime.objects.filter(pk=paused.pk).update(last_seen=now)
    task = Task.objects.create(project=world.website, name="t", steps=[], runtime=online)
    for status in (Run.Status.QUEUED, Run.Status.CLAIMED, Run.Status.RUNNING, Run.Status.SUCCEEDED):
        Run.objects.create(task=task, runtime=online, status=status)
    rows = {row.runtime.name: row for row in selectors.effective_runtimes(world.marketing)}
    assert (rows["online"].status, rows["online"].instances, rows["online"].running) == ("online", 2, 2)
    assert rows["online"].version == "1.2.0" and rows["online"].last_seen is not None
    assert rows["offline"].status == "offline" and rows["paused"].status == "paused"
    assert rows["platform"].status == "never_connected" and rows["platform"].instances == 0


def test_the_effective_list_costs_the_same_few_queries_whatever_its_length(
    world, people, django_assert_max_num_queries
) -> None:
    def measure() -> int:
        policy.forget(people["guest"])
        with CaptureQueriesContext(connection) as captured:
            selectors.effective_runtimes(world.campaigns, people["guest"])
        return len(captured.captured_queries)

    local(world.root, "r0")
    measure()  # once to warm the per-tenant caches (the authentication fences' "does this tenant enforce anything")
    small = measure()
    project = make_project(world.emea, "Busy")
    task = Task.objects.create(project=project, name="t", steps=[])
    for i in range(1, 25):
        runtime = local([world.root, world.marketing, world.emea, world.campaigns][i % 4], f"r{i}")
        instance(runtime)
        Run.objects.create(task=task, runtime=runtime, status=Run.Status.RUNNING)
    for i in range(5):
        global_runtime(f"g{i}")
    assert measure() == small
    with django_assert_max_num_queries(small):
        rows = selectors.effective_runtimes(world.campaigns, people["guest"])
    assert len(rows) == 31


def test_a_global_runtimes_events_are_in_the_log_of_every_tenant_it_is_offered_to(world) -> None:
    runtime = global_runtime("shared-eu", tenants="all")
    created = AuditEvent.objects.filter(action="runtime.create", target_id=str(runtime.pk))
    assert set(created.values_list("tenant_id", flat=True)) == {world.acme.pk, world.globex.pk}
    assert {(e.actor_name, e.target_name, e.org_id) for e in created} == {("system", "shared-eu", None)}
    services.update_runtime(actor=world.superuser, runtime=runtime, tenants=[world.globex.pk])
    moved = AuditEvent.objects.filter(action="runtime.update", target_id=str(runtime.pk))
    # the tenant that lost the offer is told too
    assert set(moved.values_list("tenant_id", flat=True)) == {world.acme.pk, world.globex.pk}
    assert all(e.actor_name == "root" for e in moved)
