"""Secrets (write-only, encrypted, rotated), components and their development teams, task shares, steps, runs,
lookup-table CSV and limits."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from access.models import AuditEvent
from access.services.grants import grant_role
from config.actors import SYSTEM
from resources import crypto, services
from resources.models import ComponentVersion, Credential, EnvVar, LookupRow, Run, Task
from tests.factories import UserFactory, add_to_tenant

SECRET = "xyzzy-Secret-7f3a9c"


def everything_as_text() -> str:
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    return out.getvalue()


def test_a_secret_is_nowhere_in_the_database_dump_responses_or_audit_log(world, api_as):
    client = api_as(world.tenant_admin)
    response = client.post(
        f"/api/v1/orgs/{world.marketing.pk}/credentials",
        {"name": "CRM", "kind": "http_basic", "fields": {"username": "bot"}, "secret": {"password": SECRET}},
        format="json",
    )
    assert response.status_code == 201 and SECRET not in response.content.decode()
    assert response.json()["secret_fields"] == ["password"] and "secret" not in response.json()
    credential_id = response.json()["id"]
    variable = client.post(
        f"/api/v1/orgs/{world.marketing.pk}/env-vars", {"key": "TOKEN", "value": SECRET, "secret": True}, format="json"
    )
    assert variable.status_code == 201 and variable.json()["value"] is None
    client.patch(f"/api/v1/credentials/{credential_id}", {"secret": {"password": SECRET + "2"}}, format="json")
    pages = [
        client.get(f"/api/v1/credentials/{credential_id}"),
        client.get(f"/api/v1/orgs/{world.marketing.pk}/credentials"),
        client.get(f"/api/v1/orgs/{world.emea.pk}/env-vars"),
        client.get(f"/api/v1/env-vars/{variable.json()['id']}"),
        client.get(f"/api/v1/orgs/{world.marketing.pk}/effective-config"),
        client.get(f"/api/v1/orgs/{world.marketing.pk}/audit-events"),
        client.post(f"/api/v1/orgs/{world.marketing.pk}/credentials",
                    {"name": "CRM", "kind": "http_basic", "fields": {"username": "bot"},
                     "secret": {"password": SECRET}}, format="json"),  # a 409: the error does not echo the secret
        client.post(f"/api/v1/orgs/{world.marketing.pk}/credentials",
                    {"name": "Bad", "kind": "http_basic", "secret": {"password": SECRET, "pin": SECRET}},
                    format="json"),  # a 400
    ]  # fmt: skip
    assert [p.status_code for p in pages] == [200, 200, 200, 200, 200, 200, 409, 400]
    for page in pages:
        assert SECRET not in page.content.decode()
    dump = everything_as_text()
    assert SECRET not in dump and "xyzzy" not in dump
    assert AuditEvent.objects.filter(action="credential.update", changes__secret_fields_set=["password"]).exists()
    # ...and the encrypted value reads back (only the services' decrypt, for a run).
    credential = Credential.objects.get(pk=credential_id)
    assert crypto.decrypt(credential.secret_ciphertext) == {"password": SECRET + "2"}
    assert crypto.decrypt(EnvVar.objects.get(key="TOKEN").secret_ciphertext) == SECRET


def test_key_rotation_round_trip(world, settings):
    old_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    credential = services.create_credential(
        actor=world.tenant_admin, org=world.root, name="CRM", kind="api_key", secret={"key": SECRET}
    )
    variable = services.create_env_var(actor=world.tenant_admin, org=world.root, key="TOKEN", value=SECRET, secret=True)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "1 credentials, 1 env vars" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is gone: everything still reads
    assert crypto.decrypt(Credential.objects.get(pk=credential.pk).secret_ciphertext) == {"key": SECRET}
    assert crypto.decrypt(EnvVar.objects.get(pk=variable.pk).secret_ciphertext) == SECRET
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # a wrong key: a clear error, no value
    with pytest.raises(Exception, match="cannot be decrypted") as excinfo:
        call_command("rotate_encryption_keys", stdout=io.StringIO())
    assert SECRET not in str(excinfo.value)


def test_credential_kinds_check_their_fields(world, api_as):
    client = api_as(world.tenant_admin)
    url = f"/api/v1/orgs/{world.marketing.pk}/credentials"
    missing = client.post(url, {"name": "A", "kind": "oauth2_client", "fields": {"client_id": "x"}}, format="json")
    assert missing.status_code == 400 and "token_url" in missing.content.decode()
    assert "client_secret" in missing.content.decode()
    unknown = client.post(url, {"name": "B", "kind": "api_key", "fields": {"colour": "red"}, "secret": {"key": "k"}},
                          format="json")  # fmt: skip
    assert unknown.status_code == 400 and "colour" in unknown.content.decode()
    assert not Credential.objects.exists()


# -- components ----------------------------------------------------------------------------------------------------


@pytest.fixture
def component(world):
    return services.create_component(
        actor=world.tenant_admin, org=world.marketing, name="Parser", repository_url="https://git.example.com/parser"
    )


def test_only_the_development_team_publishes_not_even_an_admin(world, people, api_as, component):
    url = f"/api/v1/components/{component.pk}/versions"
    body = {"version": "1.0.0", "source": "def run(): pass"}
    response = api_as(people["admin"]).post(url, body, format="json")
    assert response.status_code == 403 and response.json()["code"] == "not_on_development_team"
    assert api_as(world.tenant_admin).post(url, body, format="json").status_code == 403
    assert api_as(people["admin"]).post(f"/api/v1/components/{component.pk}/team", {"user": "integrator-m"},
                                        format="json").status_code == 201  # fmt: skip
    assert api_as(people["integrator"]).post(url, body, format="json").status_code == 201
    again = api_as(people["integrator"]).post(url, body, format="json")
    assert again.status_code == 409 and ComponentVersion.objects.count() == 1
    bad = api_as(people["integrator"]).post(url, {"version": "not a version!", "source": ""}, format="json")
    assert bad.status_code == 400 and ComponentVersion.objects.count() == 1


def test_a_contractor_without_an_org_role_sees_only_their_component(world, api_as, component):
    contractor = UserFactory(username="contractor")
    add_to_tenant(contractor, world.acme)
    other = services.create_component(actor=world.tenant_admin, org=world.marketing, name="Other")
    services.add_component_member(actor=world.tenant_admin, component=component, user=contractor)
    client = api_as(contractor)
    assert client.get(f"/api/v1/components/{component.pk}").status_code == 200
    assert client.get(f"/api/v1/components/{component.pk}").json()["can_publish"] is True
    assert client.get(f"/api/v1/components/{other.pk}").status_code == 404
    assert [c["name"] for c in client.get("/api/v1/components").json()["results"]] == ["Parser"]
    assert client.get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 404
    assert client.get(f"/api/v1/orgs/{world.marketing.pk}/components").status_code == 404
    assert client.get(f"/api/v1/projects/{world.website.pk}/tasks").status_code == 404
    assert client.post(f"/api/v1/components/{component.pk}/versions", {"version": "2", "source": "x"},
                       format="json").status_code == 201  # fmt: skip
    assert client.patch(f"/api/v1/components/{component.pk}", {"name": "Mine"}, format="json").status_code == 403
    # Off the team: nothing left.
    services.remove_component_member(actor=world.tenant_admin, component=component, user=contractor)
    assert api_as(contractor).get(f"/api/v1/components/{component.pk}").status_code == 404


def test_admins_manage_components_and_teams_integrators_do_not(world, people, api_as, component):
    team_url = f"/api/v1/components/{component.pk}/team"
    assert api_as(people["integrator"]).post(team_url, {"user": "guest-m"}, format="json").status_code == 403
    assert api_as(people["integrator"]).get(f"/api/v1/components/{component.pk}").status_code == 200
    assert api_as(people["guest"]).get(f"/api/v1/orgs/{world.marketing.pk}/components").status_code == 200
    assert (
        api_as(people["integrator"])
        .post(f"/api/v1/orgs/{world.marketing.pk}/components", {"name": "X"}, format="json")
        .status_code
        == 403
    )
    outsider = api_as(people["admin"]).post(team_url, {"user": "charlie"}, format="json")
    assert outsider.status_code == 400 and "No such user" in outsider.content.decode()
    assert api_as(world.other_admin).get(team_url).status_code == 404


# -- tasks, shares, runs -------------------------------------------------------------------------------------------


@pytest.fixture
def task(world):
    return services.create_task(
        actor=world.tenant_admin, project=world.website, name="Sync", steps=[{"type": "log", "message": "hi"}]
    )


def test_a_task_shared_with_a_user_outside_the_project(world, people, api_as, task):
    newcomer = people["newcomer"]
    assert api_as(newcomer).get(f"/api/v1/tasks/{task.pk}").status_code == 404
    client = api_as(people["integrator"])
    share = client.post(f"/api/v1/tasks/{task.pk}/shares", {"user": "newcomer", "permission": "view"}, format="json")
    assert share.status_code == 201 and share.json()["permission"] == "view"
    assert api_as(newcomer).get(f"/api/v1/tasks/{task.pk}").status_code == 200
    assert api_as(newcomer).post(f"/api/v1/tasks/{task.pk}/run").status_code == 403
    assert (
        api_as(newcomer).get(f"/api/v1/projects/{world.website.pk}/tasks").status_code == 404
    )  # the project is not shared
    client.post(f"/api/v1/tasks/{task.pk}/shares", {"user": "newcomer", "permission": "run"}, format="json")
    assert api_as(newcomer).post(f"/api/v1/tasks/{task.pk}/run").status_code == 201
    assert api_as(newcomer).patch(f"/api/v1/tasks/{task.pk}", {"description": "x"}, format="json").status_code == 403
    client.post(f"/api/v1/tasks/{task.pk}/shares", {"user": "newcomer", "permission": "edit"}, format="json")
    assert api_as(newcomer).patch(f"/api/v1/tasks/{task.pk}", {"description": "x"}, format="json").status_code == 200
    assert api_as(newcomer).delete(f"/api/v1/tasks/{task.pk}").status_code == 403  # edit is not delete
    shares = client.get(f"/api/v1/tasks/{task.pk}/shares").json()["results"]
    assert len(shares) == 1 and shares[0]["permission"] == "edit"
    assert client.delete(f"/api/v1/tasks/{task.pk}/shares/{shares[0]['id']}").status_code == 204
    assert api_as(newcomer).get(f"/api/v1/tasks/{task.pk}").status_code == 404


def test_a_task_shared_with_a_team(world, people, api_as, task):
    from access.services.teams import add_team_member, create_team

    team = create_team(actor=world.tenant_admin, org=world.marketing, name="Ops")
    add_team_member(actor=world.tenant_admin, team=team, user=people["newcomer"])
    response = api_as(people["admin"]).post(
        f"/api/v1/tasks/{task.pk}/shares", {"team": str(team.pk), "permission": "run"}, format="json"
    )
    assert response.status_code == 201 and response.json()["team"]["name"] == "Ops"
    assert api_as(people["newcomer"]).post(f"/api/v1/tasks/{task.pk}/run").status_code == 201


def test_sharing_can_be_turned_off_by_the_org_setting(world, people, api_as, task):
    services.set_setting(actor=world.tenant_admin, org=world.root, key="allow_task_sharing", value=False)
    response = api_as(people["integrator"]).post(
        f"/api/v1/tasks/{task.pk}/shares", {"user": "newcomer", "permission": "view"}, format="json"
    )
    assert response.status_code == 403 and response.json()["code"] == "sharing_disabled"


def test_sharing_with_someone_outside_the_tenant_is_refused(world, people, api_as, task):
    response = api_as(people["integrator"]).post(
        f"/api/v1/tasks/{task.pk}/shares", {"user": "gina", "permission": "view"}, format="json"
    )
    assert response.status_code == 400 and "No such user" in response.content.decode()


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("nope", "list"),
        ([{"type": "teleport"}], "Step 1"),
        ([{"type": "log"}], "needs message"),
        ([{"type": "http", "method": "GET", "url": "ftp://x"}], "http:// or https://"),
        ([{"type": "http", "method": "FETCH", "url": "https://x.example"}], "method"),
        ([{"type": "lookup", "table": "Codes", "key": "a", "into": "1bad"}], "variable name"),
        ([{"type": "log", "message": "hi", "colour": "red"}], "unknown field"),
        ([{"type": "log", "message": "x"}] * 101, "At most 100"),
    ],
)
def test_bad_steps_are_refused_and_nothing_changes(world, api_as, task, steps, message):
    client = api_as(world.tenant_admin)
    response = client.patch(f"/api/v1/tasks/{task.pk}", {"steps": steps}, format="json")
    assert response.status_code == 400 and message in response.content.decode()
    assert Task.objects.get(pk=task.pk).steps == [{"type": "log", "message": "hi"}]


def test_every_step_type_is_accepted(world, api_as):
    services.create_credential(actor=world.tenant_admin, org=world.root, name="CRM", kind="generic")
    services.create_lookup_table(actor=world.tenant_admin, org=world.marketing, name="Countries")
    steps = [
        {"type": "http", "method": "POST", "url": "https://api.example.com/x", "headers": {"A": "b"},
         "body": {"k": 1}, "credential": "CRM", "into": "reply"},
        {"type": "lookup", "table": "Countries", "key": "fr", "into": "country"},
        {"type": "transform", "expression": "reply.items[0]", "into": "first"},
        {"type": "log", "message": "done", "level": "warning"},
    ]  # fmt: skip
    response = api_as(world.tenant_admin).post(
        f"/api/v1/projects/{world.website.pk}/tasks", {"name": "Full", "steps": steps}, format="json"
    )
    assert response.status_code == 201 and response.json()["steps"] == steps


def test_run_and_stop(world, people, api_as, task):
    client = api_as(people["integrator"])
    run = client.post(f"/api/v1/tasks/{task.pk}/run").json()
    assert run["status"] == "queued" and run["requested_by"] == "integrator-m"
    stopped = client.post(f"/api/v1/runs/{run['id']}/stop")
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    again = client.post(f"/api/v1/runs/{run['id']}/stop")
    assert again.status_code == 409 and again.json()["code"] == "run_finished"
    running = services.run_task(actor=world.tenant_admin, task=task)
    Run.objects.filter(pk=running.pk).update(status=Run.Status.RUNNING)
    assert client.post(f"/api/v1/runs/{running.pk}/stop").json()["status"] == "stop_requested"
    logs = api_as(people["guest"]).get(f"/api/v1/runs/{run['id']}/logs").json()["results"]
    assert [line["message"] for line in logs] == ["Queued by integrator-m with 1 step(s).",
                                                  "Stopped by integrator-m before it started."]  # fmt: skip
    assert api_as(people["guest"]).get(f"/api/v1/tasks/{task.pk}/runs?status=queued").json()["count"] == 0
    assert api_as(people["guest"]).get(f"/api/v1/tasks/{task.pk}/runs?status=nope").status_code == 400


def test_task_lists_have_a_query_budget(world, people, api_as, django_assert_max_num_queries):
    for index in range(15):
        created = services.create_task(actor=world.tenant_admin, project=world.website, name=f"T{index}")
        services.run_task(actor=world.tenant_admin, task=created)
        services.share_task(actor=world.tenant_admin, task=created, user=people["newcomer"], permission="view")
    client = api_as(people["guest"])
    client.get(f"/api/v1/projects/{world.website.pk}/tasks")
    with django_assert_max_num_queries(6):
        assert (response := client.get(f"/api/v1/projects/{world.website.pk}/tasks")).json()["count"] == 15
        assert response.status_code == 200 and len(response.json()["results"]) == 15
    with django_assert_max_num_queries(7):
        assert (response := client.get(f"/api/v1/tasks/{created.pk}/runs")).json()["count"] == 1
        assert response.status_code == 200 and len(response.json()["results"]) == 1


# -- lookup tables -------------------------------------------------------------------------------------------------


def test_lookup_csv_import_export_round_trip(world, api_as):
    table = services.create_lookup_table(actor=world.tenant_admin, org=world.marketing, name="Countries")
    client = api_as(world.tenant_admin)
    csv_text = 'key,value\nfr,France\nde,"Germany, Federal Republic"\nx,=cmd()\n'
    response = client.post(f"/api/v1/lookup-tables/{table.pk}/import", {"csv": csv_text}, format="json")
    assert response.status_code == 200 and response.json()["row_count"] == 3
    merge = client.post(
        f"/api/v1/lookup-tables/{table.pk}/import",
        {"file": io.BytesIO(b"fr,French Republic\nit,Italy\n"), "mode": "merge"},
        format="multipart",
    )
    assert merge.status_code == 200 and merge.json()["row_count"] == 4
    exported = client.get(f"/api/v1/lookup-tables/{table.pk}/export")
    assert exported["Content-Type"].startswith("text/csv")
    text = exported.content.decode()
    assert "fr,French Republic" in text and '"Germany, Federal Republic"' in text and "'=cmd()" in text


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [("a,b,c\n", "two columns"), ("", "Upload a CSV"), ("k,1\nk,2\n", "appears twice")],
)
def test_bad_csv_is_refused_and_the_rows_stay(world, api_as, csv_text, message):
    table = services.create_lookup_table(
        actor=world.tenant_admin, org=world.marketing, name="Codes", rows=[{"key": "a", "value": "1"}]
    )
    response = api_as(world.tenant_admin).post(f"/api/v1/lookup-tables/{table.pk}/import", {"csv": csv_text},
                                               format="json")  # fmt: skip
    assert response.status_code == 400 and message in response.content.decode()
    assert list(LookupRow.objects.values_list("key", "value")) == [("a", "1")]


def test_the_size_limit_comes_from_the_org_setting(world, api_as):
    services.set_setting(actor=world.tenant_admin, org=world.root, key="max_lookup_table_rows", value=2)
    rows = [{"key": str(i), "value": "v"} for i in range(3)]
    response = api_as(world.tenant_admin).post(
        f"/api/v1/orgs/{world.emea.pk}/lookup-tables", {"name": "Big", "rows": rows}, format="json"
    )
    assert response.status_code == 400 and "limit of 2 rows" in response.content.decode()
    assert not LookupRow.objects.exists()


def test_run_logs_are_purged_after_the_retention(world, task):
    from datetime import timedelta

    from django.utils import timezone

    run = services.run_task(actor=world.tenant_admin, task=task)
    run.log_lines.update(at=timezone.now() - timedelta(days=40))
    services.set_setting(actor=world.tenant_admin, org=world.marketing, key="run_log_retention_days", value=60)
    call_command("purge_run_logs", stdout=io.StringIO())
    assert run.log_lines.count() == 1
    services.set_setting(actor=world.tenant_admin, org=world.marketing, key="run_log_retention_days", value=30)
    out = io.StringIO()
    call_command("purge_run_logs", stdout=out)
    assert run.log_lines.count() == 0 and "Deleted 1" in out.getvalue()


def test_a_grant_lower_in_the_tree_does_not_see_a_parent_secret_value(world, api_as):
    user = UserFactory(username="deep-admin")
    add_to_tenant(user, world.acme)
    grant_role(actor=SYSTEM, target=world.campaigns, role="admin", user=user)
    variable = services.create_env_var(actor=world.tenant_admin, org=world.root, key="TOKEN", value=SECRET, secret=True)
    client = api_as(user)
    listed = client.get(f"/api/v1/orgs/{world.campaigns.pk}/env-vars")
    assert listed.status_code == 200 and listed.json()["results"][0]["value"] is None
    assert client.patch(f"/api/v1/env-vars/{variable.pk}", {"value": "x"}, format="json").status_code == 403
    assert SECRET not in listed.content.decode()


def test_a_project_holding_tasks_cannot_be_deleted(world, api_as, task):
    response = api_as(world.tenant_admin).delete(f"/api/v1/projects/{world.website.pk}")
    assert response.status_code == 409 and response.json()["code"] == "project_not_empty"
    assert Task.objects.filter(pk=task.pk).exists()
    services.delete_task(actor=world.tenant_admin, task=task)
    assert api_as(world.tenant_admin).delete(f"/api/v1/projects/{world.website.pk}").status_code == 204


@pytest.mark.parametrize("size", [2, 12])
def test_component_and_run_lists_have_a_query_budget_whatever_their_size(
    world, people, api_as, django_assert_max_num_queries, size
):
    parser = services.create_component(actor=world.tenant_admin, org=world.root, name="Parser")
    for index in range(size):
        user = UserFactory(username=f"dev{index}")
        add_to_tenant(user, world.acme)
        services.add_component_member(actor=world.tenant_admin, component=parser, user=user)
        services.publish_version(actor=user, component=parser, version=f"1.{index}", source="x")
        services.create_env_var(actor=world.tenant_admin, component=parser, key=f"K{index}", value="v")
        services.create_component(actor=world.tenant_admin, org=world.marketing, name=f"C{index}")
    task = services.create_task(actor=world.tenant_admin, project=world.website, name="T", steps=[])
    run = services.run_task(actor=world.tenant_admin, task=task)
    for index in range(size):
        services.tasks.log(run, f"line {index}")
        member = UserFactory(username=f"sharee{index}")
        add_to_tenant(member, world.acme)
        services.share_task(actor=world.tenant_admin, task=task, user=member, permission="view")
    client = api_as(people["admin"])
    for url, budget in (
        # Token, the object, the user's facts (a component declared above their org: seen from below, 2 queries),
        # team membership, then the page: the same whatever the size.
        ("/api/v1/components", 6),
        (f"/api/v1/components/{parser.pk}/team", 7),
        (f"/api/v1/components/{parser.pk}/versions", 7),
        (f"/api/v1/components/{parser.pk}/env-vars", 7),
        (f"/api/v1/runs/{run.pk}/logs", 6),
        (f"/api/v1/tasks/{task.pk}/shares", 7),
    ):
        client.get(url)
        with django_assert_max_num_queries(budget):
            assert (response := client.get(url)).status_code == 200, url
            assert (body := response.json()) and (body["results"] if isinstance(body, dict) else body), url


def test_explain_tells_why_for_tasks_and_components(world, people, task, component):
    from access import policy

    newcomer = people["newcomer"]
    services.share_task(actor=world.tenant_admin, task=task, user=newcomer, permission="run")
    policy.forget(newcomer)
    why = policy.explain(newcomer, "task.run", task)
    assert why.allowed and any("shared with you" in line for line in why.reasons)
    assert not policy.explain(newcomer, "task.edit", task).allowed
    integrator = policy.explain(people["integrator"], "task.edit", task)
    assert integrator.allowed and any("integrator" in line.lower() for line in integrator.reasons)
    push = policy.explain(people["admin"], policy.COMPONENT_PUSH, component)
    assert not push.allowed and "development team" in push.reasons[0]


def test_secret_form_fields_are_kept_out_of_error_reports(world, rf):
    """Were a view to crash while handling a secret, the e-mailed error report would not show it."""
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.contrib.sessions.backends.db import SessionStore
    from django.views.debug import SafeExceptionReporterFilter

    from resources import views

    variable = services.create_env_var(actor=world.tenant_admin, org=world.marketing, key="K", value="v", secret=True)
    credential = services.create_credential(actor=world.tenant_admin, org=world.marketing, name="C", kind="generic")
    calls = [
        (views.credentials, {}),
        (views.credential_detail, {"item_id": credential.pk}),
        (views.env_vars, {}),
        (views.env_var_detail, {"item_id": variable.pk}),
    ]
    for view, kwargs in calls:
        request = rf.post("/", {"action": "x", "secret": f"password={SECRET}", "new_secret": SECRET, "value": SECRET,
                                "name": "CRM"})  # fmt: skip
        request.user, request.session = world.tenant_admin, SessionStore()
        request._messages = FallbackStorage(request)
        view(request, org_id=world.marketing.pk, **kwargs)
        cleaned = SafeExceptionReporterFilter().get_post_parameters(request)
        assert SECRET not in str(dict(cleaned)) and cleaned["name"] == "CRM", view.__name__


def test_lookup_rows_page_and_search(world, people, api_as, django_assert_max_num_queries):
    rows = [{"key": f"k{i:03}", "value": str(i)} for i in range(120)]
    table = services.create_lookup_table(actor=world.tenant_admin, org=world.root, name="Big", rows=rows)
    client = api_as(people["integrator"])
    client.get(f"/api/v1/lookup-tables/{table.pk}/rows")
    with django_assert_max_num_queries(7):
        page = (response := client.get(f"/api/v1/lookup-tables/{table.pk}/rows?page_size=50&page=3")).json()
        assert response.status_code == 200 and len(page["results"]) == 20
    assert page["count"] == 120 and [r["key"] for r in page["results"]][:2] == ["k100", "k101"]
    assert client.get(f"/api/v1/lookup-tables/{table.pk}/rows?search=k11").json()["count"] == 10
    assert api_as(people["guest"]).get(f"/api/v1/lookup-tables/{table.pk}/rows").status_code == 404
    assert api_as(world.other_admin).get(f"/api/v1/lookup-tables/{table.pk}/rows").status_code == 404


def test_a_bad_encryption_key_is_reported_by_the_system_checks(settings):
    from resources.checks import encryption_keys_usable

    assert encryption_keys_usable() == []
    settings.FIELD_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    errors = encryption_keys_usable()
    assert [e.id for e in errors] == ["canopy.E001"] and "not-a-fernet-key" not in errors[0].msg
