"""Every cell of docs/DESIGN.md's role table for tasks, runs, shares, credentials, lookup tables and environment
variables, through the API: at the org holding the grant, in a descendant (inherited), and 404 from a sibling
org's role and from another tenant."""

from __future__ import annotations

from typing import Any

import pytest

from config.actors import SYSTEM
from orgs.models import Organization
from resources import services
from resources.models import Credential, EnvVar, LookupTable, Run, Task
from tests.factories import make_project

ROLES = ("guest", "integrator", "admin")
YES_INTEGRATOR = {"guest": False, "integrator": True, "admin": True}
ADMIN_ONLY = {"guest": False, "integrator": False, "admin": True}
EVERYONE = {"guest": True, "integrator": True, "admin": True}


def seed(world: Any, org: Organization) -> dict[str, Any]:
    """One of everything, declared in ``org`` (a project there holds a task with a queued run)."""
    admin = world.tenant_admin
    project = world.website if org == world.marketing else make_project(org, f"Project in {org.name}")
    task = services.create_task(actor=admin, project=project, name="Sync", steps=[{"type": "log", "message": "hello"}])
    return {
        "org": org,
        "project": project,
        "task": task,
        "run": services.run_task(actor=admin, task=task),
        "credential": services.create_credential(
            actor=admin, org=org, name="CRM", kind="api_key", secret={"key": "k-123"}
        ),
        "table": services.create_lookup_table(
            actor=admin, org=org, name="Countries", rows=[{"key": "fr", "value": "France"}]
        ),
        "variable": services.create_env_var(actor=admin, org=org, key="REGION", value="eu"),
    }


def act(client: Any, action: str, s: dict[str, Any], newcomer: Any) -> int:
    """Do ``action`` on the seeded objects; the HTTP status."""
    org, task, run = s["org"].pk, s["task"].pk, s["run"].pk
    calls = {
        "view tasks": lambda: client.get(f"/api/v1/projects/{s['project'].pk}/tasks"),
        "view a task": lambda: client.get(f"/api/v1/tasks/{task}"),
        "view runs": lambda: client.get(f"/api/v1/tasks/{task}/runs"),
        "view run logs": lambda: client.get(f"/api/v1/runs/{run}/logs"),
        "create a task": lambda: client.post(
            f"/api/v1/projects/{s['project'].pk}/tasks", {"name": "New", "steps": []}, format="json"
        ),
        "edit a task": lambda: client.patch(f"/api/v1/tasks/{task}", {"description": "x"}, format="json"),
        "delete a task": lambda: client.delete(f"/api/v1/tasks/{task}"),
        "run a task": lambda: client.post(f"/api/v1/tasks/{task}/run"),
        "stop a run": lambda: client.post(f"/api/v1/runs/{run}/stop"),
        "share a task": lambda: client.post(
            f"/api/v1/tasks/{task}/shares", {"user": newcomer.username, "permission": "view"}, format="json"
        ),
        "view credentials": lambda: client.get(f"/api/v1/orgs/{org}/credentials"),
        "view a credential": lambda: client.get(f"/api/v1/credentials/{s['credential'].pk}"),
        "create a credential": lambda: client.post(
            f"/api/v1/orgs/{org}/credentials",
            {"name": "ERP", "kind": "http_basic", "fields": {"username": "u"}, "secret": {"password": "p"}},
            format="json",
        ),
        "edit a credential": lambda: client.patch(
            f"/api/v1/credentials/{s['credential'].pk}", {"description": "x"}, format="json"
        ),
        "delete a credential": lambda: client.delete(f"/api/v1/credentials/{s['credential'].pk}"),
        "view lookup tables": lambda: client.get(f"/api/v1/orgs/{org}/lookup-tables"),
        "view a lookup table": lambda: client.get(f"/api/v1/lookup-tables/{s['table'].pk}"),
        "create a lookup table": lambda: client.post(
            f"/api/v1/orgs/{org}/lookup-tables", {"name": "Codes", "rows": []}, format="json"
        ),
        "edit a lookup table": lambda: client.patch(
            f"/api/v1/lookup-tables/{s['table'].pk}", {"rows": [{"key": "de", "value": "Germany"}]}, format="json"
        ),
        "delete a lookup table": lambda: client.delete(f"/api/v1/lookup-tables/{s['table'].pk}"),
        "view env vars": lambda: client.get(f"/api/v1/orgs/{org}/env-vars"),
        "add an env var": lambda: client.post(
            f"/api/v1/orgs/{org}/env-vars", {"key": "TZ", "value": "UTC"}, format="json"
        ),
        "edit an env var": lambda: client.patch(f"/api/v1/env-vars/{s['variable'].pk}", {"value": "us"}, format="json"),
        "delete an env var": lambda: client.delete(f"/api/v1/env-vars/{s['variable'].pk}"),
    }
    return calls[action]().status_code


