"""Override, hide and lock: the effective lists, the 409s, the settings registry, and one query per list."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from access.models import AuditEvent
from resources import inheritance, services
from resources.models import Credential, Hidden, LookupTable, OrgSetting
from resources.settings_registry import effective_settings, setting_value
from tests.factories import make_chain


def names(response):
    return {i["name"]: i for i in response.json()["results"]}


def test_declared_above_is_inherited_and_nearest_wins(world, api_as):
    top = services.create_lookup_table(actor=world.tenant_admin, org=world.root, name="Codes", rows=[])
    near = services.create_lookup_table(actor=world.tenant_admin, org=world.marketing, name="codes", rows=[])
    services.create_lookup_table(actor=world.tenant_admin, org=world.root, name="Countries", rows=[])
    items = names(api_as(world.tenant_admin).get(f"/api/v1/orgs/{world.emea.pk}/lookup-tables"))
    assert set(items) == {"codes", "Countries"}  # matching is case-insensitive: Marketing's overrides the root's
    assert items["codes"]["id"] == str(near.pk) and items["codes"]["overrides"] == str(top.pk)
    assert items["codes"]["org"]["name"] == "Marketing" and items["codes"]["inherited"] is True
    assert items["Countries"]["overrides"] is None
    here = names(api_as(world.tenant_admin).get(f"/api/v1/orgs/{world.marketing.pk}/lookup-tables"))
    assert here["codes"]["inherited"] is False
    root = names(api_as(world.tenant_admin).get(f"/api/v1/orgs/{world.root.pk}/lookup-tables"))
    assert root["Codes"]["id"] == str(top.pk)


def test_a_sibling_does_not_see_what_another_branch_declares(world, api_as):
    services.create_credential(actor=world.tenant_admin, org=world.marketing, name="CRM", kind="generic")
    response = api_as(world.tenant_admin).get(f"/api/v1/orgs/{world.logistics.pk}/credentials")
    assert response.status_code == 200 and response.json()["count"] == 0


def test_hiding_an_inherited_item_leaves_it_out_below_and_unhiding_brings_it_back(world, api_as):
    services.create_credential(actor=world.tenant_admin, org=world.root, name="CRM", kind="generic")
    client = api_as(world.tenant_admin)
    response = client.post(f"/api/v1/orgs/{world.marketing.pk}/hidden", {"type": "credential", "name": "crm"})
    assert response.status_code == 201
    for org in (world.marketing, world.campaigns):
        assert client.get(f"/api/v1/orgs/{org.pk}/credentials").json()["count"] == 0
    assert client.get(f"/api/v1/orgs/{world.logistics.pk}/credentials").json()["count"] == 1
    assert client.get(f"/api/v1/orgs/{world.root.pk}/credentials").json()["count"] == 1
    # A re-declaration below the hide is seen again.
    services.create_credential(actor=world.tenant_admin, org=world.emea, name="CRM", kind="generic")
    assert client.get(f"/api/v1/orgs/{world.campaigns.pk}/credentials").json()["count"] == 1
    assert client.delete(f"/api/v1/hidden/{response.json()['id']}").status_code == 204
    assert client.get(f"/api/v1/orgs/{world.marketing.pk}/credentials").json()["count"] == 1
    assert AuditEvent.objects.filter(action__in=["hidden.create", "hidden.delete"]).count() == 2


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"type": "credential", "name": "Nothing"}, 400, "inherited"),
        ({"type": "spaceship", "name": "CRM"}, 400, "one of"),
        ({"type": "credential", "name": ""}, 400, "required"),
    ],
)
def test_bad_hides_are_field_errors_and_change_nothing(world, api_as, body, status, message):
    services.create_credential(actor=world.tenant_admin, org=world.root, name="CRM", kind="generic")
    response = api_as(world.tenant_admin).post(f"/api/v1/orgs/{world.marketing.pk}/hidden", body, format="json")
    assert response.status_code == status and message in response.content.decode()
    assert not Hidden.objects.exists()


def test_a_locked_item_cannot_be_overridden_or_hidden_below(world, api_as):
    services.create_credential(actor=world.tenant_admin, org=world.root, name="CRM", kind="generic", locked=True)
    client = api_as(world.tenant_admin)
    response = client.post(
        f"/api/v1/orgs/{world.emea.pk}/credentials", {"name": "crm", "kind": "generic"}, format="json"
    )
    assert response.status_code == 409 and response.json()["code"] == "locked" and "Acme" in response.json()["detail"]
    response = client.post(f"/api/v1/orgs/{world.emea.pk}/hidden", {"type": "credential", "name": "CRM"})
    assert response.status_code == 409 and response.json()["code"] == "locked"
    item = names(client.get(f"/api/v1/orgs/{world.campaigns.pk}/credentials"))["CRM"]
    assert item["locked"] is True and item["inherited"] is True
    assert Credential.objects.count() == 1 and not Hidden.objects.exists()
    # Renaming another credential to the locked name is refused too.
    other = services.create_credential(actor=world.tenant_admin, org=world.emea, name="ERP", kind="generic")
    response = client.patch(f"/api/v1/credentials/{other.pk}", {"name": "CRM"}, format="json")
    assert response.status_code == 409 and Credential.objects.get(pk=other.pk).name == "ERP"


def test_locking_over_existing_overrides_is_refused_until_they_go(world, api_as):
    top = services.create_lookup_table(actor=world.tenant_admin, org=world.root, name="Codes")
    below = services.create_lookup_table(actor=world.tenant_admin, org=world.emea, name="Codes")
    client = api_as(world.tenant_admin)
    response = client.patch(f"/api/v1/lookup-tables/{top.pk}", {"locked": True}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "overridden_below"
    assert "EMEA" in response.json()["detail"] and not LookupTable.objects.get(pk=top.pk).locked
    client.delete(f"/api/v1/lookup-tables/{below.pk}")
    assert client.patch(f"/api/v1/lookup-tables/{top.pk}", {"locked": True}, format="json").status_code == 200


def test_the_same_name_twice_in_one_org_is_a_conflict(world, api_as):
    services.create_credential(actor=world.tenant_admin, org=world.marketing, name="CRM", kind="generic")
    response = api_as(world.tenant_admin).post(
        f"/api/v1/orgs/{world.marketing.pk}/credentials", {"name": "crm", "kind": "generic"}, format="json"
    )
    assert response.status_code == 409 and response.json()["code"] == "name_taken"
    assert Credential.objects.count() == 1


def test_settings_inherit_override_lock_and_reset(world, api_as):
    client = api_as(world.tenant_admin)
    url = f"/api/v1/orgs/{world.emea.pk}/settings"
    defaults = {s["key"]: s for s in client.get(url).json()["results"]}
    assert (
        defaults["run_log_retention_days"]["value"] == 30 and defaults["run_log_retention_days"]["source"] == "default"
    )
    assert client.put(f"/api/v1/orgs/{world.marketing.pk}/settings/run_log_retention_days", {"value": 90},
                      format="json").status_code == 200  # fmt: skip
    inherited = {s["key"]: s for s in client.get(url).json()["results"]}["run_log_retention_days"]
    assert inherited["value"] == 90 and inherited["source"] == "inherited" and inherited["org"]["name"] == "Marketing"
    assert client.put(f"{url}/run_log_retention_days", {"value": 7}, format="json").json()["source"] == "here"
    assert setting_value(world.campaigns, "run_log_retention_days") == 7
    # Locking at the root is refused while Marketing and EMEA override it; after resets it works and binds.
    root_url = f"/api/v1/orgs/{world.root.pk}/settings/run_log_retention_days"
    assert client.put(root_url, {"value": 365, "locked": True}, format="json").status_code == 409
    assert client.delete(f"{url}/run_log_retention_days").status_code == 200
    client.delete(f"/api/v1/orgs/{world.marketing.pk}/settings/run_log_retention_days")
    assert client.put(root_url, {"value": 365, "locked": True}, format="json").status_code == 200
    response = client.put(f"{url}/run_log_retention_days", {"value": 1}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "locked"
    locked = {s["key"]: s for s in client.get(url).json()["results"]}["run_log_retention_days"]
    assert locked["value"] == 365 and locked["locked"] is True


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("run_log_retention_days", 0, "from 1 to 3650"),
        ("run_log_retention_days", "soon", "whole number"),
        ("allow_task_sharing", "maybe", "true or false"),
        ("default_runtime", "x" * 101, "100 characters"),
    ],
)
def test_bad_setting_values_are_field_errors(world, api_as, key, value, message):
    response = api_as(world.tenant_admin).put(
        f"/api/v1/orgs/{world.marketing.pk}/settings/{key}", {"value": value}, format="json"
    )
    assert response.status_code == 400 and message in response.content.decode()
    assert not OrgSetting.objects.exists()


def test_an_unknown_setting_is_not_found(world, api_as):
    response = api_as(world.tenant_admin).put(
        f"/api/v1/orgs/{world.marketing.pk}/settings/warp_speed", {"value": 1}, format="json"
    )
    assert response.status_code == 404


def test_settings_need_policy_manage(world, people, api_as):
    url = f"/api/v1/orgs/{world.marketing.pk}/settings/allow_task_sharing"
    assert api_as(people["integrator"]).put(url, {"value": False}, format="json").status_code == 403
    assert api_as(people["admin"]).put(url, {"value": False}, format="json").status_code == 200
    assert api_as(people["guest"]).get(f"/api/v1/orgs/{world.marketing.pk}/settings").status_code == 200
    assert api_as(world.other_admin).get(f"/api/v1/orgs/{world.marketing.pk}/settings").status_code == 404


def test_effective_config_shows_every_setting_and_resource_with_source(world, api_as):
    services.create_credential(actor=world.tenant_admin, org=world.root, name="CRM", kind="generic", locked=True)
    services.create_env_var(actor=world.tenant_admin, org=world.marketing, key="REGION", value="eu")
    services.set_setting(actor=world.tenant_admin, org=world.root, key="allow_task_sharing", value=False)
    body = api_as(world.tenant_admin).get(f"/api/v1/orgs/{world.emea.pk}/effective-config").json()
    assert {s["key"] for s in body["settings"]} >= {"allow_task_sharing", "run_log_retention_days", "default_runtime"}
    sharing = next(s for s in body["settings"] if s["key"] == "allow_task_sharing")
    assert sharing["value"] is False and sharing["org"]["name"] == "Acme"
    assert body["credentials"][0]["locked"] is True and body["credentials"][0]["org"]["name"] == "Acme"
    assert body["env_vars"][0]["org"]["name"] == "Marketing"


@pytest.mark.parametrize("depth", [1, 30])
def test_an_effective_list_is_one_query_whatever_the_depth(world, depth):
    chain = make_chain(world.root, depth)
    for index, org in enumerate(chain[::3]):
        services.create_credential(actor=world.tenant_admin, org=org, name=f"C{index % 4}", kind="generic")
    services.hide(actor=world.tenant_admin, org=chain[-1], kind="credential", name="C0") if depth > 3 else None
    with CaptureQueriesContext(connection) as ctx:
        items = inheritance.effective(Credential, chain[-1])
    assert len(ctx) == 1 and items


@pytest.mark.parametrize("path", ["credentials", "lookup-tables", "env-vars", "components", "hidden", "settings",
                                  "effective-config"])  # fmt: skip
def test_list_endpoints_cost_the_same_few_queries_for_3_or_30_items_at_any_depth(world, api_as, path):
    client = api_as(world.tenant_admin)

    def declare(org, count, tag):
        for index in range(count):
            services.create_credential(actor=world.tenant_admin, org=org, name=f"C{tag}{index}", kind="generic")
            services.create_lookup_table(
                actor=world.tenant_admin, org=org, name=f"T{tag}{index}", rows=[{"key": "a", "value": "b"}]
            )
            services.create_env_var(actor=world.tenant_admin, org=org, key=f"K{tag}{index}", value="v")
            services.create_component(actor=world.tenant_admin, org=org, name=f"Comp{tag}{index}")

    def cost(org):
        client.get(f"/api/v1/orgs/{org.pk}/{path}")  # warm the token and content-type caches
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(f"/api/v1/orgs/{org.pk}/{path}")
        assert response.status_code == 200
        return len(ctx)

    shallow = make_chain(world.logistics, 1)[-1]
    declare(shallow, 3, "s")
    deep = make_chain(world.marketing, 12)[-1]
    for tag, org in zip("abc", (world.root, world.marketing, deep), strict=True):
        declare(org, 10, tag)
    budget = 12 if path == "effective-config" else 6
    assert cost(shallow) == cost(deep) <= budget


def test_effective_settings_cost_one_query(world):
    with CaptureQueriesContext(connection) as ctx:
        effective_settings(world.campaigns)
    assert len(ctx) == 1
