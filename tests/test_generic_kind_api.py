"""§5 measured for the writes and the API: a declared kind registered with only its registry entry and a Faces (its
API serializers) is created, listed, read, changed, deleted and hidden through the generic services and API views,
with the policy deciding (404 unseen, 403 without the capability), optimistic concurrency (ETag, If-Match, 412),
the inheritance rules (name taken, locked above) and its own audit events; no file of the app changes for it.

The throwaway kind is ``Probe``, a proxy of Component in a test-only app (so it needs no table), using the
``runtime.view``/``runtime.manage`` capabilities the runtimes issue's Runtime will use. Its URL patterns come from
the same generator the API's URLconf runs at start-up (resources.api_urls.declared_kind_patterns): a real kind is
registered by its app's kinds.py before the URLconf loads; the test's kind is registered later, so the test serves
the generated patterns through a URLconf of its own (this module's ``urlpatterns``, filled by the fixture).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.urls import include, path, reverse
from rest_framework import serializers

from access.models import AuditEvent
from config import kinds
from config import urls as project_urls
from config.actors import SYSTEM
from config.errors import Conflict, Forbidden, NotFound, Stale
from resources import services
from resources.api_urls import declared_kind_patterns
from resources.models import Component, Hidden
from resources.serializers import SourceFields

urlpatterns: list[Any] = []  # the project's routes and the generated ones, once the probe kind is registered


@pytest.fixture
def probe(settings: Any) -> Iterator[kinds.Kind]:
    """The kind, its Faces (three serializers of its own fields, nothing else) and the URLconf serving it."""

    class Probe(Component):
        KIND = "probe"

        class Meta:
            proxy = True
            app_label = "tests"

    kind = kinds.register(
        kinds.Kind(model=Probe, rule=kinds.Rule.DECLARED, view="runtime.view", manage="runtime.manage", within="org",
                   label="probe", label_plural="probes", api_list="api-org-probes", api_detail="api-probe")
    )  # fmt: skip

    # -- what the kind's faces.py would hold: only its own fields --
    class ProbeWriteSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
        locked = serializers.BooleanField(required=False, default=False)

    class ProbeUpdateSerializer(ProbeWriteSerializer):
        name = serializers.CharField(max_length=100, required=False)
        locked = serializers.BooleanField(required=False)

    @kinds.api_serializers(Probe, write=ProbeWriteSerializer, update=ProbeUpdateSerializer)
    class ProbeSerializer(SourceFields, serializers.ModelSerializer):
        class Meta:
            model = Probe
            fields = ["id", "name", "description", "org", "inherited", "locked", "overrides"]
            read_only_fields = fields

    # The generated routes first: the project's own end with the JSON 404 catch-all of /api/v1/.
    urlpatterns[:] = [path("api/v1/", include(declared_kind_patterns())), *project_urls.urlpatterns]
    settings.ROOT_URLCONF = __name__
    yield kind
    urlpatterns.clear()
    kinds.registry.unregister(Probe)
    kinds.registry.faces.pop(Probe, None)
    del apps.all_models["tests"]["probe"]
    apps.clear_cache()


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("created_at"))


def test_the_generated_routes_are_named_by_the_registry_entry(probe):
    org_id = "00000000-0000-0000-0000-000000000001"
    assert reverse("api-org-probes", args=[org_id]) == f"/api/v1/orgs/{org_id}/probes"
    assert reverse("api-probe", args=[org_id]) == f"/api/v1/probes/{org_id}"


def test_an_admin_creates_lists_reads_changes_and_deletes_a_probe_through_the_api(world, people, probe, api_as):
    admin = api_as(people["admin"])
    created = admin.post(
        f"/api/v1/orgs/{world.marketing.pk}/probes", {"name": "eu-west", "description": "first"}, format="json"
    )
    assert created.status_code == 201, created.content
    item_id = created.json()["id"]
    assert created.json() | {"id": None} == {
        "id": None, "name": "eu-west", "description": "first", "org": {"id": str(world.marketing.pk),
        "name": "Marketing"}, "inherited": False, "locked": False, "overrides": None,
    }  # fmt: skip
    # Inherited below, as every declared kind is.
    listed = admin.get(f"/api/v1/orgs/{world.campaigns.pk}/probes")
    assert listed.status_code == 200
    assert [(r["name"], r["inherited"]) for r in listed.json()["results"]] == [("eu-west", True)]
    detail = admin.get(f"/api/v1/probes/{item_id}")
    assert detail.status_code == 200 and detail["ETag"] == '"1"'
    changed = admin.patch(f"/api/v1/probes/{item_id}", {"description": "second"}, format="json", HTTP_IF_MATCH='"1"')
    assert changed.status_code == 200 and changed["ETag"] == '"2"' and changed.json()["description"] == "second"
    stale = admin.patch(f"/api/v1/probes/{item_id}", {"description": "lost"}, format="json", HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412 and stale.json()["code"] == "stale"
    assert admin.delete(f"/api/v1/probes/{item_id}", HTTP_IF_MATCH='"1"').status_code == 412
    assert probe.model.objects.get(pk=item_id).description == "second"  # the stale writes changed nothing
    assert admin.delete(f"/api/v1/probes/{item_id}", HTTP_IF_MATCH='"2"').status_code == 204
    assert not probe.model.objects.filter(pk=item_id).exists()
    # Its own audit events, the diff of the change in it.
    assert [e.changes for e in _events("probe.update")] == [{"description": ["first", "second"]}]
    assert len(_events("probe.create")) == 1 and len(_events("probe.delete")) == 1


def test_the_policy_decides_every_generated_route(world, people, probe, api_as):
    item = services.services_for(probe.model).create(actor=SYSTEM, org=world.marketing, name="eu-west")
    guest, integrator = api_as(people["guest"]), api_as(people["integrator"])
    outsider = api_as(world.other_admin)  # Globex's administrator: Acme does not exist for them
    # A Guest reads (runtime.view) but cannot create, change or delete (runtime.manage): 403.
    assert guest.get(f"/api/v1/probes/{item.pk}").status_code == 200
    assert integrator.post(f"/api/v1/orgs/{world.marketing.pk}/probes", {"name": "x"}, format="json").status_code == 403
    assert integrator.patch(f"/api/v1/probes/{item.pk}", {"name": "x"}, format="json").status_code == 403
    assert guest.delete(f"/api/v1/probes/{item.pk}").status_code == 403
    # Another tenant: 404 everywhere.
    assert outsider.get(f"/api/v1/orgs/{world.marketing.pk}/probes").status_code == 404
    assert outsider.get(f"/api/v1/probes/{item.pk}").status_code == 404
    assert outsider.patch(f"/api/v1/probes/{item.pk}", {"name": "x"}, format="json").status_code == 404
    assert outsider.delete(f"/api/v1/probes/{item.pk}").status_code == 404
    # The victim's state, read back: unchanged, and nothing but the creation was audited.
    item.refresh_from_db()
    assert (item.name, item.version) == ("eu-west", 1)
    assert probe.model.objects.count() == 1
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="probe.")] == ["probe.create"]


def test_bad_input_and_the_inheritance_rules_answer_400_and_409_and_change_nothing(world, people, probe, api_as):
    writes = services.services_for(probe.model)
    writes.create(actor=SYSTEM, org=world.root, name="locked-one", locked=True)
    writes.create(actor=SYSTEM, org=world.marketing, name="taken")
    admin = api_as(world.tenant_admin)
    url = f"/api/v1/orgs/{world.marketing.pk}/probes"
    bad = admin.post(url, {"name": "no/slashes"}, format="json")
    assert bad.status_code == 400 and "name" in bad.json()
    assert admin.post(url, {}, format="json").status_code == 400
    taken = admin.post(url, {"name": "TAKEN"}, format="json")
    assert taken.status_code == 409 and taken.json()["code"] == "name_taken"
    locked = admin.post(url, {"name": "Locked-One"}, format="json")
    assert locked.status_code == 409 and locked.json()["code"] == "locked"
    assert sorted(probe.model.objects.values_list("name", flat=True)) == ["locked-one", "taken"]


def test_a_probe_is_hidden_below_through_the_hide_endpoint_read_from_the_registry(world, people, probe, api_as):
    services.services_for(probe.model).create(actor=SYSTEM, org=world.marketing, name="eu-west")
    admin = api_as(world.tenant_admin)
    hidden = admin.post(f"/api/v1/orgs/{world.emea.pk}/hidden", {"type": "probe", "name": "EU-West"}, format="json")
    assert hidden.status_code == 201, hidden.content
    assert admin.get(f"/api/v1/orgs/{world.campaigns.pk}/probes").json()["results"] == []
    assert Hidden.objects.get(org=world.emea).kind == "probe"
    # An Integrator of Marketing lacks runtime.manage: the hide is refused, nothing is hidden.
    refused = api_as(people["integrator"]).post(
        f"/api/v1/orgs/{world.campaigns.pk}/hidden", {"type": "probe", "name": "eu-west"}, format="json"
    )
    assert refused.status_code == 403
    assert Hidden.objects.filter(org=world.campaigns).count() == 0


def test_the_default_services_authorize_lock_and_audit_for_any_actor_but_none(world, people, probe):
    writes = services.services_for(probe.model)
    with pytest.raises(TypeError):
        writes.create(actor=None, org=world.marketing, name="x")
    with pytest.raises(NotFound):  # Logistics is another branch: invisible to Marketing's Admin
        writes.create(actor=people["admin"], org=world.logistics, name="x")
    with pytest.raises(Forbidden):
        writes.create(actor=people["integrator"], org=world.marketing, name="x")
    item = writes.create(actor=people["admin"], org=world.marketing, name="mine")
    first, second = probe.model.objects.get(pk=item.pk), probe.model.objects.get(pk=item.pk)
    writes.update(actor=people["admin"], item=first, description="one")
    writes.update(actor=people["admin"], item=second, name="renamed")  # a second stale copy: no lost update
    item.refresh_from_db()
    assert (item.name, item.description, item.version) == ("renamed", "one", 3)
    with pytest.raises(Stale):
        writes.update(actor=people["admin"], item=item, version=2, description="late")
    with pytest.raises(TypeError):
        writes.delete(actor=None, item=item)
    below = writes.create(actor=SYSTEM, org=world.emea, name="renamed")  # overrides Marketing's below it
    with pytest.raises(Conflict):  # locking over an override below is refused
        writes.update(actor=SYSTEM, item=item, locked=True)
    item.refresh_from_db()
    assert not item.locked and item.description == "one"
    writes.delete(actor=SYSTEM, item=item, version=3)
    assert list(probe.model.objects.values_list("pk", flat=True)) == [below.pk]
    assert [e.changes for e in _events("probe.delete")] == [{"name": "renamed"}]
    assert [e.changes for e in _events("probe.update")] == [
        {"description": ["", "one"]},
        {"name": ["mine", "renamed"]},
    ]