# (action, who may, status when allowed)
TABLE = [
    ("view tasks", EVERYONE, 200),
    ("view a task", EVERYONE, 200),
    ("view runs", EVERYONE, 200),
    ("view run logs", EVERYONE, 200),
    ("create a task", YES_INTEGRATOR, 201),
    ("edit a task", YES_INTEGRATOR, 200),
    ("delete a task", YES_INTEGRATOR, 204),
    ("run a task", YES_INTEGRATOR, 201),
    ("stop a run", YES_INTEGRATOR, 200),
    ("share a task", YES_INTEGRATOR, 201),
    ("view credentials", YES_INTEGRATOR, 200),
    ("view a credential", YES_INTEGRATOR, 200),
    ("create a credential", YES_INTEGRATOR, 201),
    ("edit a credential", YES_INTEGRATOR, 200),
    ("delete a credential", YES_INTEGRATOR, 204),
    ("view lookup tables", YES_INTEGRATOR, 200),
    ("view a lookup table", YES_INTEGRATOR, 200),
    ("create a lookup table", YES_INTEGRATOR, 201),
    ("edit a lookup table", YES_INTEGRATOR, 200),
    ("delete a lookup table", YES_INTEGRATOR, 204),
    ("view env vars", YES_INTEGRATOR, 200),
    ("add an env var", ADMIN_ONLY, 201),
    ("edit an env var", ADMIN_ONLY, 200),
    ("delete an env var", ADMIN_ONLY, 204),
]
# What a denied caller gets: 403 on an object they see, 404 when the object itself is invisible to them (a Guest
# cannot see credentials, lookup tables or env vars at all).
INVISIBLE_TO_GUESTS = {"view a credential", "edit a credential", "delete a credential", "view a lookup table",
                       "edit a lookup table", "delete a lookup table", "view an env var", "edit an env var",
                       "delete an env var"}  # fmt: skip


@pytest.mark.parametrize("where", ["org", "descendant"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("action", "allowed", "ok"), TABLE, ids=[row[0] for row in TABLE])
def test_role_table(world, people, api_as, where, role, action, allowed, ok):
    """The role is granted on Marketing; the objects live in Marketing itself or in Campaigns (two levels down)."""
    s = seed(world, world.marketing if where == "org" else world.campaigns)
    status = act(api_as(people[role]), action, s, people["newcomer"])
    if allowed[role]:
        assert status == ok, f"{role} should be able to {action}"
    elif role == "guest" and action in INVISIBLE_TO_GUESTS:
        assert status == 404
    elif role == "integrator" and action in ("edit an env var", "delete an env var"):
        assert status == 403  # Integrators read env vars: they see it, and may not change it
    else:
        assert status == 403, f"{role} must not {action}"


@pytest.mark.parametrize(("action", "allowed", "ok"), TABLE, ids=[row[0] for row in TABLE])
def test_a_role_on_a_sibling_org_sees_nothing(world, api_as, action, allowed, ok):
    from access.services.grants import grant_role
    from tests.factories import UserFactory, add_to_tenant

    s = seed(world, world.marketing)
    sibling_admin = UserFactory(username="logistics-admin")
    add_to_tenant(sibling_admin, world.acme)
    grant_role(actor=SYSTEM, target=world.logistics, role="admin", user=sibling_admin)
    assert act(api_as(sibling_admin), action, s, world.member) == 404


@pytest.mark.parametrize(("action", "allowed", "ok"), TABLE, ids=[row[0] for row in TABLE])
def test_another_tenant_sees_nothing(world, api_as, action, allowed, ok):
    s = seed(world, world.marketing)
    before = (Task.objects.count(), Run.objects.count(), Credential.objects.count(), LookupTable.objects.count(),
              EnvVar.objects.count())  # fmt: skip
    assert act(api_as(world.other_admin), action, s, world.member) == 404
    after = (Task.objects.count(), Run.objects.count(), Credential.objects.count(), LookupTable.objects.count(),
             EnvVar.objects.count())  # fmt: skip
    assert before == after


def test_an_integrator_reads_env_vars_but_not_secret_values(world, people, api_as):
    services.create_env_var(
        actor=world.tenant_admin, org=world.marketing, key="TOKEN", value="s3cr3t-v4lue", secret=True
    )
    services.create_env_var(actor=world.tenant_admin, org=world.root, key="REGION", value="eu")
    response = api_as(people["integrator"]).get(f"/api/v1/orgs/{world.emea.pk}/env-vars")
    assert response.status_code == 200
    items = {i["key"]: i for i in response.json()["results"]}
    assert items["REGION"]["value"] == "eu" and items["REGION"]["inherited"] is True
    assert items["TOKEN"]["value"] is None and items["TOKEN"]["secret"] is True
    assert "s3cr3t-v4lue" not in response.content.decode()
