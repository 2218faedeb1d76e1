"""No lost updates in the resources package (issue #10 §1, docs/DESIGN.md §4.9).

For each update service: two copies loaded before either change, each changing something else, and read back:
both changes are there (the services used to save the whole stale instance, so the second save undid the first).
The same with ``version=`` of the first read: Stale, naming who changed it and when, and nothing changed. Then the
API (ETag, If-Match, 412), the admin's stale form, the order "lock, then decrypt" for secrets, and on PostgreSQL two
writers at the very same time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection

from access.models import AuditEvent
from access.services.grants import grant_role, remove_tenant_member
from config.actors import SYSTEM
from config.errors import Conflict, Forbidden, NotFound, Stale
from resources import crypto, services
from resources.models import (
    Component,
    ComponentMember,
    Credential,
    EnvVar,
    LookupRow,
    LookupTable,
    OrgSetting,
    Task,
    TaskUserShare,
)
from resources.services import declarations
from tests.factories import UserFactory, add_to_tenant, build_world


def reload(obj: Any) -> Any:
    """A separate copy of ``obj`` as the database holds it now (what a second request or form would load)."""
    return type(obj)._base_manager.get(pk=obj.pk)


def state(obj: Any) -> dict[str, Any]:
    """Everything stored about ``obj``: its columns and the rows that belong to it (lookup rows, development team,
    task shares), to compare before and after a refused write."""
    fresh = reload(obj)
    values = {f.attname: getattr(fresh, f.attname) for f in fresh._meta.concrete_fields}
    if isinstance(fresh, LookupTable):
        values["rows"] = sorted(LookupRow.objects.filter(table=fresh).values_list("key", "value"))
    if isinstance(fresh, Component):
        values["team"] = sorted(ComponentMember.objects.filter(component=fresh).values_list("user_id", flat=True))
    if isinstance(fresh, Task):
        values["shares"] = sorted(
            TaskUserShare.objects.filter(content_object=fresh).values_list("user_id", "permission__codename")
        )
    return values


@pytest.fixture
def cast(world, people) -> dict[str, Any]:
    """Two Admins of Marketing who edit the same things (alice the tenant administrator, maria an Admin), and two
    colleagues to share with or put on a development team."""
    maria = people["admin"]
    colleagues = []
    for name in ("vera", "yuri"):
        user = UserFactory(username=name)
        add_to_tenant(user, world.acme)
        grant_role(actor=SYSTEM, target=world.marketing, role="admin", user=user)
        colleagues.append(user)
    services.set_setting(actor=SYSTEM, org=world.marketing, key="allow_task_sharing", value=True)
    return {"alice": world.tenant_admin, "maria": maria, "vera": colleagues[0], "yuri": colleagues[1]}


# -- the cases: what is made, the two changes, what must be there after both ------------------------------------

Change = Callable[[Any, Any, Any, dict[str, Any]], Any]  # (actor, copy, version, cast) -> the service's answer


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Any], Any]  # world -> the object
    first: Change
    second: Change
    check: Callable[[Any, dict[str, Any]], None]  # (fresh object, cast): both changes are there

    def __str__(self) -> str:
        return self.id


def credential(world: Any) -> Credential:
    return services.create_credential(
        actor=SYSTEM, org=world.marketing, name="CRM", kind="http_basic", fields={"username": "bot"},
        secret={"password": "first-secret"},
    )  # fmt: skip


def generic_credential(world: Any) -> Credential:
    return services.create_credential(
        actor=SYSTEM, org=world.marketing, name="Vault", kind="generic", fields={}, secret={"token": "t0"}
    )


def table(world: Any) -> LookupTable:
    return services.create_lookup_table(
        actor=SYSTEM, org=world.marketing, name="Countries", rows=[{"key": "fr", "value": "France"}]
    )


def variable(world: Any) -> EnvVar:
    return services.create_env_var(actor=SYSTEM, org=world.marketing, key="API_URL", value="https://a.example")


def secret_variable(world: Any) -> EnvVar:
    return services.create_env_var(actor=SYSTEM, org=world.marketing, key="TOKEN", value="s-1", secret=True)


def component(world: Any) -> Component:
    return services.create_component(actor=SYSTEM, org=world.marketing, name="Connector")


def task(world: Any) -> Task:
    return services.create_task(
        actor=SYSTEM, project=world.website, name="Sync", steps=[{"type": "log", "message": "hello"}]
    )


def secret_of(item: Any) -> Any:
    return crypto.decrypt(item.secret_ciphertext)


CASES = [
    Case(
        "credential fields, then description",
        credential,
        lambda a, c, v, _: services.update_credential(actor=a, credential=c, version=v, fields={"username": "bot2"}),
        lambda a, c, v, _: services.update_credential(actor=a, credential=c, version=v, description="monthly"),
        lambda c, _: (c.fields, c.description) == ({"username": "bot2"}, "monthly"),
    ),
    Case(
        "credential secret, then fields",
        credential,
        lambda a, c, v, _: services.update_credential(actor=a, credential=c, version=v, secret={"password": "p2"}),
        lambda a, c, v, _: services.update_credential(actor=a, credential=c, version=v, fields={"username": "ops"}),
        lambda c, _: (secret_of(c), c.fields) == ({"password": "p2"}, {"username": "ops"}),
    ),
    Case(
        "credential secret field, then another secret field",
        generic_credential,
        lambda a, c, v, _: services.update_credential(actor=a, credential=c, version=v, secret={"a": "1"}),
        lambda a, c, v, _: services.update_credential(actor=a, credential=c, version=v, secret={"b": "2"}),
        lambda c, _: secret_of(c) == {"token": "t0", "a": "1", "b": "2"} and c.secret_names == ["a", "b", "token"],
    ),
    Case(
        "lookup rows, then description",
        table,
        lambda a, t, v, _: services.update_lookup_table(actor=a, table=t, version=v, rows=[{"key": "de", "value": ""}]),
        lambda a, t, v, _: services.update_lookup_table(actor=a, table=t, version=v, description="ISO codes"),
        lambda t, _: (state(t)["rows"], t.description) == ([("de", "")], "ISO codes"),
    ),
    Case(
        "lookup CSV merge, then another CSV merge",
        table,
        lambda a, t, v, _: services.import_lookup_csv(actor=a, table=t, version=v, content="it,Italy", replace=False),
        lambda a, t, v, _: services.import_lookup_csv(actor=a, table=t, version=v, content="es,Spain", replace=False),
        lambda t, _: state(t)["rows"] == [("es", "Spain"), ("fr", "France"), ("it", "Italy")],
    ),
    Case(
        "lookup CSV replace, then rename",
        table,
        lambda a, t, v, _: services.import_lookup_csv(actor=a, table=t, version=v, content="key,value\nnl,NL\n"),
        lambda a, t, v, _: services.update_lookup_table(actor=a, table=t, version=v, name="Countries 2"),
        lambda t, _: (state(t)["rows"], t.name) == ([("nl", "NL")], "Countries 2"),
    ),
    Case(
        "env var key, then value",
        variable,
        lambda a, e, v, _: services.update_env_var(actor=a, variable=e, version=v, key="BASE_URL"),
        lambda a, e, v, _: services.update_env_var(actor=a, variable=e, version=v, value="https://b.example"),
        lambda e, _: (e.key, e.value) == ("BASE_URL", "https://b.example"),
    ),
    Case(
        "secret env var value, then lock",
        secret_variable,
        lambda a, e, v, _: services.update_env_var(actor=a, variable=e, version=v, value="s-2"),
        lambda a, e, v, _: services.update_env_var(actor=a, variable=e, version=v, locked=True),
        lambda e, _: (secret_of(e), e.locked, e.secret, e.value) == ("s-2", True, True, ""),
    ),
    Case(
        "component description, then repository",
        component,
        lambda a, c, v, _: services.update_component(actor=a, component=c, version=v, description="ETL"),
        lambda a, c, v, _: services.update_component(actor=a, component=c, version=v, repository_url="https://git.example.com/c"),
        lambda c, _: (c.description, c.repository_url) == ("ETL", "https://git.example.com/c"),
    ),
    Case(
        "component team member, then another one",
        component,
        lambda a, c, v, p: services.add_component_member(actor=a, component=c, version=v, user=p["vera"]),
        lambda a, c, v, p: services.add_component_member(actor=a, component=c, version=v, user=p["yuri"]),
        lambda c, p: state(c)["team"] == sorted([p["vera"].pk, p["yuri"].pk]),
    ),
    Case(
        "component team member, then name",
        component,
        lambda a, c, v, p: services.add_component_member(actor=a, component=c, version=v, user=p["vera"]),
        lambda a, c, v, _: services.update_component(actor=a, component=c, version=v, name="Connector 2"),
        lambda c, p: (state(c)["team"], c.name) == ([p["vera"].pk], "Connector 2"),
    ),
    Case(
        "task steps, then name",
        task,
        lambda a, t, v, _: services.update_task(actor=a, task=t, version=v, steps=[{"type": "log", "message": "2"}]),
        lambda a, t, v, _: services.update_task(actor=a, task=t, version=v, name="Nightly sync"),
        lambda t, _: (t.steps, t.name) == ([{"type": "log", "message": "2"}], "Nightly sync"),
    ),
    Case(
        "task description, then steps",
        task,
        lambda a, t, v, _: services.update_task(actor=a, task=t, version=v, description="every night"),
        lambda a, t, v, _: services.update_task(actor=a, task=t, version=v, steps=[]),
        lambda t, _: (t.description, t.steps) == ("every night", []),
    ),
    Case(
        "task share, then another share",
        task,
        lambda a, t, v, p: services.share_task(actor=a, task=t, version=v, permission="view", user=p["vera"]),
        lambda a, t, v, p: services.share_task(actor=a, task=t, version=v, permission="run", user=p["yuri"]),
        lambda t, p: state(t)["shares"] == sorted([(p["vera"].pk, "view_task"), (p["yuri"].pk, "run_task")]),
    ),
    Case(
        "task share, then steps",
        task,
        lambda a, t, v, p: services.share_task(actor=a, task=t, version=v, permission="edit", user=p["vera"]),
        lambda a, t, v, _: services.update_task(actor=a, task=t, version=v, steps=[]),
        lambda t, p: (state(t)["shares"], t.steps) == ([(p["vera"].pk, "change_task")], []),
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=str)
def test_two_stale_copies_changed_in_turn_lose_nothing(world, cast, case):
    original = case.make(world)
    first_copy, second_copy = reload(original), reload(original)
    case.first(cast["alice"], first_copy, None, cast)
    case.second(cast["maria"], second_copy, None, cast)
    fresh = reload(original)
    assert case.check(fresh, cast), state(fresh)
    assert fresh.version == original.version + 2  # each change counted, none swallowed


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_change_from_the_version_read_before_another_change_is_stale_and_changes_nothing(world, cast, case):
    original = case.make(world)
    read = original.version
    second_copy = reload(original)
    case.first(cast["alice"], reload(original), read, cast)  # the version it read is current: applies
    before = state(original)
    with pytest.raises(Stale) as refused:
        case.second(cast["maria"], second_copy, read, cast)
    assert state(original) == before
    assert refused.value.version == read + 1
    assert refused.value.changed_by == "alice" and refused.value.changed_at is not None
    assert "alice" in refused.value.detail and refused.value.payload()["version"] == read + 1
    # With the version it now reads, maria's change applies on top of alice's.
    case.second(cast["maria"], reload(original), read + 1, cast)
    assert case.check(reload(original), cast)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_version_set_as_an_if_match_list_applies_when_it_holds_the_current_one(world, cast, case):
    original = case.make(world)
    case.first(cast["alice"], reload(original), {original.version - 1, original.version}, cast)
    with pytest.raises(Stale):
        case.second(cast["maria"], reload(original), frozenset(), cast)  # an If-Match of weak tags only


DELETES = [
    ("credential", credential, lambda a, o, v: services.delete_credential(actor=a, credential=o, version=v)),
    ("lookup table", table, lambda a, o, v: services.delete_lookup_table(actor=a, table=o, version=v)),
    ("env var", variable, lambda a, o, v: services.delete_env_var(actor=a, variable=o, version=v)),
    ("component", component, lambda a, o, v: services.delete_component(actor=a, component=o, version=v)),
    ("task", task, lambda a, o, v: services.delete_task(actor=a, task=o, version=v)),
]


@pytest.mark.parametrize("make, delete", [d[1:] for d in DELETES], ids=[d[0] for d in DELETES])
def test_a_delete_from_a_stale_version_is_refused_and_the_current_version_deletes(world, cast, make, delete):
    item = make(world)
    read = item.version
    stale_copy = reload(item)
    bump = {"description": "changed"} if not isinstance(item, EnvVar) else {"value": "https://c.example"}
    if isinstance(item, Credential):
        services.update_credential(actor=cast["alice"], credential=reload(item), **bump)
    elif isinstance(item, LookupTable):
        services.update_lookup_table(actor=cast["alice"], table=reload(item), **bump)
    elif isinstance(item, EnvVar):
        services.update_env_var(actor=cast["alice"], variable=reload(item), **bump)
    elif isinstance(item, Component):
        services.update_component(actor=cast["alice"], component=reload(item), **bump)
    else:
        services.update_task(actor=cast["alice"], task=reload(item), **bump)
    with pytest.raises(Stale) as refused:
        delete(cast["maria"], stale_copy, read)
    assert refused.value.changed_by == "alice"
    assert type(item).objects.filter(pk=item.pk).exists()
    delete(cast["maria"], stale_copy, read + 1)
    assert not type(item).objects.filter(pk=item.pk).exists()


def test_a_removed_component_member_and_share_follow_the_same_rule(world, cast):
    item = component(world)
    services.add_component_member(actor=cast["alice"], component=item, user=cast["vera"])
    read = reload(item).version
    services.add_component_member(actor=cast["alice"], component=reload(item), user=cast["yuri"])
    with pytest.raises(Stale):
        services.remove_component_member(actor=cast["maria"], component=item, user=cast["vera"], version=read)
    assert ComponentMember.objects.filter(component=item, user=cast["vera"]).exists()
    services.remove_component_member(actor=cast["maria"], component=item, user=cast["vera"], version=read + 1)
    assert state(item)["team"] == [cast["yuri"].pk]

    sync = task(world)
    share = services.share_task(actor=cast["alice"], task=sync, permission="view", user=cast["vera"])
    read = reload(sync).version
    services.update_task(actor=cast["alice"], task=reload(sync), description="changed")
    with pytest.raises(Stale):
        services.unshare_task(actor=cast["maria"], task=sync, share_id=share.pk, version=read)
    assert TaskUserShare.objects.filter(pk=share.pk).exists()
    services.unshare_task(actor=cast["maria"], task=sync, share_id=share.pk, version=read + 1)
    assert not TaskUserShare.objects.filter(pk=share.pk).exists()


# -- settings: rows created and dropped, so "not set here" is version 0 ------------------------------------------


def test_settings_changes_check_the_version_of_the_row_at_the_org(world, cast):
    alice, maria, org = cast["alice"], cast["maria"], world.emea
    assert services.setting_version(org, "run_log_retention_days") == 0
    # Both read "not set here" (0): the first set applies, the second is refused naming alice.
    services.set_setting(actor=alice, org=org, key="run_log_retention_days", value=10, version=0)
    with pytest.raises(Stale) as refused:
        services.set_setting(actor=maria, org=org, key="run_log_retention_days", value=3, version=0)
    assert refused.value.version == 1 and refused.value.changed_by == "alice"
    row = OrgSetting.objects.get(org=org, key="run_log_retention_days")
    assert (row.value, row.version) == (10, 1)
    # Changing the row from version 1: applies and raises the version; a second one from 1 is refused.
    services.set_setting(actor=maria, org=org, key="run_log_retention_days", value=5, version=1)
    with pytest.raises(Stale):
        services.set_setting(actor=alice, org=org, key="run_log_retention_days", value=7, locked=True, version=1)
    with pytest.raises(Stale):
        services.reset_setting(actor=alice, org=org, key="run_log_retention_days", version=1)
    row.refresh_from_db()
    assert (row.value, row.locked, row.version) == (5, False, 2)
    # A reset from the current version drops it; whoever still holds version 2 is told who reset it.
    services.reset_setting(actor=alice, org=org, key="run_log_retention_days", version=2)
    with pytest.raises(Stale) as refused:
        services.set_setting(actor=maria, org=org, key="run_log_retention_days", value=9, version=2)
    assert refused.value.version == 0 and refused.value.changed_by == "alice"
    assert not OrgSetting.objects.filter(org=org, key="run_log_retention_days").exists()


def test_a_stale_copy_of_a_setting_row_does_not_undo_a_change(world, cast):
    org = world.emea
    services.set_setting(actor=cast["alice"], org=org, key="run_log_retention_days", value=10)
    services.set_setting(actor=cast["maria"], org=org, key="run_log_retention_days", value=10, locked=True)
    row = OrgSetting.objects.get(org=org, key="run_log_retention_days")
    assert (row.value, row.locked, row.version) == (10, True, 2)
    event = AuditEvent.objects.filter(action="setting.set", target_id=str(row.pk)).latest("created_at")
    assert event.changes == {"locked": [False, True]}  # only what changed


# -- secrets: decrypted under the lock, from the fresh row -------------------------------------------------------


def test_a_secret_is_decrypted_only_after_the_row_is_locked(world, cast, monkeypatch):
    item = credential(world)
    calls: list[str] = []
    real_lock, real_decrypt = declarations.lock_for_update, crypto.decrypt

    def lock(obj: Any, version: Any = None) -> Any:
        calls.append("lock")
        return real_lock(obj, version)

    def decrypt(token: str) -> Any:
        calls.append("decrypt")
        return real_decrypt(token)

    monkeypatch.setattr(declarations, "lock_for_update", lock)
    monkeypatch.setattr(crypto, "decrypt", decrypt)
    services.update_credential(actor=cast["alice"], credential=item, secret={"password": "p3"})
    assert calls == ["lock", "decrypt"]


def test_the_secret_merged_is_the_fresh_rows_never_the_callers_copy(world, cast):
    item = generic_credential(world)
    stale_copy = reload(item)
    services.update_credential(actor=cast["alice"], credential=reload(item), secret={"token": None, "new": "n1"})
    # The copy still holds the old ciphertext (and a forged one would do no better): the stored one is merged.
    stale_copy.secret_ciphertext = crypto.encrypt({"token": "t0", "forged": "x"})
    services.update_credential(actor=cast["maria"], credential=stale_copy, secret={"more": "m1"})
    assert secret_of(reload(item)) == {"new": "n1", "more": "m1"}


def test_a_variable_made_secret_meanwhile_is_not_revealed_by_a_stale_copy(world, cast):
    item = variable(world)
    stale_copy = reload(item)
    services.update_env_var(actor=cast["alice"], variable=reload(item), value="s-new", secret=True)
    # maria's copy says "not secret": her key change must not write the old plain value back.
    services.update_env_var(actor=cast["maria"], variable=stale_copy, key="RENAMED")
    fresh = reload(item)
    assert (fresh.key, fresh.secret, fresh.value, secret_of(fresh)) == ("RENAMED", True, "", "s-new")


def test_a_bound_task_keeps_the_bindings_of_its_steps_when_another_field_changes(world, cast):
    crm = credential(world)
    sync = task(world)
    stale_copy = reload(sync)
    steps = [{"type": "http", "method": "GET", "url": "https://api.example", "credential": "CRM"}]
    services.update_task(actor=cast["alice"], task=reload(sync), steps=steps)
    services.update_task(actor=cast["maria"], task=stale_copy, description="renamed meanwhile")
    fresh = reload(sync)
    assert fresh.steps == steps and fresh.bindings == {"credential": {"crm": str(crm.pk)}}


def test_a_member_leaving_the_tenant_changes_the_tasks_and_components_that_lose_them(world, cast):
    sync, connector = task(world), component(world)
    services.share_task(actor=cast["alice"], task=sync, permission="view", user=cast["vera"])
    services.add_component_member(actor=cast["alice"], component=connector, user=cast["vera"])
    task_read, component_read = reload(sync).version, reload(connector).version
    remove_tenant_member(actor=cast["alice"], tenant=world.acme, user=cast["vera"])
    assert state(sync)["shares"] == [] and state(connector)["team"] == []
    # A form or ETag read before the removal is stale: it cannot put back what the removal took away unnoticed.
    with pytest.raises(Stale):
        services.update_component(actor=cast["maria"], component=connector, version=component_read, name="X")
    assert (reload(sync).version, reload(connector).version) == (task_read + 1, component_read + 1)


def test_two_stops_of_one_run_apply_once(world, cast):
    run = services.run_task(actor=cast["alice"], task=task(world))
    first, second = reload(run), reload(run)
    services.stop_run(actor=cast["alice"], run=first)
    with pytest.raises(Conflict) as refused:
        services.stop_run(actor=cast["maria"], run=second)  # its copy still says "queued"
    assert refused.value.code == "run_finished"
    assert reload(run).stopped_by == cast["alice"]
    assert AuditEvent.objects.filter(action="run.stop", target_id=str(run.pk)).count() == 1


def test_an_attacker_with_a_stale_version_learns_nothing_and_changes_nothing(world, cast, people):
    item = credential(world)
    services.update_credential(actor=cast["alice"], credential=reload(item), description="v2")
    before = state(item)
    for attacker in (people["guest"], world.other_admin):  # a stale version, yet not a word about it
        with pytest.raises(NotFound):
            services.update_credential(actor=attacker, credential=reload(item), version=1, description="pwned")
        with pytest.raises(NotFound):
            services.delete_credential(actor=attacker, credential=reload(item), version=1)
    variable_item = variable(world)
    with pytest.raises(Forbidden):  # an Integrator sees variables but may not change them
        services.update_env_var(actor=people["integrator"], variable=reload(variable_item), version=0, value="x")
    assert state(item) == before and reload(variable_item).value == "https://a.example"


# -- the API: ETag, If-Match, 412 --------------------------------------------------------------------------------

API_CASES = [
    ("credentials", credential, {"description": "via API"}, "description"),
    ("lookup-tables", table, {"rows": [{"key": "de", "value": "D"}]}, "description"),
    ("env-vars", variable, {"value": "https://api.example"}, "value"),
    ("components", component, {"description": "via API"}, "description"),
    ("tasks", task, {"steps": [{"type": "log", "message": "api"}]}, "description"),
]


@pytest.mark.parametrize("path, make, body, field", API_CASES, ids=[c[0] for c in API_CASES])
def test_the_api_answers_the_etag_and_refuses_a_stale_if_match(world, cast, api_as, path, make, body, field):
    item = make(world)
    client = api_as(cast["maria"])
    url = f"/api/v1/{path}/{item.pk}"
    got = client.get(url)
    assert got.status_code == 200 and got["ETag"] == f'"{item.version}"'
    # A matching If-Match applies; the answer's ETag is one higher.
    changed = client.patch(url, body, format="json", HTTP_IF_MATCH=got["ETag"])
    assert changed.status_code == 200, changed.json()
    assert changed["ETag"] == f'"{item.version + 1}"' == f'"{reload(item).version}"'
    # The same If-Match again is stale: 412 with the current ETag and who changed it; nothing changes.
    before = state(item)
    stale = client.patch(url, {field: "lost?"}, format="json", HTTP_IF_MATCH=got["ETag"])
    assert stale.status_code == 412 and stale["ETag"] == changed["ETag"]
    assert stale.json()["code"] == "stale" and stale.json()["version"] == item.version + 1
    assert stale.json()["changed_by"] == "admin-m" and stale.json()["changed_at"]
    assert client.delete(url, HTTP_IF_MATCH=got["ETag"]).status_code == 412
    assert client.patch(url, {}, format="json", HTTP_IF_MATCH='W/"2"').status_code == 412  # weak: never matches
    assert state(item) == before
    # "*" and no If-Match at all apply to the current version.
    assert client.patch(url, {field: "star"}, format="json", HTTP_IF_MATCH="*").status_code == 200
    assert client.patch(url, {field: "none"}, format="json").status_code == 200
    assert reload(item).version == item.version + 3
    assert client.delete(url, HTTP_IF_MATCH=f'"{item.version + 3}"').status_code == 204
    assert not type(item).objects.filter(pk=item.pk).exists()


def test_an_if_match_listing_several_versions_applies_when_one_is_current(world, cast, api_as):
    item = credential(world)
    client = api_as(cast["maria"])
    answer = client.patch(f"/api/v1/credentials/{item.pk}", {"description": "x"}, format="json",
                          HTTP_IF_MATCH='"7", "1"')  # fmt: skip
    assert answer.status_code == 200 and answer["ETag"] == '"2"'


def test_a_stale_credential_patch_through_the_api_keeps_the_secret_set_meanwhile(world, cast, api_as):
    item = credential(world)
    client = api_as(cast["maria"])
    url = f"/api/v1/credentials/{item.pk}"
    etag = client.get(url)["ETag"]
    services.update_credential(actor=cast["alice"], credential=reload(item), secret={"password": "alice-new"})
    stale = client.patch(url, {"secret": {"password": "maria-new"}}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412 and stale.json()["changed_by"] == "alice"
    assert "alice-new" not in stale.content.decode() and secret_of(reload(item)) == {"password": "alice-new"}


def test_the_api_refuses_stale_imports_shares_and_team_changes(world, cast, api_as):
    client = api_as(cast["maria"])
    countries = table(world)
    services.update_lookup_table(actor=cast["alice"], table=reload(countries), description="meanwhile")
    answer = client.post(f"/api/v1/lookup-tables/{countries.pk}/import", {"csv": "de,D"}, format="json",
                         HTTP_IF_MATCH='"1"')  # fmt: skip
    assert answer.status_code == 412 and state(countries)["rows"] == [("fr", "France")]
    answer = client.post(f"/api/v1/lookup-tables/{countries.pk}/import", {"csv": "de,D", "mode": "merge"},
                         format="json", HTTP_IF_MATCH='"2"')  # fmt: skip
    assert answer.status_code == 200 and answer["ETag"] == '"3"'
    assert state(countries)["rows"] == [("de", "D"), ("fr", "France")]

    sync = task(world)
    services.update_task(actor=cast["alice"], task=reload(sync), description="meanwhile")
    answer = client.post(f"/api/v1/tasks/{sync.pk}/shares", {"user": "vera", "permission": "view"}, format="json",
                         HTTP_IF_MATCH='"1"')  # fmt: skip
    assert answer.status_code == 412 and not TaskUserShare.objects.filter(content_object=sync).exists()
    answer = client.post(f"/api/v1/tasks/{sync.pk}/shares", {"user": "vera", "permission": "view"}, format="json",
                         HTTP_IF_MATCH='"2"')  # fmt: skip
    assert answer.status_code == 201 and answer["ETag"] == '"3"'
    share_id = answer.json()["id"]
    assert client.delete(f"/api/v1/tasks/{sync.pk}/shares/{share_id}", HTTP_IF_MATCH='"2"').status_code == 412
    assert client.delete(f"/api/v1/tasks/{sync.pk}/shares/{share_id}", HTTP_IF_MATCH='"3"').status_code == 204

    connector = component(world)
    services.update_component(actor=cast["alice"], component=reload(connector), description="meanwhile")
    team_url = f"/api/v1/components/{connector.pk}/team"
    assert client.get(team_url)["ETag"] == '"2"'
    answer = client.post(team_url, {"user": "vera"}, format="json", HTTP_IF_MATCH='"1"')
    assert answer.status_code == 412 and state(connector)["team"] == []
    answer = client.post(team_url, {"user": "vera"}, format="json", HTTP_IF_MATCH='"2"')
    assert answer.status_code == 201 and answer["ETag"] == '"3"'
    assert client.delete(team_url, {"user": "vera"}, format="json", HTTP_IF_MATCH='"2"').status_code == 412
    assert state(connector)["team"] == [cast["vera"].pk]


def test_the_api_settings_carry_the_version_set_at_the_org(world, cast, api_as):
    client = api_as(cast["maria"])
    url = f"/api/v1/orgs/{world.emea.pk}/settings/run_log_retention_days"
    assert client.get(url)["ETag"] == '"0"'  # inherited or default: not set here
    created = client.put(url, {"value": 10}, format="json", HTTP_IF_MATCH='"0"')
    assert created.status_code == 200 and created["ETag"] == '"1"' and created.json()["value"] == 10
    assert client.put(url, {"value": 3}, format="json", HTTP_IF_MATCH='"0"').status_code == 412
    changed = client.put(url, {"value": 4}, format="json", HTTP_IF_MATCH='"1"')
    assert changed.status_code == 200 and changed["ETag"] == '"2"'
    assert client.delete(url, HTTP_IF_MATCH='"1"').status_code == 412
    assert OrgSetting.objects.get(org=world.emea, key="run_log_retention_days").value == 4
    reset = client.delete(url, HTTP_IF_MATCH='"2"')
    assert reset.status_code == 200 and reset["ETag"] == '"0"'
    assert not OrgSetting.objects.filter(org=world.emea, key="run_log_retention_days").exists()


def test_an_attackers_if_match_gets_404_or_403_never_412(world, cast, api_as, people):
    item = credential(world)
    services.update_credential(actor=cast["alice"], credential=reload(item), description="v2")
    before = state(item)
    url = f"/api/v1/credentials/{item.pk}"
    for attacker in (world.other_admin, people["guest"]):
        answer = api_as(attacker).patch(url, {"description": "pwned"}, format="json", HTTP_IF_MATCH='"1"')
        assert answer.status_code == 404 and "ETag" not in answer
        assert api_as(attacker).delete(url, HTTP_IF_MATCH='"1"').status_code == 404
    variable_item = variable(world)
    answer = api_as(people["integrator"]).patch(f"/api/v1/env-vars/{variable_item.pk}", {"value": "x"},
                                                format="json", HTTP_IF_MATCH='"0"')  # fmt: skip
    assert answer.status_code == 403 and "ETag" not in answer
    assert state(item) == before and reload(variable_item).value == "https://a.example"


def test_the_schema_declares_if_match_412_and_the_etag_on_the_versioned_resources(api):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    for path in ("credentials", "lookup-tables", "env-vars", "components", "tasks"):
        operations = schema["paths"][f"/api/v1/{path}/{{id}}"]
        for method in ("patch", "delete"):
            names = {p["name"] for p in operations[method].get("parameters", [])}
            assert "If-Match" in names and "412" in operations[method]["responses"], (path, method)
        for method in ("get", "patch"):
            assert "ETag" in operations[method]["responses"]["200"]["headers"], (path, method)
    setting = schema["paths"]["/api/v1/orgs/{id}/settings/{key}"]
    assert "412" in setting["put"]["responses"] and "412" in setting["delete"]["responses"]
    for path in ("/api/v1/lookup-tables/{id}/import", "/api/v1/tasks/{id}/shares", "/api/v1/components/{id}/team"):
        post = schema["paths"][path]["post"]
        assert "If-Match" in {p["name"] for p in post["parameters"]} and "412" in post["responses"], path


# -- the admin: a stale change form is refused --------------------------------------------------------------------


def test_a_stale_admin_form_is_refused_naming_who_changed_it_and_overwrites_nothing(world, cast, as_user):
    item = credential(world)
    client = as_user(world.tenant_admin)
    form = client.get(f"/admin/resources/credential/{item.pk}/change/").content.decode()
    assert 'name="opened_version" value="1"' in form
    services.update_credential(actor=cast["maria"], credential=reload(item), fields={"username": "maria-bot"})
    posted = {"name": "CRM", "description": "alice's", "fields": '{"username": "alice-bot"}', "set_secret": "",
              "opened_version": "1"}  # fmt: skip
    response = client.post(f"/admin/resources/credential/{item.pk}/change/", posted)
    assert response.status_code == 303  # back to the form, reloaded with the current values
    page = client.get(response["Location"]).content.decode()
    assert "changed by admin-m" in page and 'name="opened_version" value="2"' in page
    fresh = reload(item)
    assert (fresh.fields, fresh.description, fresh.version) == ({"username": "maria-bot"}, "", 2)
    # Opened again (version 2), the same save applies.
    response = client.post(f"/admin/resources/credential/{item.pk}/change/", {**posted, "opened_version": "2"})
    assert response.status_code == 302
    assert reload(item).fields == {"username": "alice-bot"}


def test_a_stale_admin_component_form_does_not_undo_a_team_change(world, cast, as_user):
    item = component(world)
    client = as_user(world.tenant_admin)
    assert (
        'name="opened_version" value="1"'
        in client.get(f"/admin/resources/component/{item.pk}/change/").content.decode()
    )
    services.add_component_member(actor=cast["maria"], component=reload(item), user=cast["vera"])
    posted = {"name": "Connector", "description": "", "repository_url": "", "development_team": [],
              "opened_version": "1", "members-TOTAL_FORMS": "0", "members-INITIAL_FORMS": "0",
              "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0"}  # fmt: skip
    client.post(f"/admin/resources/component/{item.pk}/change/", posted)
    assert state(item)["team"] == [cast["vera"].pk]


# -- PostgreSQL: two writers at the same time --------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_writers_changing_fields_and_secret_at_the_same_time_both_survive(postgres_only):
    assert connection.vendor == "postgresql"
    world = build_world()
    errors: list[BaseException] = []
    for round_number in range(5):
        item = services.create_credential(
            actor=SYSTEM, org=world.marketing, name=f"CRM {round_number}", kind="http_basic",
            fields={"username": "bot"}, secret={"password": "p0"},
        )  # fmt: skip
        copies = [reload(item), reload(item)]
        start = threading.Barrier(2)

        def write(index: int, copy: Credential, start: threading.Barrier = start) -> None:
            try:
                start.wait(timeout=10)
                if index == 0:
                    services.update_credential(actor=SYSTEM, credential=copy, fields={"username": "ops"})
                else:
                    services.update_credential(actor=SYSTEM, credential=copy, secret={"password": "p1"})
            except BaseException as exc:  # reported below, with its traceback
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=write, args=(i, c)) for i, c in enumerate(copies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors, errors
        fresh = reload(item)
        assert fresh.fields == {"username": "ops"} and secret_of(fresh) == {"password": "p1"}, round_number
        assert fresh.version == 3
