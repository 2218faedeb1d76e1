"""The console's shared-resource pages: credentials, lookup tables, environment variables, components, the effective
configuration, and the tasks and runs of a project. Who may open and use each page, what a refusal changes (nothing)
and that no secret value ever reaches a page.

Personas: alice administers Acme; admin-m / integrator-m / guest-m hold Admin / Integrator / Guest on Marketing;
bob is in Acme without a grant; gina administers Globex, another tenant.
"""

from __future__ import annotations

from typing import Any

import pytest

from access.models import AuditEvent
from orgs.models import Organization
from resources import services
from resources.models import (
    Component,
    ComponentMember,
    Credential,
    EnvVar,
    Hidden,
    LookupRow,
    LookupTable,
    OrgSetting,
    Run,
    Task,
    TaskUserShare,
)

SECRET = "s3cr3t-VALUE-do-not-show-9f2c"
ENV_SECRET = "env-s3cr3t-VALUE-7d1a"


def url(org: Organization, suffix: str = "") -> str:
    return f"/o/{org.pk}/{suffix}"


def snapshot() -> tuple[Any, ...]:
    """Everything a resource page could write: compared before and after a refused request."""
    return (
        list(
            Credential.objects.order_by("pk").values_list(
                "pk", "name", "fields", "secret_names", "locked", "secret_ciphertext"
            )
        ),
        list(LookupTable.objects.order_by("pk").values_list("pk", "name", "locked")),
        sorted(LookupRow.objects.values_list("table_id", "key", "value")),
        list(EnvVar.objects.order_by("pk").values_list("pk", "key", "value", "secret", "locked")),
        list(Component.objects.order_by("pk").values_list("pk", "name", "repository_url", "locked")),
        list(ComponentMember.objects.values_list("component_id", "user_id")),
        list(OrgSetting.objects.order_by("pk").values_list("pk", "key", "value", "locked")),
        list(Hidden.objects.values_list("org_id", "kind", "name")),
        list(Task.objects.order_by("pk").values_list("pk", "name", "steps")),
        list(Run.objects.order_by("pk").values_list("pk", "status")),
        TaskUserShare.objects.count(),
        AuditEvent.objects.count(),
    )  # fmt: skip


@pytest.fixture
def stock(world, people) -> dict[str, Any]:
    """A credential, a lookup table, variables and a component declared at the root (inherited by Marketing), and
    some declared at Marketing itself; a task in the Website project."""
    alice = world.tenant_admin
    root_cred = services.create_credential(
        actor=alice, org=world.root, name="Shared API", kind="api_key", fields={"header": "X-Key"},
        secret={"key": SECRET},
    )  # fmt: skip
    own_cred = services.create_credential(
        actor=alice, org=world.marketing, name="Mailer", kind="http_basic", fields={"username": "mailer"},
        secret={"password": SECRET},
    )  # fmt: skip
    table = services.create_lookup_table(
        actor=alice, org=world.root, name="Countries", rows=[{"key": "FR", "value": "France"}]
    )
    plain = services.create_env_var(actor=alice, org=world.root, key="REGION", value="eu-west-1")
    secret = services.create_env_var(actor=alice, org=world.marketing, key="TOKEN", value=ENV_SECRET, secret=True)
    component = services.create_component(actor=alice, org=world.root, name="Billing", description="Bills")
    task = services.create_task(
        actor=alice, project=world.website, name="Sync", steps=[{"type": "log", "message": "hello"}]
    )
    return {
        "root_cred": root_cred, "own_cred": own_cred, "table": table, "plain": plain, "secret": secret,
        "component": component, "task": task,
    }  # fmt: skip


def html_of(response: Any) -> str:
    return response.content.decode()


# -- who opens which list ------------------------------------------------------------------------------------------

LISTS = ["credentials/", "lookup-tables/", "env-vars/", "components/", "settings/"]
# role → the list pages it may open (DESIGN: Guests see no credentials, lookup tables or variables)
OPENS = {
    "admin": set(LISTS),
    "integrator": set(LISTS),
    "guest": {"components/", "settings/"},
}


@pytest.mark.parametrize("role", ["admin", "integrator", "guest"])
def test_each_role_opens_the_lists_it_may_see_and_is_refused_the_others(world, people, stock, as_user, role):
    client = as_user(people[role])
    for suffix in LISTS:
        expected = 200 if suffix in OPENS[role] else 403
        assert client.get(url(world.marketing, suffix)).status_code == expected, suffix
    tasks = client.get(url(world.marketing, f"p/{world.website.pk}/tasks/"))
    assert tasks.status_code == 200 and "Sync" in html_of(tasks)


