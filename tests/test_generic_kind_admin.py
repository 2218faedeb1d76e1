"""§5 measured for the admin: a throwaway declared kind's admin registration is a subclass of the generic
DeclarationAdmin naming only its fields; with it, the kind is added, changed (the stale-form version refused),
deleted through the kind's (default) services, scoped to the tenant administrator's tenants (another tenant's item
is a 404), with the inheritance rules' refusals shown and nothing saved.

The kind is a proxy of Component (tests/test_generic_kind_api.py says why), registered on an admin site of its own
served by this module's URLconf (filled by the fixture), and removed again afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import path

from access.models import AuditEvent
from config import kinds
from config import urls as project_urls
from config.actors import SYSTEM
from config.admin import CanopyAdminSite
from resources import services
from resources.admin import DeclarationAdmin
from resources.models import Component

urlpatterns: list[Any] = []
BASE = "/probe-admin/resources/probe"


@pytest.fixture
def probe(settings: Any) -> Iterator[type]:
    class Probe(Component):
        KIND = "probe"

        class Meta:
            proxy = True
            app_label = "resources"  # the admin pages need an installed app; removed again afterwards

    kinds.register(
        kinds.Kind(model=Probe, rule=kinds.Rule.DECLARED, view="runtime.view", manage="runtime.manage", within="org",
                   label="probe", label_plural="probes")
    )  # fmt: skip
    site = CanopyAdminSite(name="probe_admin")  # open to tenant administrators, as the project's

    @admin.register(Probe, site=site)
    class ProbeAdmin(DeclarationAdmin):  # the kind's whole admin registration
        kind_fields = ("name", "description")

    urlpatterns[:] = [path("probe-admin/", site.urls), *project_urls.urlpatterns]
    settings.ROOT_URLCONF = __name__
    yield Probe
    urlpatterns.clear()
    kinds.registry.unregister(Probe)
    kinds.registry.faces.pop(Probe, None)
    del apps.all_models["resources"]["probe"]
    apps.clear_cache()


def _form(org: Any, name: str, description: str = "", **extra: Any) -> dict[str, Any]:
    return {"org": str(org.pk), "name": name, "description": description, **extra}


def test_a_tenant_administrator_adds_changes_and_deletes_through_the_services(world, probe, as_user):
    client = as_user(world.tenant_admin)
    assert client.post(f"{BASE}/add/", _form(world.marketing, "eu-west", "first")).status_code == 302
    item = probe.objects.get(name="eu-west")
    assert (item.org, item.created_by, item.version) == (world.marketing, world.tenant_admin, 1)
    page = client.get(f"{BASE}/{item.pk}/change/").content.decode()
    assert 'name="opened_version" value="1"' in page
    changed = client.post(
        f"{BASE}/{item.pk}/change/", {"name": "eu-west", "description": "second", "opened_version": 1}
    )
    assert changed.status_code == 302
    item.refresh_from_db()
    assert (item.description, item.version) == ("second", 2)
    assert client.post(f"{BASE}/{item.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not probe.objects.filter(pk=item.pk).exists()
    assert list(AuditEvent.objects.filter(action__startswith="probe.").order_by("created_at").values_list(
        "action", "changes")) == [
        ("probe.create", {"name": "eu-west", "description": "first", "locked": False}),
        ("probe.update", {"description": ["first", "second"]}),
        ("probe.delete", {"name": "eu-west"}),
    ]  # fmt: skip


def test_a_form_opened_before_another_change_is_refused_and_saves_nothing(world, probe, as_user):
    item = services.services_for(probe).create(actor=SYSTEM, org=world.marketing, name="eu-west")
    services.services_for(probe).update(actor=SYSTEM, item=item, description="theirs")  # version 2 now
    client = as_user(world.tenant_admin)
    response = client.post(f"{BASE}/{item.pk}/change/", {"name": "eu-west", "description": "mine", "opened_version": 1})
    assert response.status_code == 303  # back to the form, with the message naming the change
    assert "This was changed by system" in client.get(response["Location"]).content.decode()
    item.refresh_from_db()
    assert (item.description, item.version) == ("theirs", 2)


def test_the_inheritance_rules_and_bad_input_refuse_the_add(world, probe, as_user):
    services.services_for(probe).create(actor=SYSTEM, org=world.root, name="pinned", locked=True)
    client = as_user(world.tenant_admin)
    locked = client.post(f"{BASE}/add/", _form(world.marketing, "PINNED"))
    assert locked.status_code == 303
    assert "locked by Acme" in client.get(locked["Location"]).content.decode()
    bad = client.post(f"{BASE}/add/", _form(world.marketing, "bad/name"))  # refused by the service's name check
    assert bad.status_code == 303
    assert "starting with a letter or digit" in client.get(bad["Location"]).content.decode()
    assert list(probe.objects.values_list("name", flat=True)) == ["pinned"]


def test_another_tenants_administrator_neither_sees_nor_changes_it(world, probe, as_user):
    item = services.services_for(probe).create(actor=SYSTEM, org=world.marketing, name="eu-west")
    client = as_user(world.other_admin)
    assert "eu-west" not in client.get(f"{BASE}/").content.decode()
    assert client.get(f"{BASE}/{item.pk}/change/").status_code == 404
    assert client.post(f"{BASE}/{item.pk}/change/", {"name": "taken", "opened_version": 1}).status_code == 404
    assert client.post(f"{BASE}/{item.pk}/delete/", {"post": "yes"}).status_code == 404
    # Nor can they add one in Acme: Acme's orgs are not among the choices.
    assert client.post(f"{BASE}/add/", _form(world.marketing, "intruder")).status_code == 200
    item.refresh_from_db()
    assert (item.name, item.version) == ("eu-west", 1)
    assert list(probe.objects.values_list("name", flat=True)) == ["eu-west"]
