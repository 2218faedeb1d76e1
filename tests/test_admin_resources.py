"""The admin of the shared resources: scoped to the tenant administrator's tenants, every write through the
services, secrets write-only (never in a list, a page or the history), a service's refusal shown and nothing saved."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.admin.models import LogEntry

from access.models import AuditEvent
from resources import crypto, services
from resources.models import Component, Credential, EnvVar, Hidden, LookupTable, OrgSetting, Run, Task
from tests.factories import make_project

SECRET = "s3cr3t-Horse-Battery-9f2c"
ENV_SECRET = "env-Secret-Value-77aa1"


@pytest.fixture
def stock(world):
    """One of each resource in Acme (alice's tenant) and in Globex (gina's), made through the services."""
    alice, gina = world.tenant_admin, world.other_admin
    acme = SimpleNamespace(
        credential=services.create_credential(
            actor=alice, org=world.root, name="Acme API", kind="api_key", secret={"key": SECRET}
        ),
        table=services.create_lookup_table(
            actor=alice, org=world.root, name="Acme countries", rows=[{"key": "FR", "value": "France"}]
        ),
        env_var=services.create_env_var(actor=alice, org=world.root, key="ACME_TOKEN", value=ENV_SECRET, secret=True),
        plain_var=services.create_env_var(actor=alice, org=world.root, key="ACME_REGION", value="eu-west-1"),
        component=services.create_component(actor=alice, org=world.root, name="Acme widgets"),
        setting=services.set_setting(actor=alice, org=world.root, key="run_log_retention_days", value=45),
        task=services.create_task(actor=alice, project=world.website, name="Acme sync"),
    )
    acme.hidden = services.hide(actor=alice, org=world.marketing, kind="lookup_table", name="Acme countries")
    acme.run = services.run_task(actor=alice, task=acme.task)
    services.add_component_member(actor=alice, component=acme.component, user=world.member)
    globex = SimpleNamespace(
        credential=services.create_credential(
            actor=gina, org=world.globex_root, name="Globex vault", kind="generic", secret={"pin": "0000"}
        ),
        table=services.create_lookup_table(actor=gina, org=world.globex_root, name="Globex codes"),
        env_var=services.create_env_var(actor=gina, org=world.globex_root, key="GLOBEX_KEY", value="x"),
        component=services.create_component(actor=gina, org=world.globex_root, name="Globex gears"),
        setting=services.set_setting(actor=gina, org=world.globex_root, key="max_lookup_table_rows", value=77),
        task=services.create_task(actor=gina, project=world.globex_project, name="Globex export"),
    )
    globex.run = services.run_task(actor=gina, task=globex.task)
    return SimpleNamespace(acme=acme, globex=globex)


# (admin URL name, attribute in ``stock``, text of Acme's object in the list, text of Globex's object)
PAGES = [
    ("credential", "credential", "Acme API", "Globex vault"),
    ("lookuptable", "table", "Acme countries", "Globex codes"),
    ("envvar", "env_var", "ACME_TOKEN", "GLOBEX_KEY"),
    ("component", "component", "Acme widgets", "Globex gears"),
    ("orgsetting", "setting", "run_log_retention_days", "max_lookup_table_rows"),
    ("task", "task", "Acme sync", "Globex export"),
    ("run", "run", "Acme sync", "Globex export"),
]


@pytest.mark.parametrize(("page", "attr", "ours", "theirs"), PAGES)
def test_a_tenant_admin_lists_only_their_tenants_resources(
    world, stock, as_user, django_assert_max_num_queries, page, attr, ours, theirs
):
    client = as_user(world.tenant_admin)
    with django_assert_max_num_queries(12):
        response = client.get(f"/admin/resources/{page}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert ours in html and theirs not in html and "Globex" not in html
    assert client.get(f"/admin/resources/{page}/{getattr(stock.acme, attr).pk}/change/").status_code == 200
    assert client.get(f"/admin/resources/{page}/{getattr(stock.globex, attr).pk}/change/").status_code == 404


def test_the_changelists_cost_no_query_per_row(world, stock, as_user, django_assert_max_num_queries):
    alice = world.tenant_admin
    for number in range(8):
        services.create_credential(actor=alice, org=world.marketing, name=f"Cred {number}", kind="generic")
        services.create_env_var(actor=alice, org=world.emea, key=f"VAR_{number}", value="v", secret=number % 2 == 0)
        task = services.create_task(actor=alice, project=world.website, name=f"Task {number}")
        services.run_task(actor=alice, task=task)
        services.create_lookup_table(actor=alice, org=world.root, name=f"Table {number}")
        services.hide(actor=alice, org=world.logistics, kind="lookup_table", name=f"Table {number}")
        services.create_component(actor=alice, org=world.marketing, name=f"Component {number}")
    for org in (world.marketing, world.emea, world.campaigns, world.logistics):
        for key, value in (("allow_task_sharing", True), ("run_log_retention_days", 10), ("default_runtime", "edge")):
            services.set_setting(actor=alice, org=org, key=key, value=value)
    client = as_user(alice)
    for page, *_ in [*PAGES, ("hidden",)]:  # 9 or more rows each: a query per row would blow the budget
        with django_assert_max_num_queries(12):
            assert (response := client.get(f"/admin/resources/{page}/")).status_code == 200
            assert response.context["cl"].result_count >= 9, page


def test_hides_are_listed_for_their_tenant_only(world, stock, as_user):
    client = as_user(world.tenant_admin)
    assert "acme countries" in client.get("/admin/resources/hidden/").content.decode()
    html = as_user(world.other_admin).get("/admin/resources/hidden/").content.decode()
    assert "acme countries" not in html
    assert as_user(world.other_admin).get(f"/admin/resources/hidden/{stock.acme.hidden.pk}/change/").status_code == 404


def test_a_superuser_sees_every_tenants_resources(world, stock, as_user):
    html = as_user(world.superuser).get("/admin/resources/credential/").content.decode()
    assert "Acme API" in html and "Globex vault" in html


@pytest.mark.parametrize("page", ["credential", "envvar", "run", "task"])
def test_a_member_who_is_not_staff_is_sent_to_the_admin_login(world, stock, as_user, page):
    response = as_user(world.member).get(f"/admin/resources/{page}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_org_and_project_choices_hold_only_the_admins_tenants(world, stock, as_user):
    client = as_user(world.tenant_admin)
    for page in ("credential", "lookuptable", "envvar", "component", "orgsetting", "hidden"):
        html = client.get(f"/admin/resources/{page}/add/").content.decode()
        assert str(world.marketing.pk) in html, page
        assert str(world.globex_root.pk) not in html and "Globex" not in html, page
    html = client.get("/admin/resources/task/add/").content.decode()
    assert str(world.website.pk) in html and str(world.globex_project.pk) not in html


def test_another_tenants_org_cannot_be_posted(world, as_user):
    client = as_user(world.tenant_admin)
    client.post(
        "/admin/resources/credential/add/",
        {"org": str(world.globex_root.pk), "name": "Sneaky", "kind": "generic", "fields": "{}"},
    )
    assert not Credential.objects.filter(name="Sneaky").exists()


# -- secrets -------------------------------------------------------------------------------------------------------


def test_a_credential_added_in_the_admin_stores_its_secret_encrypted_and_never_shows_it(world, as_user):
    client = as_user(world.tenant_admin)
    response = client.post(
        "/admin/resources/credential/add/",
        {
            "org": str(world.marketing.pk),
            "name": "Billing",
            "kind": "http_basic",
            "description": "",
            "fields": '{"username": "billing-bot"}',
            "set_secret": f'{{"password": "{SECRET}"}}',
        },
    )
    assert response.status_code == 302
    credential = Credential.objects.get(name="Billing")
    assert credential.created_by == world.tenant_admin
    assert credential.secret_names == ["password"]
    assert SECRET not in credential.secret_ciphertext
    assert crypto.decrypt(credential.secret_ciphertext) == {"password": SECRET}
    event = AuditEvent.objects.get(action="credential.create", target_id=str(credential.pk))
    assert SECRET not in str(event.changes)
    for url in ("/admin/resources/credential/", f"/admin/resources/credential/{credential.pk}/change/",
                f"/admin/resources/credential/{credential.pk}/history/"):  # fmt: skip
        html = client.get(url).content.decode()
        assert "Billing" in html
        assert SECRET not in html and credential.secret_ciphertext not in html, url
    assert "password" in client.get(f"/admin/resources/credential/{credential.pk}/change/").content.decode()
    assert not any(SECRET in entry.change_message for entry in LogEntry.objects.all())


def test_setting_a_secret_on_change_goes_through_the_service_and_keeps_the_others(world, stock, as_user):
    credential = stock.acme.credential
    client = as_user(world.tenant_admin)
    response = client.post(
        f"/admin/resources/credential/{credential.pk}/change/",
        {
            "name": "Acme API",
            "description": "rotated",
            "fields": '{"header": "X-Key"}',
            "set_secret": '{"key": "new-1"}',
        },
    )
    assert response.status_code == 302
    credential.refresh_from_db()
    assert crypto.decrypt(credential.secret_ciphertext) == {"key": "new-1"}
    assert credential.description == "rotated" and credential.fields == {"header": "X-Key"}
    event = AuditEvent.objects.filter(action="credential.update", target_id=str(credential.pk)).latest("created_at")
    assert "new-1" not in str(event.changes) and event.changes["secret_fields_set"] == ["key"]
    # Saving without a secret keeps the stored one.
    client.post(
        f"/admin/resources/credential/{credential.pk}/change/",
        {"name": "Acme API", "description": "again", "fields": '{"header": "X-Key"}', "set_secret": ""},
    )
    credential.refresh_from_db()
    assert credential.description == "again" and crypto.decrypt(credential.secret_ciphertext) == {"key": "new-1"}


def test_a_bad_secret_is_a_form_error_that_does_not_echo_it(world, stock, as_user):
    credential = stock.acme.credential
    before = credential.secret_ciphertext
    html = (
        as_user(world.tenant_admin)
        .post(
            f"/admin/resources/credential/{credential.pk}/change/",
            {"name": "Acme API", "description": "", "fields": "{}", "set_secret": "not-json-TOPSECRET"},
        )
        .content.decode()
    )
    assert "Give a JSON object" in html and "TOPSECRET" not in html
    credential.refresh_from_db()
    assert credential.secret_ciphertext == before


def test_a_secret_variable_is_never_shown_and_its_new_value_is_write_only(world, stock, as_user):
    variable = stock.acme.env_var
    client = as_user(world.tenant_admin)
    for url in ("/admin/resources/envvar/", f"/admin/resources/envvar/{variable.pk}/change/"):
        html = client.get(url).content.decode()
        assert ENV_SECRET not in html and variable.secret_ciphertext not in html
        assert "never shown" in html
    assert "eu-west-1" in client.get("/admin/resources/envvar/").content.decode()  # a plain value is listed
    response = client.post(
        f"/admin/resources/envvar/{variable.pk}/change/",
        {"key": "ACME_TOKEN", "new_value": "rotated-Value-1", "secret": "on"},
    )
    assert response.status_code == 302
    variable.refresh_from_db()
    assert variable.secret and variable.value == "" and crypto.decrypt(variable.secret_ciphertext) == "rotated-Value-1"
    html = client.get(f"/admin/resources/envvar/{variable.pk}/history/").content.decode()
    assert "rotated-Value-1" not in html
    assert not any("rotated-Value-1" in e.change_message for e in LogEntry.objects.all())
    assert not any("rotated-Value-1" in str(e.changes) for e in AuditEvent.objects.filter(action="env_var.update"))


def test_a_secret_variable_added_in_the_admin_is_stored_encrypted(world, as_user):
    client = as_user(world.tenant_admin)
    response = client.post(
        "/admin/resources/envvar/add/",
        {"org": str(world.emea.pk), "key": "DB_PASSWORD", "new_value": ENV_SECRET, "secret": "on"},
    )
    assert response.status_code == 302
    variable = EnvVar.objects.get(key="DB_PASSWORD")
    assert variable.value == "" and crypto.decrypt(variable.secret_ciphertext) == ENV_SECRET
    assert ENV_SECRET not in client.get("/admin/resources/envvar/").content.decode()


# -- service refusals ----------------------------------------------------------------------------------------------


def test_a_name_locked_above_is_an_error_and_nothing_is_saved(world, as_user):
    alice = world.tenant_admin
    services.create_credential(actor=alice, org=world.root, name="Payments", kind="generic", locked=True)
    count, events = Credential.objects.count(), AuditEvent.objects.count()
    client = as_user(alice)
    response = client.post(
        "/admin/resources/credential/add/",
        {"org": str(world.marketing.pk), "name": "payments", "kind": "generic", "fields": "{}",
         "set_secret": '{"token": "abc"}'},
    )  # fmt: skip
    assert response.status_code == 303 and response["Location"] == "/admin/resources/credential/add/"
    html = client.get(response["Location"]).content.decode()  # the form again, with the service's refusal
    assert "locked by Acme" in html and "error" in html
    assert Credential.objects.count() == count and AuditEvent.objects.count() == events
    assert not Credential.objects.filter(org=world.marketing).exists()
    assert not LogEntry.objects.filter(object_repr="payments").exists()


def test_a_setting_locked_above_is_an_error_and_nothing_changes(world, as_user):
    alice = world.tenant_admin
    services.set_setting(actor=alice, org=world.root, key="allow_task_sharing", value=False, locked=True)
    client = as_user(alice)
    response = client.post(
        "/admin/resources/orgsetting/add/",
        {"org": str(world.emea.pk), "key": "allow_task_sharing", "value": "true"},
    )
    assert response.status_code == 303
    assert "locked by Acme" in client.get(response["Location"]).content.decode()
    assert not OrgSetting.objects.filter(org=world.emea).exists()


def test_locking_what_is_overridden_below_is_refused_and_the_lock_is_not_saved(world, stock, as_user):
    alice = world.tenant_admin
    services.create_lookup_table(actor=alice, org=world.emea, name="Acme countries")
    table = stock.acme.table
    client = as_user(alice)
    response = client.post(
        f"/admin/resources/lookuptable/{table.pk}/change/",
        {"name": "Acme countries", "description": "", "locked": "on", "rows-TOTAL_FORMS": "1",
         "rows-INITIAL_FORMS": "1"},
    )  # fmt: skip
    assert response.status_code == 303
    assert "overridden or hidden below" in client.get(response["Location"]).content.decode()
    table.refresh_from_db()
    assert not table.locked


# -- writes through the services -----------------------------------------------------------------------------------


def test_a_lookup_table_with_csv_rows_is_created_through_the_service(world, as_user):
    response = as_user(world.tenant_admin).post(
        "/admin/resources/lookuptable/add/",
        {"org": str(world.logistics.pk), "name": "Depots", "description": "", "replace_rows": "key,value\nLYS,Lyon\n"
         "CDG,Paris\n", "rows-TOTAL_FORMS": "0", "rows-INITIAL_FORMS": "0"},
    )  # fmt: skip
    assert response.status_code == 302
    table = LookupTable.objects.get(name="Depots")
    assert dict(table.rows.values_list("key", "value")) == {"LYS": "Lyon", "CDG": "Paris"}
    assert AuditEvent.objects.filter(action="lookup_table.create", target_id=str(table.pk)).exists()


def test_a_component_team_and_a_task_are_written_through_the_services(world, stock, as_user):
    client = as_user(world.tenant_admin)
    component = stock.acme.component
    html = client.get(f"/admin/resources/component/{component.pk}/change/").content.decode()
    assert "bob" in html  # the development team, read-only inline
    response = client.post(
        f"/admin/resources/component/{component.pk}/change/",
        {"name": "Acme widgets", "description": "", "repository_url": "", "development_team": [],
         "members-TOTAL_FORMS": "1", "members-INITIAL_FORMS": "1", "versions-TOTAL_FORMS": "0",
         "versions-INITIAL_FORMS": "0"},
    )  # fmt: skip
    assert response.status_code == 302
    assert not Component.objects.get(pk=component.pk).members.exists()
    assert AuditEvent.objects.filter(action="component.member_remove").exists()
    project = make_project(world.logistics, "Fleet")
    response = client.post(
        "/admin/resources/task/add/",
        {"project": str(project.pk), "name": "Ping", "description": "",
         "steps": '[{"type": "log", "message": "hello"}]'},
    )  # fmt: skip
    assert response.status_code == 302
    task = Task.objects.get(name="Ping")
    assert task.created_by == world.tenant_admin
    assert AuditEvent.objects.filter(action="task.create", target_id=str(task.pk)).exists()


def test_deleting_goes_through_the_service(world, stock, as_user):
    client = as_user(world.tenant_admin)
    credential = stock.acme.credential
    assert client.post(f"/admin/resources/credential/{credential.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Credential.objects.filter(pk=credential.pk).exists()
    assert AuditEvent.objects.filter(action="credential.delete", target_id=str(credential.pk)).exists()
    hidden = stock.acme.hidden
    client.post(f"/admin/resources/hidden/{hidden.pk}/delete/", {"post": "yes"})
    assert not Hidden.objects.filter(pk=hidden.pk).exists()
    other = stock.globex.credential
    assert client.post(f"/admin/resources/credential/{other.pk}/delete/", {"post": "yes"}).status_code == 404
    assert Credential.objects.filter(pk=other.pk).exists()


# -- runs ----------------------------------------------------------------------------------------------------------


def test_runs_are_read_only_and_filter_by_status(world, stock, as_user):
    client = as_user(world.tenant_admin)
    run = stock.acme.run
    assert client.get("/admin/resources/run/add/").status_code == 403
    page = client.get(f"/admin/resources/run/{run.pk}/change/").content.decode()
    assert "Queued by alice" in page  # the log lines, inline
    client.post(f"/admin/resources/run/{run.pk}/change/", {"status": "succeeded"})
    assert client.post(f"/admin/resources/run/{run.pk}/delete/", {"post": "yes"}).status_code == 403
    run.refresh_from_db()
    assert run.status == Run.Status.QUEUED
    assert "Acme sync" in client.get("/admin/resources/run/?status__exact=queued").content.decode()
    assert "Acme sync" not in client.get("/admin/resources/run/?status__exact=failed").content.decode()


def test_stopping_runs_goes_through_the_service(world, stock, as_user):
    client = as_user(world.tenant_admin)
    run = stock.acme.run
    response = client.post(
        "/admin/resources/run/",
        {"action": "stop_selected", "_selected_action": [str(run.pk), str(stock.globex.run.pk)]},
    )
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED and run.stopped_by == world.tenant_admin
    assert Run.objects.get(pk=stock.globex.run.pk).status == Run.Status.QUEUED


def test_hiding_an_inherited_declaration_goes_through_the_service(world, stock, as_user):
    client = as_user(world.tenant_admin)
    response = client.post(
        "/admin/resources/hidden/add/", {"org": str(world.emea.pk), "kind": "credential", "name": "Acme API"}
    )
    assert response.status_code == 302
    hidden = Hidden.objects.get(org=world.emea, kind="credential")
    assert hidden.name == "acme api" and hidden.created_by == world.tenant_admin
    assert AuditEvent.objects.filter(action="hidden.create", target_id=str(hidden.pk)).exists()
    response = client.post(  # nothing of that name is inherited at the root: refused, nothing saved
        "/admin/resources/hidden/add/", {"org": str(world.root.pk), "kind": "credential", "name": "Nope"}
    )
    assert response.status_code == 303
    assert "is inherited here" in client.get(response["Location"]).content.decode()
    assert not Hidden.objects.filter(org=world.root).exists()