@pytest.mark.parametrize("who", ["member", "outsider", "other_admin"])
def test_invisible_orgs_and_objects_answer_404(world, stock, as_user, who):
    client = as_user(getattr(world, who))
    before = snapshot()
    for suffix in [
        *LISTS,
        f"credentials/{stock['own_cred'].pk}/",
        f"lookup-tables/{stock['table'].pk}/",
        f"lookup-tables/{stock['table'].pk}/export.csv",
        f"env-vars/{stock['plain'].pk}/",
        f"components/{stock['component'].pk}/",
        f"p/{world.website.pk}/tasks/",
        f"tasks/{stock['task'].pk}/",
    ]:
        assert client.get(url(world.marketing, suffix)).status_code == 404, suffix
        assert client.post(url(world.marketing, suffix), {"action": "delete", "confirmed": "1"}).status_code == 404, (
            suffix
        )
    assert snapshot() == before


def test_another_tenants_objects_answer_404_under_an_org_the_user_sees(world, stock, as_user):
    """Gina administers Globex: Acme's objects are not found under her own org's URLs, nor hers under Acme's."""
    client = as_user(world.other_admin)
    for suffix in (
        f"credentials/{stock['own_cred'].pk}/",
        f"lookup-tables/{stock['table'].pk}/",
        f"env-vars/{stock['plain'].pk}/",
        f"components/{stock['component'].pk}/",
        f"tasks/{stock['task'].pk}/",
        f"p/{world.website.pk}/tasks/",
    ):
        assert client.get(url(world.globex_root, suffix)).status_code == 404, suffix
    theirs = services.create_credential(
        actor=world.other_admin, org=world.globex_root, name="Theirs", kind="generic", fields={"a": "b"}
    )
    assert as_user(world.tenant_admin).get(url(world.marketing, f"credentials/{theirs.pk}/")).status_code == 404


def test_an_object_of_a_sibling_branch_answers_404(world, stock, as_user):
    logistics_cred = services.create_credential(
        actor=world.tenant_admin, org=world.logistics, name="Trucks", kind="generic", fields={"a": "b"}
    )
    client = as_user(world.tenant_admin)
    assert client.get(url(world.marketing, f"credentials/{logistics_cred.pk}/")).status_code == 404
    assert client.get(url(world.logistics, f"credentials/{logistics_cred.pk}/")).status_code == 200


def test_anonymous_visitors_are_sent_to_log_in(world, stock, client):
    for suffix in [*LISTS, f"tasks/{stock['task'].pk}/"]:
        response = client.get(url(world.marketing, suffix))
        assert response.status_code == 302 and response["Location"].startswith("/login/"), suffix


# -- the lists cost a constant number of queries -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "limit"),
    # (tasks: its create form's runtime choices add the effective runtimes, two queries, and the settings, one; its
    # pages of 50 (#11 §6) one more, the count)
    [("credentials/", 10), ("lookup-tables/", 10), ("env-vars/", 10), ("components/", 10), ("settings/", 15),
     ("tasks", 12)],
)  # fmt: skip
def test_list_pages_cost_a_bounded_number_of_queries(
    world, people, stock, as_user, django_assert_max_num_queries, suffix, limit
):
    alice = world.tenant_admin
    for i in range(8):
        services.create_credential(actor=alice, org=world.emea, name=f"c{i}", kind="generic", fields={"a": "b"})
        services.create_credential(actor=alice, org=world.marketing, name=f"c{i}", kind="generic", fields={"a": "b"})
        services.create_lookup_table(actor=alice, org=world.marketing, name=f"t{i}", rows=[{"key": "k", "value": "v"}])
        services.create_env_var(actor=alice, org=world.marketing, key=f"V{i}", value="x", secret=i % 2 == 0)
        services.create_component(actor=alice, org=world.marketing, name=f"comp{i}")
        services.create_task(actor=alice, project=world.website, name=f"task{i}")
    services.set_setting(actor=alice, org=world.root, key="run_log_retention_days", value=9)
    page = url(world.emea, suffix) if suffix != "tasks" else url(world.marketing, f"p/{world.website.pk}/tasks/")
    client = as_user(people["admin"])
    client.get(page)  # the first visit remembers the org (one write)
    with django_assert_max_num_queries(limit):  # the same with 1 or 100 items: no query per row
        response = client.get(page)
        listed = {"credentials/": "c7", "lookup-tables/": "t7", "env-vars/": "V7", "components/": "comp7"}
        assert listed.get(suffix, "task7" if suffix == "tasks" else "run_log_retention_days") in response.text
    assert response.status_code == 200


# -- credentials ---------------------------------------------------------------------------------------------------


def test_the_credential_list_shows_source_lock_and_overrides(world, people, stock, as_user):
    services.create_credential(
        actor=world.tenant_admin, org=world.marketing, name="shared api", kind="generic", fields={"x": "y"}
    )
    html = html_of(as_user(people["integrator"]).get(url(world.marketing, "credentials/")))
    assert "Mailer" in html and "shared api" in html and "Shared API" not in html  # overridden here
    assert "overrides Acme" in html
    assert 'value="create"' in html  # Integrators manage credentials


