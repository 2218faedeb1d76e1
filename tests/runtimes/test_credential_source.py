"""Credentials whose secret is kept on the runtime (``source: runtime``): Canopy accepts no secret value for them,
stores none (no ciphertext, no field names), and erases a stored one when a credential moves to the runtime.
The non-secret fields are still checked against the kind."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from access.models import AuditEvent
from resources import services
from resources.models import Credential

SECRET = "runtime-only-Zq81-secret"


def dump() -> str:
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    return out.getvalue()


def stored(credential_id: Any) -> tuple[str, list[str], str]:
    row = Credential.objects.get(pk=credential_id)
    return row.secret_ciphertext, row.secret_names, row.source


# -- services ------------------------------------------------------------------------------------------------------


def test_a_runtime_credential_is_created_without_any_secret_and_its_fields_are_still_checked(world):
    credential = services.create_credential(
        actor=world.tenant_admin, org=world.marketing, name="ERP", kind="http_basic", source="runtime",
        fields={"username": "erp-bot"},
    )  # fmt: skip
    assert stored(credential.pk) == ("", [], "runtime")  # no password required: it lives on the runtime
    event = AuditEvent.objects.get(action="credential.create", target_id=str(credential.pk))
    assert event.changes["source"] == "runtime" and event.changes["secret_fields"] == []
    with pytest.raises(ValidationError) as missing:  # the non-secret required field is still required
        services.create_credential(
            actor=world.tenant_admin, org=world.marketing, name="ERP2", kind="http_basic", source="runtime"
        )
    assert "Required for http_basic: username" in str(missing.value)
    with pytest.raises(ValidationError) as unknown:
        services.create_credential(
            actor=world.tenant_admin, org=world.marketing, name="ERP3", kind="api_key", source="runtime",
            fields={"nope": "x"},
        )  # fmt: skip
    assert "Unknown field(s)" in str(unknown.value)
    with pytest.raises(ValidationError) as bad_source:
        services.create_credential(
            actor=world.tenant_admin, org=world.marketing, name="ERP4", kind="generic", source="vault"
        )
    assert "source" in bad_source.value.message_dict
    assert not Credential.objects.filter(name__in=["ERP2", "ERP3", "ERP4"]).exists()


def test_a_secret_given_for_a_runtime_credential_is_refused_and_never_stored(world):
    with pytest.raises(ValidationError) as refused:
        services.create_credential(
            actor=world.tenant_admin, org=world.marketing, name="ERP", kind="http_basic", source="runtime",
            fields={"username": "erp"}, secret={"password": SECRET},
        )  # fmt: skip
    assert "secret" in refused.value.message_dict and SECRET not in str(refused.value)
    assert not Credential.objects.filter(name="ERP").exists()
    credential = services.create_credential(
        actor=world.tenant_admin, org=world.marketing, name="ERP", kind="http_basic", source="runtime",
        fields={"username": "erp"},
    )  # fmt: skip
    version = Credential.objects.get(pk=credential.pk).version
    with pytest.raises(ValidationError):
        services.update_credential(actor=world.tenant_admin, credential=credential, secret={"password": SECRET})
    assert stored(credential.pk) == ("", [], "runtime")
    assert Credential.objects.get(pk=credential.pk).version == version  # nothing was written
    assert SECRET not in dump()


def test_moving_a_credential_to_the_runtime_erases_its_stored_secret_and_audits_the_names_only(world):
    credential = services.create_credential(
        actor=world.tenant_admin, org=world.marketing, name="CRM", kind="http_basic", fields={"username": "crm"},
        secret={"password": SECRET},
    )  # fmt: skip
    assert stored(credential.pk)[0] and stored(credential.pk)[1] == ["password"]
    services.update_credential(actor=world.tenant_admin, credential=credential, source="runtime")
    assert stored(credential.pk) == ("", [], "runtime")
    event = AuditEvent.objects.filter(action="credential.update", target_id=str(credential.pk)).latest("created_at")
    assert event.changes["source"] == ["canopy", "runtime"] and event.changes["secret_erased"] == ["password"]
    assert SECRET not in dump()
    # Back to Canopy: nothing was kept, so the kind's secret fields must be given again.
    with pytest.raises(ValidationError) as missing:
        services.update_credential(actor=world.tenant_admin, credential=credential, source="canopy")
    assert "Required for http_basic: password" in str(missing.value)
    services.update_credential(
        actor=world.tenant_admin, credential=credential, source="canopy", secret={"password": "new-one"}
    )
    assert stored(credential.pk)[1:] == (["password"], "canopy")


# -- API -----------------------------------------------------------------------------------------------------------


def test_the_api_creates_a_runtime_credential_refuses_its_secret_and_the_dump_holds_none(world, api_as):
    client = api_as(world.tenant_admin)
    path = f"/api/v1/orgs/{world.marketing.pk}/credentials"
    refused = client.post(
        path, {"name": "ERP", "kind": "api_key", "source": "runtime", "secret": {"key": SECRET}}, format="json"
    )
    assert refused.status_code == 400 and "secret" in refused.json() and SECRET not in refused.content.decode()
    assert not Credential.objects.filter(name="ERP").exists()
    created = client.post(
        path, {"name": "ERP", "kind": "api_key", "source": "runtime", "fields": {"header": "X-Key"}}, format="json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["source"] == "runtime" and body["secret_fields"] == [] and body["fields"] == {"header": "X-Key"}
    assert client.get(f"/api/v1/credentials/{body['id']}").json()["source"] == "runtime"
    patch = client.patch(f"/api/v1/credentials/{body['id']}", {"secret": {"key": SECRET}}, format="json")
    assert patch.status_code == 400 and SECRET not in patch.content.decode()
    assert stored(body["id"]) == ("", [], "runtime")
    assert SECRET not in dump()


def test_the_api_switches_a_stored_secret_to_the_runtime_and_it_is_gone(world, api_as):
    client = api_as(world.tenant_admin)
    created = client.post(
        f"/api/v1/orgs/{world.marketing.pk}/credentials",
        {"name": "CRM", "kind": "http_basic", "fields": {"username": "u"}, "secret": {"password": SECRET}},
        format="json",
    ).json()
    assert created["source"] == "canopy" and created["secret_fields"] == ["password"]
    switched = client.patch(f"/api/v1/credentials/{created['id']}", {"source": "runtime"}, format="json")
    assert switched.status_code == 200 and switched.json()["secret_fields"] == []
    assert stored(created["id"]) == ("", [], "runtime")
    assert SECRET not in dump()


def test_someone_without_credential_manage_cannot_switch_a_credential_to_the_runtime(world, people, api_as):
    credential = services.create_credential(
        actor=world.tenant_admin, org=world.marketing, name="CRM", kind="http_basic", fields={"username": "u"},
        secret={"password": SECRET},
    )  # fmt: skip
    before = stored(credential.pk)
    guest = api_as(people["guest"])  # a Guest does not see credentials: 404, nothing erased
    assert guest.patch(f"/api/v1/credentials/{credential.pk}", {"source": "runtime"}, format="json").status_code == 404
    outsider = api_as(world.other_admin)  # another tenant's admin: 404
    assert (
        outsider.patch(f"/api/v1/credentials/{credential.pk}", {"source": "runtime"}, format="json").status_code == 404
    )
    assert stored(credential.pk) == before


# -- console -------------------------------------------------------------------------------------------------------


def test_the_console_creates_a_runtime_credential_and_refuses_a_secret_for_it(world, people, as_user):
    client = as_user(people["integrator"])
    page = f"/o/{world.marketing.pk}/credentials/"
    assert 'name="source"' in client.get(page).content.decode()
    refused = client.post(
        page,
        {"action": "create", "name": "ERP", "kind": "http_basic", "source": "runtime", "field_values": "username=e",
         "secret": f"password={SECRET}"},
    )  # fmt: skip
    assert refused.status_code == 400 and SECRET not in refused.content.decode()
    assert not Credential.objects.filter(name="ERP").exists()
    created = client.post(
        page,
        {"action": "create", "name": "ERP", "kind": "http_basic", "source": "runtime", "field_values": "username=e"},
    )
    assert created.status_code == 302
    credential = Credential.objects.get(name="ERP")
    assert stored(credential.pk) == ("", [], "runtime")
    detail = client.get(f"/o/{world.marketing.pk}/credentials/{credential.pk}/").content.decode()
    assert "kept on the runtime" in detail


def test_the_console_edit_moves_the_secret_to_the_runtime(world, people, as_user):
    credential = services.create_credential(
        actor=world.tenant_admin, org=world.marketing, name="CRM", kind="http_basic", fields={"username": "u"},
        secret={"password": SECRET},
    )  # fmt: skip
    client = as_user(people["integrator"])
    page = f"/o/{world.marketing.pk}/credentials/{credential.pk}/"
    version = Credential.objects.get(pk=credential.pk).version
    response = client.post(
        page,
        {"action": "edit", "version": version, "name": "CRM", "field_values": "username=u", "source": "runtime"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert stored(credential.pk) == ("", [], "runtime")
    assert SECRET not in dump()
