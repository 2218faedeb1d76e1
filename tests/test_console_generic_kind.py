"""§5 measured for the console: a declared kind registered with a registry entry and a console form, and nothing
else, has its list, create, detail, edit and delete pages, with the registry's labels, URL names and capabilities,
the hidden version on its forms and the one error path (403, 404, 400, stale).

The kind is the runtimes issue's ``Runtime`` as it will be registered: ``runtime.view`` (Guests have it) and
``runtime.manage`` (Admins). Here it is a proxy of Component in a test-only app label, so it needs no table; the test
adds its entry and its form, regenerates the URL patterns from the registry, and removes all three afterwards. No
module of the project is edited for it: the pages come from resources/views.py's generic views, the URLs from
resources/urls.py's loop over the registry, the writes from the plain declaration writes."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django import forms
from django.apps import apps
from django.urls import clear_url_caches, reverse

import config.urls
import resources.urls
from access.models import AuditEvent
from config import kinds
from config.console import EXTRAS, Extras, register_extras
from config.kinds import Kind, Rule
from resources.models import Component


def _reload_urls() -> None:
    """The URL patterns as the registry says now (resources/urls.py generates them at import)."""
    importlib.reload(resources.urls)
    importlib.reload(config.urls)
    clear_url_caches()


@pytest.fixture
def runtime_kind() -> Any:
    class Runtime(Component):
        KIND = "runtime"

        class Meta:
            proxy = True
            app_label = "tests"

    # (2) the registry entry, as runtimes/kinds.py will have it
    kind = kinds.register(
        Kind(model=Runtime, rule=Rule.DECLARED, view="runtime.view", manage="runtime.manage", within="org",
             label="runtime", label_plural="runtimes", console_list="runtimes", console_detail="runtime")
    )  # fmt: skip

    # (3) its faces: a console form with its own fields only
    @kinds.console_form(Runtime)
    class RuntimeForm(forms.Form):
        name = forms.CharField(max_length=100)
        description = forms.CharField(required=False, max_length=2000)
        locked = forms.BooleanField(required=False)

    _reload_urls()
    yield kind
    kinds.registry.unregister(Runtime)
    kinds.registry.faces.pop(Runtime, None)
    del apps.all_models["tests"]["runtime"]
    apps.clear_cache()
    _reload_urls()


def test_the_pages_exist_at_the_registry_urls_and_list_what_the_org_inherits(world, people, as_user, runtime_kind):
    Runtime, admin = runtime_kind.model, world.tenant_admin
    top = Runtime.objects.create(org=world.root, name="eu-west", description="Frankfurt")
    Runtime.objects.create(org=world.marketing, name="eu-west", description="Marketing's own")
    assert reverse("runtimes", args=[world.campaigns.pk]) == f"/o/{world.campaigns.pk}/runtimes/"

    page = as_user(people["guest"]).get(reverse("runtimes", args=[world.campaigns.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Runtimes usable in Campaigns" in html and "eu-west" in html
    assert "overrides " + world.root.name in html and "inherited" in html  # Marketing's shadows the root's
    assert "New runtime" not in html  # a Guest views, does not manage
    assert page.context["rows"][0]["item"].description == "Marketing's own"

    detail = as_user(admin).get(reverse("runtime", args=[world.marketing.pk, top.pk]))
    assert detail.status_code == 200 and "Frankfurt" in detail.content.decode()


def test_a_manager_creates_edits_and_deletes_with_the_version(world, people, as_user, runtime_kind):
    Runtime, boss = runtime_kind.model, people["admin"]
    client = as_user(boss)
    created = client.post(reverse("runtimes", args=[world.marketing.pk]), {"action": "create", "name": "jvm-21"})
    item = Runtime.objects.get(org=world.marketing, name="jvm-21")
    assert created.status_code == 302 and created["Location"] == reverse("runtime", args=[world.marketing.pk, item.pk])
    assert item.created_by == boss and item.version == 1
    assert AuditEvent.objects.filter(action="runtime.create", target_id=str(item.pk)).exists()

    url = reverse("runtime", args=[world.marketing.pk, item.pk])
    page = client.get(url)
    assert 'name="version" value="1"' in page.content.decode()  # the edit form and the delete button carry it
    saved = client.post(url, {"action": "edit", "name": "jvm-21", "description": "LTS", "version": 1})
    assert saved.status_code == 302
    item.refresh_from_db()
    assert (item.description, item.version) == ("LTS", 2)
    assert AuditEvent.objects.get(action="runtime.update", target_id=str(item.pk)).changes["description"]

    # A form opened at version 1 no longer saves, nor deletes: the page again, the user's input kept.
    stale = client.post(url, {"action": "edit", "name": "jvm-17", "description": "old", "version": 1})
    assert stale.status_code == 409 and "jvm-17" in stale.content.decode()
    stale_delete = client.post(url, {"action": "delete", "confirmed": "1", "version": 1})
    assert stale_delete.status_code == 409
    item.refresh_from_db()
    assert (item.name, item.description, item.version) == ("jvm-21", "LTS", 2)

    gone = client.post(url, {"action": "delete", "confirmed": "1", "version": 2})
    assert gone.status_code == 302 and gone["Location"] == reverse("runtimes", args=[world.marketing.pk])
    assert not Runtime.objects.filter(pk=item.pk).exists()
    assert AuditEvent.objects.filter(action="runtime.delete", target_id=str(item.pk)).exists()


def test_bad_input_is_a_400_with_the_field_message_and_nothing_created(world, people, as_user, runtime_kind):
    Runtime = runtime_kind.model
    client = as_user(people["admin"])
    url = reverse("runtimes", args=[world.marketing.pk])
    empty = client.post(url, {"action": "create", "name": ""})
    assert empty.status_code == 400 and empty.context["form"].errors["name"]
    bad = client.post(url, {"action": "create", "name": "!nope"})
    assert bad.status_code == 400 and bad.context["form"].errors["name"]  # the service's refusal, on its field
    Runtime.objects.create(org=world.root, name="locked-one", locked=True)
    under_lock = client.post(url, {"action": "create", "name": "LOCKED-ONE"})  # locked above: a Conflict
    assert under_lock.status_code == 409 and "locked" in under_lock.content.decode().lower()
    assert list(Runtime.objects.filter(org=world.marketing)) == []


def test_who_may_not_manage_gets_403_and_who_may_not_see_gets_404_and_nothing_changes(
    world, people, as_user, runtime_kind
):
    Runtime = runtime_kind.model
    item = Runtime.objects.create(org=world.marketing, name="jvm-21", description="mine")
    above = Runtime.objects.create(org=world.root, name="py-3.13")
    detail = reverse("runtime", args=[world.marketing.pk, item.pk])

    # A Guest sees it and changes nothing.
    guest = as_user(people["guest"])
    assert guest.get(detail).status_code == 200
    assert (
        guest.post(reverse("runtimes", args=[world.marketing.pk]), {"action": "create", "name": "x"}).status_code == 403
    )
    assert guest.post(detail, {"action": "edit", "name": "hacked", "version": 1}).status_code == 403
    assert guest.post(detail, {"action": "delete", "confirmed": "1", "version": 1}).status_code == 403

    # The Admin of Marketing sees what is declared above and may not change it there.
    boss = as_user(people["admin"])
    up = reverse("runtime", args=[world.marketing.pk, above.pk])
    assert boss.get(up).status_code == 200
    assert boss.post(up, {"action": "edit", "name": "py-3.14", "version": 1}).status_code == 403
    assert boss.post(up, {"action": "delete", "confirmed": "1", "version": 1}).status_code == 403

    # Someone without a role in the tree, and Logistics' own people, do not know it exists.
    stranger = as_user(people["newcomer"])
    assert stranger.get(reverse("runtimes", args=[world.marketing.pk])).status_code == 404
    assert stranger.get(detail).status_code == 404
    assert stranger.post(detail, {"action": "delete", "confirmed": "1", "version": 1}).status_code == 404
    # An item is only opened under an org that sees it: not under another branch, even by the tenant's admin.
    admin = as_user(world.tenant_admin)
    assert admin.get(reverse("runtime", args=[world.logistics.pk, item.pk])).status_code == 404

    item.refresh_from_db()
    above.refresh_from_db()
    assert (item.name, item.description, item.version) == ("jvm-21", "mine", 1)
    assert (above.name, above.version) == ("py-3.13", 1)
    assert Runtime.objects.count() == 2


def test_the_configuration_page_shows_the_kind_and_offers_to_hide_it_to_its_managers(
    world, people, as_user, runtime_kind
):
    Runtime = runtime_kind.model
    Runtime.objects.create(org=world.root, name="eu-west")
    url = reverse("org-settings", args=[world.marketing.pk])
    boss = as_user(people["admin"]).get(url)
    assert boss.status_code == 200
    (section,) = [s for s in boss.context["sections"] if s["kind"] == "runtime"]
    assert section["title"] == "Runtimes" and [r["item"].name for r in section["rows"]] == ["eu-west"]
    assert section["can_manage"] and ("runtime", "runtime") in boss.context["hide_form"].fields["type"].choices
    # The existing kinds keep their order, the new one comes after them.
    assert [s["kind"] for s in boss.context["sections"]][-1] == "runtime"
    guest = as_user(people["guest"]).get(url)
    (seen,) = [s for s in guest.context["sections"] if s["kind"] == "runtime"]
    assert not seen["can_manage"] and "runtime" not in dict(guest.context["hide_form"].fields["type"].choices)
    stranger = as_user(people["newcomer"]).get(url)
    assert stranger.status_code == 404


def test_a_kind_adds_to_its_pages_from_its_own_faces_module(world, people, as_user, runtime_kind):
    """Extras registered where the kind registers its form (config.console.register_extras), not in the console."""
    Runtime = runtime_kind.model
    register_extras(Runtime, Extras(noun="Runtime image", created_then="list"))
    try:
        client = as_user(people["admin"])
        created = client.post(reverse("runtimes", args=[world.marketing.pk]), {"action": "create", "name": "jvm"})
        assert created["Location"] == reverse("runtimes", args=[world.marketing.pk])
        item = Runtime.objects.get(name="jvm")
        gone = client.post(reverse("runtime", args=[world.marketing.pk, item.pk]),
                           {"action": "delete", "confirmed": "1", "version": 1}, follow=True)  # fmt: skip
        assert "Runtime image jvm was deleted." in gone.content.decode()
        assert not Runtime.objects.filter(pk=item.pk).exists()
    finally:
        EXTRAS.pop(Runtime)