def test_an_integrator_creates_a_credential_and_the_secret_never_shows(world, people, as_user):
    client = as_user(people["integrator"])
    response = client.post(
        url(world.marketing, "credentials/"),
        {"action": "create", "name": "CRM", "kind": "http_basic", "field_values": "username=crm",
         "secret": f"password={SECRET}"},
    )  # fmt: skip
    credential = Credential.objects.get(name="CRM")
    assert response.status_code == 302 and response["Location"] == url(world.marketing, f"credentials/{credential.pk}/")
    assert credential.fields == {"username": "crm"} and credential.secret_names == ["password"]
    for page in ("credentials/", f"credentials/{credential.pk}/"):
        html = html_of(client.get(url(world.marketing, page)))
        assert SECRET not in html and "CRM" in html
    assert "crm" in html and "password" in html and "••••• (secret)" in html


def test_a_credential_refused_by_a_rule_shows_409_and_never_echoes_the_secret(world, people, stock, as_user):
    client = as_user(people["integrator"])
    before = snapshot()
    response = client.post(
        url(world.marketing, "credentials/"),
        {"action": "create", "name": "mailer", "kind": "http_basic", "field_values": "username=x",
         "secret": f"password={SECRET}"},
    )  # fmt: skip
    html = html_of(response)
    assert response.status_code == 409 and "already declared" in html and "Nothing was changed" in html
    assert SECRET not in html
    assert snapshot() == before


def test_a_name_locked_above_cannot_be_overridden_409(world, people, stock, as_user):
    services.update_credential(actor=world.tenant_admin, credential=stock["root_cred"], locked=True)
    before = snapshot()
    response = as_user(people["integrator"]).post(
        url(world.marketing, "credentials/"),
        {"action": "create", "name": "shared api", "kind": "generic", "field_values": "a=b"},
    )
    assert response.status_code == 409 and "locked by Acme" in html_of(response)
    assert snapshot() == before


def test_bad_credential_input_shows_field_errors_with_400_and_nothing_changes(world, people, as_user):
    client = as_user(people["integrator"])
    before = snapshot()
    response = client.post(
        url(world.marketing, "credentials/"),
        {"action": "create", "name": "CRM", "kind": "http_basic", "field_values": "username=crm", "secret": ""},
    )
    assert response.status_code == 400 and "Required for http_basic: password" in html_of(response)
    response = client.post(
        url(world.marketing, "credentials/"),
        {"action": "create", "name": "CRM", "kind": "generic", "field_values": "no equals sign"},
    )
    assert response.status_code == 400 and "write name=value" in html_of(response)
    assert snapshot() == before


def test_a_guest_cannot_open_or_write_credentials(world, people, stock, as_user):
    client = as_user(people["guest"])
    before = snapshot()
    assert client.get(url(world.marketing, f"credentials/{stock['own_cred'].pk}/")).status_code == 403
    response = client.post(url(world.marketing, "credentials/"), {"action": "create", "name": "X", "kind": "generic"})
    assert response.status_code == 403
    assert (
        client.post(
            url(world.marketing, f"credentials/{stock['own_cred'].pk}/"), {"action": "delete", "confirmed": "1"}
        ).status_code
        == 403
    )
    assert snapshot() == before


def test_editing_a_credential_sets_a_new_secret_without_showing_it(world, people, stock, as_user):
    client = as_user(people["integrator"])
    page = url(world.marketing, f"credentials/{stock['own_cred'].pk}/")
    html = html_of(client.get(page))
    assert "Set a new value for password" in html and SECRET not in html
    response = client.post(
        page,
        {"action": "edit", "name": "Mailer 2", "field_values": "username=other", "set__password": "brand-new-pw"},
    )
    assert response.status_code == 302
    credential = Credential.objects.get(pk=stock["own_cred"].pk)
    assert credential.name == "Mailer 2" and credential.fields == {"username": "other"}
    from resources import crypto

    assert crypto.decrypt(credential.secret_ciphertext) == {"password": "brand-new-pw"}
    html = html_of(client.get(page))
    assert "brand-new-pw" not in html and SECRET not in html


def test_an_inherited_credential_is_read_only_below_and_deleted_where_declared(world, people, stock, as_user):
    client = as_user(people["integrator"])
    page = url(world.marketing, f"credentials/{stock['root_cred'].pk}/")
    html = html_of(client.get(page))
    assert "inherited" in html and 'value="edit"' not in html and 'value="delete"' not in html
    before = snapshot()
    assert client.post(page, {"action": "delete", "confirmed": "1"}).status_code == 403
    assert snapshot() == before
    own = url(world.marketing, f"credentials/{stock['own_cred'].pk}/")
    assert client.post(own, {"action": "delete", "confirmed": "1"}).status_code == 302
    assert not Credential.objects.filter(pk=stock["own_cred"].pk).exists()


# -- lookup tables -------------------------------------------------------------------------------------------------


def test_an_integrator_creates_edits_imports_and_exports_a_lookup_table(world, people, as_user):
    client = as_user(people["integrator"])
    response = client.post(
        url(world.marketing, "lookup-tables/"),
        {"action": "create", "name": "Codes", "rows": 'a,1\nb,"two, three"'},
    )
    table = LookupTable.objects.get(name="Codes")
    page = url(world.marketing, f"lookup-tables/{table.pk}/")
    assert response.status_code == 302 and response["Location"] == page
    assert dict(table.rows.values_list("key", "value")) == {"a": "1", "b": "two, three"}
    html = html_of(client.get(page))
    assert "two, three" in html and 'value="import"' in html
    assert client.post(page, {"action": "edit", "name": "Codes", "rows": "c,3"}).status_code == 302
    assert dict(table.rows.values_list("key", "value")) == {"c": "3"}
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("codes.csv", b"key,value\nd,4\nc,33\n", content_type="text/csv")
    assert client.post(page, {"action": "import", "mode": "merge", "file": upload}).status_code == 302
    assert dict(table.rows.values_list("key", "value")) == {"c": "33", "d": "4"}
    export = client.get(url(world.marketing, f"lookup-tables/{table.pk}/export.csv"))
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    assert "attachment" in export["Content-Disposition"]
    assert export.content.decode().splitlines() == ["key,value", "c,33", "d,4"]
    assert client.post(page, {"action": "delete", "confirmed": "1"}).status_code == 302
    assert not LookupTable.objects.filter(pk=table.pk).exists()


def test_a_bad_csv_import_shows_the_error_with_400_and_nothing_changes(world, people, stock, as_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = as_user(world.tenant_admin)
    page = url(world.root, f"lookup-tables/{stock['table'].pk}/")
    before = snapshot()
    upload = SimpleUploadedFile("bad.csv", b"a,b,c\n", content_type="text/csv")
    response = client.post(page, {"action": "import", "mode": "replace", "file": upload})
    assert response.status_code == 400 and "exactly two columns" in html_of(response)
    response = client.post(page, {"action": "edit", "name": "Countries", "rows": "FR,France\nFR,again"})
    assert response.status_code == 400 and "appears twice" in html_of(response)
    assert snapshot() == before


def test_a_guest_cannot_see_lookup_tables_and_an_integrator_cannot_change_an_inherited_one(
    world, people, stock, as_user
):
    before = snapshot()
    page = url(world.marketing, f"lookup-tables/{stock['table'].pk}/")
    assert as_user(people["guest"]).get(page).status_code == 403
    assert as_user(people["guest"]).get(page + "export.csv").status_code == 403
    client = as_user(people["integrator"])
    html = html_of(client.get(page))
    assert "France" in html and 'value="edit"' not in html
    assert client.post(page, {"action": "edit", "name": "X", "rows": ""}).status_code == 403
    assert snapshot() == before


# -- environment variables -----------------------------------------------------------------------------------------


def test_integrators_read_variables_without_secret_values_and_cannot_change_them(world, people, stock, as_user):
    client = as_user(people["integrator"])
    response = client.get(url(world.marketing, "env-vars/"))
    html = html_of(response)
    assert response.status_code == 200 and "eu-west-1" in html and "••••• (secret)" in html
    assert ENV_SECRET not in html and 'value="create"' not in html
    detail = html_of(client.get(url(world.marketing, f"env-vars/{stock['secret'].pk}/")))
    assert ENV_SECRET not in detail and 'value="edit"' not in detail
    before = snapshot()
    assert (
        client.post(url(world.marketing, "env-vars/"), {"action": "create", "key": "X", "value": "1"}).status_code
        == 403
    )
    assert (
        client.post(
            url(world.marketing, f"env-vars/{stock['secret'].pk}/"), {"action": "delete", "confirmed": "1"}
        ).status_code
        == 403
    )
    assert snapshot() == before


def test_an_admin_creates_edits_and_deletes_variables_and_secrets_never_show(world, people, stock, as_user):
    client = as_user(people["admin"])
    response = client.post(
        url(world.marketing, "env-vars/"), {"action": "create", "key": "API_PASSWORD", "value": SECRET, "secret": "on"}
    )
    assert response.status_code == 302
    variable = EnvVar.objects.get(key="API_PASSWORD")
    assert variable.secret and variable.value == ""
    page = url(world.marketing, f"env-vars/{variable.pk}/")
    for html in (html_of(client.get(url(world.marketing, "env-vars/"))), html_of(client.get(page))):
        assert SECRET not in html and "API_PASSWORD" in html
    # Renamed, value kept (an empty secret input keeps it).
    assert client.post(page, {"action": "edit", "key": "API_PASS", "value": "", "secret": "on"}).status_code == 302
    variable.refresh_from_db()
    assert variable.key == "API_PASS" and variable.secret_ciphertext
    # A refused create (taken key) re-displays the form without the secret value, 409.
    before = snapshot()
    response = client.post(
        url(world.marketing, "env-vars/"), {"action": "create", "key": "api_pass", "value": SECRET, "secret": "on"}
    )
    assert response.status_code == 409 and SECRET not in html_of(response)
    assert snapshot() == before
    assert client.post(page, {"action": "delete", "confirmed": "1"}).status_code == 302
    assert not EnvVar.objects.filter(pk=variable.pk).exists()


def test_bad_variable_input_is_a_400_and_nothing_changes(world, people, stock, as_user):
    client = as_user(people["admin"])
    before = snapshot()
    response = client.post(url(world.marketing, "env-vars/"), {"action": "create", "key": "1bad", "value": "x"})
    assert response.status_code == 400 and "letters, digits or underscores" in html_of(response)
    response = client.post(url(world.marketing, "env-vars/"), {"action": "create", "key": "EMPTY", "secret": "on"})
    assert response.status_code == 400 and "needs a value" in html_of(response)
    assert snapshot() == before


def test_a_guest_cannot_see_variables(world, people, stock, as_user):
    client = as_user(people["guest"])
    assert client.get(url(world.marketing, "env-vars/")).status_code == 403
    assert client.get(url(world.marketing, f"env-vars/{stock['plain'].pk}/")).status_code == 403


# -- components ----------------------------------------------------------------------------------------------------


def test_guests_and_integrators_see_components_but_only_admins_manage_them(world, people, stock, as_user):
    page = url(world.marketing, f"components/{stock['component'].pk}/")
    for role in ("guest", "integrator"):
        client = as_user(people[role])
        html = html_of(client.get(url(world.marketing, "components/")))
        assert "Billing" in html and 'value="create"' not in html
        assert client.get(page).status_code == 200
        before = snapshot()
        response = client.post(url(world.marketing, "components/"), {"action": "create", "name": "Mine"})
        assert response.status_code == 403
        assert client.post(page, {"action": "add_member", "username": "newcomer"}).status_code == 403
        assert snapshot() == before
    html = html_of(as_user(people["admin"]).get(url(world.marketing, "components/")))
    assert 'value="create"' in html


def test_an_admin_creates_a_component_and_manages_its_team_and_variables(world, people, as_user):
    client = as_user(people["admin"])
    response = client.post(
        url(world.marketing, "components/"),
        {"action": "create", "name": "Parser", "description": "Parses", "repository_url": "https://git.example.com/p"},
    )
    component = Component.objects.get(name="Parser")
    page = url(world.marketing, f"components/{component.pk}/")
    assert response.status_code == 302 and response["Location"] == page
    assert client.post(page, {"action": "add_member", "username": "newcomer"}).status_code == 302
    member = ComponentMember.objects.get(component=component)
    assert member.user == people["newcomer"]
    services.publish_version(actor=people["newcomer"], component=component, version="1.0.0", source="print(1)")
    response = client.post(page, {"action": "add_env", "key": "DEBUG", "value": "1"})
    assert response.status_code == 302
    response = client.post(page, {"action": "add_env", "key": "PW", "value": ENV_SECRET, "secret": "on"})
    assert response.status_code == 302
    html = html_of(client.get(page))
    assert "newcomer" in html and "1.0.0" in html and "DEBUG" in html and "https://git.example.com/p" in html
    assert ENV_SECRET not in html and "••••• (secret)" in html
    assert client.post(page, {"action": "remove_member", "confirmed": "1", "member": member.pk}).status_code == 302
    assert not ComponentMember.objects.filter(component=component).exists()
    assert client.post(page, {"action": "delete", "confirmed": "1"}).status_code == 302
    assert not Component.objects.filter(pk=component.pk).exists()


def test_bad_component_input_is_shown_and_nothing_changes(world, people, stock, as_user):
    client = as_user(people["admin"])
    before = snapshot()
    response = client.post(
        url(world.marketing, "components/"), {"action": "create", "name": "X", "repository_url": "nope"}
    )
    assert response.status_code == 400 and "valid repository URL" in html_of(response)
    page = url(world.marketing, f"components/{stock['component'].pk}/")
    # The component is declared at the root: an org Admin of Marketing cannot manage it.
    assert client.post(page, {"action": "add_member", "username": "newcomer"}).status_code == 403
    alice = as_user(world.tenant_admin)
    root_page = url(world.root, f"components/{stock['component'].pk}/")
    for username in ("nobody-like-this", "gina"):  # unknown, and a user of another tenant
        response = alice.post(root_page, {"action": "add_member", "username": username})
        assert response.status_code == 400 and "No such user in this tenant" in html_of(response)
    assert snapshot() == before


# -- the effective configuration -----------------------------------------------------------------------------------


def test_the_configuration_page_shows_each_setting_with_its_source(world, people, stock, as_user):
    services.set_setting(actor=world.tenant_admin, org=world.root, key="run_log_retention_days", value=7, locked=True)
    services.set_setting(actor=world.tenant_admin, org=world.marketing, key="max_lookup_table_rows", value=50)
    html = html_of(as_user(people["admin"]).get(url(world.marketing, "settings/")))
    assert "inherited from Acme" in html and "locked" in html and "default" in html and ">here<" in html
    assert 'value="set"' in html and "Shared API" in html and "REGION" in html and "Billing" in html


def test_a_guest_sees_the_configuration_without_forms_or_hidden_resource_lists(world, people, stock, as_user):
    client = as_user(people["guest"])
    response = client.get(url(world.marketing, "settings/"))
    html = html_of(response)
    assert response.status_code == 200 and "Allow task sharing" in html
    assert 'value="set"' not in html and 'value="hide"' not in html
    assert "Shared API" not in html and "REGION" not in html and "Billing" in html
    before = snapshot()
    payload = {"action": "set", "key": "run_log_retention_days", "value": "5"}
    assert client.post(url(world.marketing, "settings/"), payload).status_code == 403
    assert snapshot() == before


def test_an_integrator_cannot_change_settings(world, people, stock, as_user):
    client = as_user(people["integrator"])
    html = html_of(client.get(url(world.marketing, "settings/")))
    assert 'value="set"' not in html
    before = snapshot()
    payload = {"action": "set", "key": "run_log_retention_days", "value": "5"}
    assert client.post(url(world.marketing, "settings/"), payload).status_code == 403
    assert snapshot() == before


def test_an_admin_sets_and_resets_a_setting(world, people, as_user):
    client = as_user(people["admin"])
    page = url(world.marketing, "settings/")
    payload = {"action": "set", "key": "run_log_retention_days", "value": "12"}
    assert client.post(page, payload).status_code == 302
    assert OrgSetting.objects.get(org=world.marketing, key="run_log_retention_days").value == 12
    asked = client.post(page, {"action": "reset", "key": "run_log_retention_days"})  # asks first: 12 would go
    assert asked.status_code == 200 and "the value set here: 12" in asked.content.decode()
    assert OrgSetting.objects.filter(org=world.marketing).exists()
    assert client.post(page, {"action": "reset", "key": "run_log_retention_days", "confirmed": "1"}).status_code == 302
    assert not OrgSetting.objects.filter(org=world.marketing).exists()


def test_bad_or_locked_settings_are_refused_and_nothing_changes(world, people, as_user):
    services.set_setting(actor=world.tenant_admin, org=world.root, key="allow_task_sharing", value=False, locked=True)
    client = as_user(people["admin"])
    page = url(world.marketing, "settings/")
    before = snapshot()
    response = client.post(page, {"action": "set", "key": "run_log_retention_days", "value": "forever"})
    assert response.status_code == 400 and "whole number" in html_of(response)
    response = client.post(page, {"action": "set", "key": "allow_task_sharing", "value": "true"})
    assert response.status_code == 409 and "locked by Acme" in html_of(response)
    assert snapshot() == before


def test_hiding_and_unhiding_an_inherited_item(world, people, stock, as_user):
    client = as_user(people["admin"])
    page = url(world.marketing, "settings/")
    assert client.post(page, {"action": "hide", "type": "credential", "name": "Shared API"}).status_code == 302
    hidden = Hidden.objects.get(org=world.marketing)
    html = html_of(client.get(url(world.marketing, "credentials/")))
    assert "Shared API" not in html
    html = html_of(client.get(page))
    assert "Hidden here" in html and 'value="unhide"' in html
    assert client.post(page, {"action": "unhide", "hidden": hidden.pk}).status_code == 302
    assert not Hidden.objects.exists()


def test_hiding_a_locked_or_unknown_item_is_refused(world, people, stock, as_user):
    services.update_lookup_table(actor=world.tenant_admin, table=stock["table"], locked=True)
    client = as_user(people["admin"])
    page = url(world.marketing, "settings/")
    before = snapshot()
    response = client.post(page, {"action": "hide", "type": "lookup_table", "name": "Countries"})
    assert response.status_code == 409 and "locked by Acme" in html_of(response)
    response = client.post(page, {"action": "hide", "type": "credential", "name": "Nothing"})
    assert response.status_code == 400 and "inherited here" in html_of(response)
    response = client.post(page, {"action": "hide", "type": "credential", "name": "Mailer"})
    assert response.status_code == 400 and "delete it instead" in html_of(response)
    # A guest manages no kind: refused before anything is read.
    assert (
        as_user(people["guest"]).post(page, {"action": "hide", "type": "credential", "name": "Shared API"}).status_code
        == 403
    )
    assert snapshot() == before


# -- tasks and runs ------------------------------------------------------------------------------------------------


def tasks_url(world) -> str:
    return url(world.marketing, f"p/{world.website.pk}/tasks/")


def test_a_guest_sees_tasks_and_runs_without_actions(world, people, stock, as_user):
    run = services.run_task(actor=world.tenant_admin, task=stock["task"])
    client = as_user(people["guest"])
    html = html_of(client.get(tasks_url(world)))
    assert "Sync" in html and 'value="create"' not in html
    page = url(world.marketing, f"tasks/{stock['task'].pk}/")
    html = html_of(client.get(page))
    assert "queued" in html and 'value="run"' not in html and 'value="stop"' not in html and 'value="share"' not in html
    run_page = html_of(client.get(url(world.marketing, f"runs/{run.pk}/")))
    assert "Queued by alice" in run_page and 'value="stop"' not in run_page
    before = snapshot()
    assert client.post(tasks_url(world), {"action": "create", "name": "X"}).status_code == 403
    assert client.post(page, {"action": "run"}).status_code == 403
    assert client.post(page, {"action": "delete", "confirmed": "1"}).status_code == 403
    assert client.post(url(world.marketing, f"runs/{run.pk}/"), {"action": "stop", "confirmed": "1"}).status_code == 403
    assert snapshot() == before


def test_an_integrator_creates_edits_runs_stops_and_deletes_a_task(world, people, as_user):
    client = as_user(people["integrator"])
    steps = '[{"type": "log", "message": "hi"}]'
    response = client.post(tasks_url(world), {"action": "create", "name": "Import", "description": "d", "steps": steps})
    task = Task.objects.get(name="Import")
    page = url(world.marketing, f"tasks/{task.pk}/")
    assert response.status_code == 302 and response["Location"] == page
    assert task.steps == [{"type": "log", "message": "hi"}]
    # Zero steps only when said so (resources/task_form.py): "[]" alone is refused, with "Save without steps" saved.
    assert client.post(page, {"action": "edit", "name": "Import 2", "steps": "[]"}).status_code == 400
    assert client.post(page, {"action": "edit", "name": "Import 2", "steps": "[]", "no_steps": "on"}).status_code == 302
    task.refresh_from_db()
    assert (task.name, task.steps) == ("Import 2", [])
    response = client.post(page, {"action": "run"})
    run = Run.objects.get(task=task)
    assert response.status_code == 302 and response["Location"] == url(world.marketing, f"runs/{run.pk}/")
    html = html_of(client.get(page))
    assert 'value="stop"' in html
    assert client.post(url(world.marketing, f"runs/{run.pk}/"), {"action": "stop", "confirmed": "1"}).status_code == 302
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED
    # Stopping a finished run: 409, nothing changes.
    before = snapshot()
    response = client.post(url(world.marketing, f"runs/{run.pk}/"), {"action": "stop", "confirmed": "1"})
    assert response.status_code == 409 and "nothing to stop" in html_of(response)
    assert snapshot() == before
    assert client.post(page, {"action": "delete", "confirmed": "1"}).status_code == 302
    assert not Task.objects.filter(pk=task.pk).exists()


def test_bad_task_input_is_a_400_and_a_taken_name_a_409(world, people, stock, as_user):
    client = as_user(people["integrator"])
    before = snapshot()
    response = client.post(tasks_url(world), {"action": "create", "name": "New", "steps": "[not json"})
    assert response.status_code == 400 and "valid JSON" in html_of(response)
    response = client.post(tasks_url(world), {"action": "create", "name": "New", "steps": '[{"type": "teleport"}]'})
    assert response.status_code == 400 and "Step 1" in html_of(response)
    response = client.post(tasks_url(world), {"action": "create", "name": "sync", "steps": "[]", "no_steps": "on"})
    assert response.status_code == 409 and "exists in Website already" in html_of(response)
    assert snapshot() == before


def test_sharing_a_task_with_a_user_gives_them_the_task_only(world, people, stock, as_user):
    client = as_user(people["integrator"])
    page = url(world.marketing, f"tasks/{stock['task'].pk}/")
    assert client.post(page, {"action": "share", "username": "bob", "permission": "run"}).status_code == 302
    share = TaskUserShare.objects.get(user=world.member)
    html = html_of(client.get(page))
    assert "bob" in html and 'value="unshare"' in html
    bob = as_user(world.member)
    html = html_of(bob.get(page))
    assert "Sync" in html and 'value="run"' in html and 'value="delete"' not in html
    assert bob.get(tasks_url(world)).status_code == 404  # the project itself stays invisible
    client = as_user(people["integrator"])
    assert client.post(page, {"action": "unshare", "confirmed": "1", "share": share.pk}).status_code == 302
    assert not TaskUserShare.objects.exists()
    assert as_user(world.member).get(page).status_code == 404


def test_bad_shares_are_refused_and_nothing_changes(world, people, stock, as_user):
    client = as_user(people["integrator"])
    page = url(world.marketing, f"tasks/{stock['task'].pk}/")
    before = snapshot()
    response = client.post(page, {"action": "share", "username": "gina", "permission": "view"})
    assert response.status_code == 400 and "No such user in this tenant" in html_of(response)
    response = client.post(page, {"action": "share", "permission": "view"})
    assert response.status_code == 400 and "either a username or a team" in html_of(response)
    services.set_setting(actor=world.tenant_admin, org=world.root, key="allow_task_sharing", value=False)
    before = snapshot()
    response = client.post(page, {"action": "share", "username": "bob", "permission": "view"})
    assert response.status_code == 403 and "sharing is turned off" in html_of(response)
    assert snapshot() == before


def test_the_project_page_links_to_its_tasks(world, people, as_user):
    html = html_of(as_user(people["guest"]).get(url(world.marketing, f"p/{world.website.pk}/")))
    assert f'href="{tasks_url(world)}"' in html


def test_the_org_tabs_link_the_pages_each_role_may_open(world, people, as_user):
    guest = html_of(as_user(people["guest"]).get(url(world.marketing)))
    assert f'href="{url(world.marketing, "components/")}"' in guest
    assert f'href="{url(world.marketing, "credentials/")}"' not in guest
    integrator = html_of(as_user(people["integrator"]).get(url(world.marketing)))
    for suffix in ("credentials/", "lookup-tables/", "env-vars/", "settings/"):
        assert f'href="{url(world.marketing, suffix)}"' in integrator, suffix


def test_a_contractor_lands_on_their_components_and_publishes_in_the_console(world, as_user):
    from resources import services as rs
    from tests.factories import UserFactory, add_to_tenant

    contractor = UserFactory(username="contractor")
    add_to_tenant(contractor, world.acme)
    parser = rs.create_component(actor=world.tenant_admin, org=world.marketing, name="Parser")
    other = rs.create_component(actor=world.tenant_admin, org=world.marketing, name="Other")
    rs.add_component_member(actor=world.tenant_admin, component=parser, user=contractor)
    client = as_user(contractor)
    landing = client.get("/").content.decode()
    assert "Parser" in landing and "Other" not in landing
    page = client.get(f"/o/{world.marketing.pk}/components/{parser.pk}/")
    assert page.status_code == 200 and "Parser" in page.content.decode()
    assert client.get(f"/o/{world.marketing.pk}/components/{other.pk}/").status_code == 404
    assert client.get(f"/o/{world.marketing.pk}/components/").status_code == 404
    assert client.get(f"/o/{world.marketing.pk}/").status_code == 404
    assert client.get(f"/o/{world.globex_root.pk}/components/{parser.pk}/").status_code == 404


def test_only_the_development_team_gets_the_publish_form_and_can_publish(world, as_user, people):
    from resources import services as rs
    from resources.models import ComponentVersion

    parser = rs.create_component(actor=world.tenant_admin, org=world.marketing, name="Parser")
    rs.add_component_member(actor=world.tenant_admin, component=parser, user=people["integrator"])
    page = f"/o/{world.marketing.pk}/components/{parser.pk}/"
    body = {"action": "publish", "version": "1.0.0", "source": "def run(): pass"}
    admin = as_user(people["admin"])
    assert "Publish a version" not in admin.get(page).content.decode()
    assert admin.post(page, body).status_code == 403 and not ComponentVersion.objects.exists()
    member = as_user(people["integrator"])
    assert "Publish a version" in member.get(page).content.decode()
    assert member.post(page, body).status_code == 302
    again = member.post(page, body)
    assert again.status_code == 409 and "immutable" in again.content.decode()
    bad = member.post(page, {"action": "publish", "version": "no good!", "source": "x"})
    assert bad.status_code == 400 and ComponentVersion.objects.count() == 1


def test_a_task_shared_with_someone_outside_the_project_is_listed_and_runs_in_the_console(
    world, people, as_user, django_assert_max_num_queries
):
    from resources import services as rs
    from resources.models import Run

    task = rs.create_task(actor=world.tenant_admin, project=world.website, name="Sync", steps=[])
    hidden = rs.create_task(actor=world.tenant_admin, project=world.website, name="Private", steps=[])
    newcomer = people["newcomer"]
    rs.share_task(actor=world.tenant_admin, task=task, user=newcomer, permission="run")
    client = as_user(newcomer)
    client.get("/shared/")
    with django_assert_max_num_queries(6):
        listed = (response := client.get("/shared/")).content.decode()
        assert response.status_code == 200
    assert "Sync" in listed and "Private" not in listed and ">run<" in listed
    page = f"/o/{world.marketing.pk}/tasks/{task.pk}/"
    assert client.get(page).status_code == 200
    assert client.post(page, {"action": "run"}).status_code == 302 and Run.objects.filter(task=task).count() == 1
    assert client.post(page, {"action": "delete", "confirmed": "1"}).status_code == 403
    assert client.get(f"/o/{world.marketing.pk}/tasks/{hidden.pk}/").status_code == 404
    assert client.get(f"/o/{world.marketing.pk}/p/{world.website.pk}/tasks/").status_code == 404
    assert "Nothing is shared with you" in as_user(world.member).get("/shared/").content.decode()


def test_the_configuration_page_shows_invitation_domains_as_a_list(world, as_user):
    from resources import services as rs

    domains = ["acme.com", "acme.de"]
    rs.set_setting(actor=world.tenant_admin, org=world.root, key="allowed_invite_domains", value=domains)
    html = as_user(world.tenant_admin).get(f"/o/{world.emea.pk}/settings/").content.decode()
    assert "acme.com, acme.de" in html and "[&#x27;" not in html
