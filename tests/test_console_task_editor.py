"""The task editor of the console (issue #11 §5): a structured step editor (add, remove, reorder; the fields of each
step type; credentials and lookup tables picked from what the task may use), JSON as an advanced mode, the same
validation as the API, and never an accidental empty task.

Personas (tests/conftest.py people): integrator-m holds Integrator on Marketing (task.create, sees credentials);
guest-m is a Guest there (sees tasks, edits nothing); gina administers Globex; bea builds tasks with a custom role
that shows no credential; ed edits one task through a share.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

from access.models import AuditEvent
from access.services.custom_roles import create_role
from access.services.grants import grant_role
from resources import services
from resources.models import Task
from resources.services.tasks import STEP_TYPES
from resources.step_editor import boxes_of, draft_of, representable, step_fields
from resources.task_form import NO_STEPS_ERROR
from tests.adversarial.test_hostile_input import post_form
from tests.factories import UserFactory, add_to_tenant

HTTP_STEP = {
    "type": "http", "name": "Fetch orders", "method": "POST", "url": "https://api.example.com/orders",
    "headers": {"Accept": "application/json", "X-Trace": "{{ run_id }}"}, "body": {"since": "yesterday", "n": 5},
    "credential": "Shared API", "into": "orders",
}  # fmt: skip
LOOKUP_STEP = {"type": "lookup", "table": "Countries", "key": "{{ country }}", "default": None, "into": "land"}
TRANSFORM_STEP = {"type": "transform", "expression": "orders.body[].id", "into": "ids"}
LOG_STEP = {"type": "log", "message": "Fetched {{ ids }}", "level": "warning"}
IDENTITY_STEP = {"type": "http", "method": "GET", "url": "https://sts.example.com/", "identity": {"audience": "sts"}}
RICH_STEPS = [HTTP_STEP, LOOKUP_STEP, TRANSFORM_STEP, LOG_STEP, IDENTITY_STEP]


@pytest.fixture
def stock(world) -> dict[str, Any]:
    """A credential and a lookup table of the root (seen from Marketing), a credential of EMEA (not seen from
    Marketing's projects), and a task of the Website project."""
    alice = world.tenant_admin
    return {
        "cred": services.create_credential(
            actor=alice, org=world.root, name="Shared API", kind="api_key", secret={"key": "k"}
        ),
        "emea_cred": services.create_credential(
            actor=alice, org=world.emea, name="EMEA only", kind="api_key", secret={"key": "k"}
        ),
        "table": services.create_lookup_table(
            actor=alice, org=world.root, name="Countries", rows=[{"key": "FR", "value": "France"}]
        ),
        "task": services.create_task(actor=alice, project=world.website, name="Sync", steps=[LOG_STEP]),
    }


def tasks_url(world) -> str:
    return f"/o/{world.marketing.pk}/p/{world.website.pk}/tasks/"


def task_url(world, task: Task) -> str:
    return f"/o/{world.marketing.pk}/tasks/{task.pk}/"


def text_of(response: Any) -> str:
    return html.unescape(response.content.decode())


def state() -> tuple[Any, ...]:
    """What a refused or editor-only request must leave as it was."""
    return list(Task.objects.order_by("pk").values_list("pk", "name", "steps", "version")), AuditEvent.objects.count()


def posted(steps: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """The step editor's POST for ``steps``, as its page draws them (every input, empty ones included)."""
    data: dict[str, Any] = {"mode": "steps", **fields}
    for box in boxes_of([draft_of(step) for step in steps], {}):
        data[f"step-{box.index}-type"] = box.type
        for item in box.inputs:
            data[item.name] = item.value
    return data


def box_types(response: Any) -> list[str]:
    return re.findall(r'name="step-\d+-type" value="(\w+)"', response.content.decode())


# -- the editor draws every field of every step type ---------------------------------------------------------------


def test_every_field_of_every_step_type_has_an_input_and_comes_back_as_it_was():
    for kind in STEP_TYPES:
        (box,) = boxes_of([(kind, {})], {})
        assert {item.key for item in box.inputs} == set(step_fields(kind)) == set(STEP_TYPES[kind]().fields) - {"type"}
    assert representable(RICH_STEPS)
    # What the editor cannot show exactly opens as JSON: an unknown field, an empty header object, a number as text.
    for odd in ({**LOG_STEP, "colour": "red"}, {**HTTP_STEP, "headers": {}}, {**LOG_STEP, "message": 5}, "log"):
        assert not representable([odd])


# -- create and edit with the step editor --------------------------------------------------------------------------


def test_an_integrator_creates_a_task_from_the_step_editor(world, people, stock, as_user):
    client = as_user(people["integrator"])
    page = client.get(tasks_url(world))
    assert page.status_code == 200 and 'value="add:http"' in page.content.decode()
    assert "null" not in page.content.decode()  # never a textarea pre-filled with null
    response = client.post(tasks_url(world), posted(RICH_STEPS, action="create", name="Orders", description="d"))
    task = Task.objects.get(name="Orders")
    assert response.status_code == 302 and response["Location"] == task_url(world, task)
    assert task.steps == RICH_STEPS
    assert task.bindings == {
        "credential": {"shared api": str(stock["cred"].pk)}, "lookup_table": {"countries": str(stock["table"].pk)},
    }  # fmt: skip


def test_the_editor_buttons_add_move_and_remove_steps_and_save_nothing(world, people, stock, as_user):
    client = as_user(people["integrator"])
    before = state()
    response = client.post(tasks_url(world), {"action": "create", "name": "", "mode": "steps", "editor": "add:http"})
    assert response.status_code == 200 and box_types(response) == ["http"]
    page = response.content.decode()
    assert 'name="step-0-url"' in page and '<option value="GET" selected>' in page
    assert "Shared API" in page and "EMEA only" not in page  # the credentials the task may use, only
    assert 'class="error"' not in page  # a button is not a save: the empty name is not judged yet
    data = posted([HTTP_STEP, LOG_STEP], action="create", name="Two")
    assert box_types(client.post(tasks_url(world), {**data, "editor": "down:0"})) == ["log", "http"]
    assert box_types(client.post(tasks_url(world), {**data, "editor": "up:1"})) == ["log", "http"]
    assert box_types(client.post(tasks_url(world), {**data, "editor": "up:0"})) == ["http", "log"]  # already first
    moved = client.post(tasks_url(world), {**data, "editor": "down:0"})
    assert 'name="step-0-message" id="create-id_step-0-message"' in moved.content.decode()
    assert "Fetched {{ ids }}" in text_of(moved)  # the moved step keeps what was typed in it
    assert box_types(client.post(tasks_url(world), {**data, "editor": "remove:0"})) == ["log"]
    assert client.post(tasks_url(world), {**data, "editor": "explode"}).status_code == 400
    assert state() == before


def test_what_was_typed_survives_a_button_even_when_it_is_not_valid_yet(world, people, stock, as_user):
    client = as_user(people["integrator"])
    data = posted([HTTP_STEP], action="create", name="X")
    data["step-0-body"] = "{not json"
    response = client.post(tasks_url(world), {**data, "editor": "add:log"})
    assert box_types(response) == ["http", "log"] and "{not json" in text_of(response)


def test_an_edit_from_the_step_editor_saves_the_changed_steps(world, people, stock, as_user):
    client = as_user(people["integrator"])
    task = stock["task"]
    page = client.get(task_url(world, task)).content.decode()
    assert 'name="step-0-message"' in page and 'value="json"' in page
    data = posted([LOG_STEP, TRANSFORM_STEP], action="edit", name="Sync", description="", version=task.version)
    assert client.post(task_url(world, task), data).status_code == 302
    task.refresh_from_db()
    assert task.steps == [LOG_STEP, TRANSFORM_STEP]


# -- refusals: field errors, nothing saved -------------------------------------------------------------------------


def test_an_invalid_step_is_a_field_error_on_its_box_and_nothing_is_saved(world, people, stock, as_user):
    client = as_user(people["integrator"])
    before = state()
    bad = {**HTTP_STEP, "url": "ftp://files.example.com", "into": "not a variable"}
    response = client.post(tasks_url(world), posted([LOG_STEP, bad], action="create", name="Bad"))
    text = text_of(response)
    assert response.status_code == 400
    assert "“url” must be an http:// or https:// address." in text
    assert "“into” must be a variable name" in text
    assert "Step 2: “url”" not in text  # shown in step 2's own box, without the prefix
    assert box_types(response) == ["log", "http"] and "ftp://files.example.com" in text  # the input kept
    data = posted([HTTP_STEP], action="create", name="Bad")
    data["step-0-body"], data["step-0-headers"] = "{not json", "no colon here"
    response = client.post(tasks_url(world), data)
    assert response.status_code == 400 and "Not valid JSON (line 1)" in text_of(response)
    assert "Line 1: write Name: value." in text_of(response)
    missing = posted([{"type": "lookup", "table": "Countries", "key": "k"}], action="create", name="Bad")
    missing["step-0-key"] = ""
    response = client.post(tasks_url(world), missing)
    assert response.status_code == 400 and "a lookup step needs key." in text_of(response)
    assert state() == before


def test_zero_steps_are_saved_only_when_said_so(world, people, stock, as_user):
    client = as_user(people["integrator"])
    before = state()
    for data in ({"mode": "steps"}, {"mode": "json", "steps": "[]"}, {"steps": "[]"}):
        response = client.post(tasks_url(world), {"action": "create", "name": "Empty", **data})
        assert response.status_code == 400 and NO_STEPS_ERROR in text_of(response), data
    for text, message in (("", "Write the steps as a JSON list"), ("null", "null is not one")):
        response = client.post(tasks_url(world), {"action": "create", "name": "Empty", "mode": "json", "steps": text})
        assert response.status_code == 400 and message in text_of(response)
    assert state() == before
    response = client.post(tasks_url(world), {"action": "create", "name": "Empty", "mode": "steps", "no_steps": "on"})
    assert response.status_code == 302 and Task.objects.get(name="Empty").steps == []


def test_a_task_without_steps_opens_with_save_without_steps_ticked(world, people, as_user):
    task = services.create_task(actor=world.tenant_admin, project=world.website, name="Draft", steps=[])
    client = as_user(people["integrator"])
    page = client.get(task_url(world, task)).content.decode()
    assert re.search(r'<input type="checkbox" name="no_steps"[^>]*checked', page)
    data = {"action": "edit", "mode": "steps", "name": "Draft 2", "description": "", "no_steps": "on"}
    assert client.post(task_url(world, task), data).status_code == 302


# -- JSON mode: the advanced toggle, the API's validation ----------------------------------------------------------


def test_the_json_toggle_converts_both_ways_and_refuses_what_it_cannot_show(world, people, stock, as_user):
    client = as_user(people["integrator"])
    before = state()
    response = client.post(tasks_url(world), {**posted(RICH_STEPS, action="create", name="T"), "editor": "json"})
    page = text_of(response)
    assert response.status_code == 200 and 'name="steps"' in page and 'value="json"' in page
    assert '"url": "https://api.example.com/orders"' in page and "step-0-type" not in page
    empty = client.post(tasks_url(world), {"action": "create", "name": "T", "mode": "steps", "editor": "json"})
    assert re.search(r'name="steps"[^>]*>\[\]</textarea>', empty.content.decode())  # [] for none, never null
    back = client.post(tasks_url(world), {"action": "create", "name": "T", "mode": "json", "editor": "steps",
                                          "steps": '[{"type": "log", "message": "hi"}]'})  # fmt: skip
    assert back.status_code == 200 and box_types(back) == ["log"]
    broken = client.post(tasks_url(world), {"action": "create", "mode": "json", "editor": "steps", "steps": "[{"})
    assert broken.status_code == 400 and "The JSON is not valid" in text_of(broken)
    odd = client.post(tasks_url(world), {"action": "create", "mode": "json", "editor": "steps",
                                         "steps": '[{"type": "log", "message": "hi", "colour": "red"}]'})  # fmt: skip
    assert odd.status_code == 400 and "keep editing them as JSON" in text_of(odd)
    assert 'name="steps"' in odd.content.decode()
    assert state() == before


def test_a_task_the_step_editor_cannot_show_opens_as_json_and_keeps_its_steps(world, people, stock, as_user):
    steps = [{"type": "http", "method": "GET", "url": "https://x.example", "headers": {}}]
    task = services.create_task(actor=world.tenant_admin, project=world.website, name="Odd", steps=steps)
    client = as_user(people["integrator"])
    page = text_of(client.get(task_url(world, task)))
    assert "edit them as JSON" in page and '"headers": {}' in page
    data = {"action": "edit", "name": "Odd 2", "description": "", "mode": "json", "version": task.version,
            "steps": '[{"type": "http", "method": "GET", "url": "https://x.example", "headers": {}}]'}  # fmt: skip
    assert client.post(task_url(world, task), data).status_code == 302
    task.refresh_from_db()
    assert (task.name, task.steps) == ("Odd 2", steps)


PARITY_CASES = [
    [LOG_STEP, TRANSFORM_STEP],
    [{"type": "teleport"}],
    [{"type": "log"}],
    [{"type": "log", "message": "hi", "colour": "red"}],
    [{"type": "http", "method": "FETCH", "url": "gopher://x", "identity": {"audience": "a b"}}],
    [{"type": "http", "method": "GET", "url": "https://x.example", "credential": "EMEA only"}],
    [{"type": "lookup", "table": "Nope", "key": "k"}],
    {"type": "log", "message": "not a list"},
    ["log"],
]


@pytest.mark.parametrize("steps", PARITY_CASES)
def test_json_mode_accepts_and_refuses_exactly_what_the_api_does(world, people, stock, as_user, api_as, steps):
    api = api_as(people["integrator"])
    answer = api.post(f"/api/v1/projects/{world.website.pk}/tasks", {"name": "Api", "steps": steps}, format="json")
    data = {"action": "create", "name": "Console", "mode": "json", "steps": json.dumps(steps)}
    response = as_user(people["integrator"]).post(tasks_url(world), data)
    if answer.status_code == 201:
        assert response.status_code == 302
        assert Task.objects.get(name="Console").steps == Task.objects.get(name="Api").steps
    else:
        assert answer.status_code == 400 and response.status_code == 400
        for message in answer.json()["steps"]:
            assert message in text_of(response)
        assert not Task.objects.filter(name="Console").exists()


# -- references: only what the editor may use ----------------------------------------------------------------------


def test_a_credential_outside_the_editors_reach_is_neither_offered_nor_accepted(world, stock, as_user):
    builder = create_role(
        actor=world.tenant_admin, org=world.root, name="Builder",
        capabilities=["org.view", "project.view", "task.view", "task.create"],
    )  # fmt: skip
    bea = UserFactory(username="bea")  # builds tasks in Marketing, sees no credential
    add_to_tenant(bea, world.acme)
    grant_role(actor=world.tenant_admin, target=world.marketing, role=builder, user=bea)
    client = as_user(bea)
    response = client.post(tasks_url(world), {"action": "create", "name": "B", "mode": "steps", "editor": "add:http"})
    assert response.status_code == 200 and "Shared API" not in text_of(response)
    before = state()
    for name in ("Shared API", "EMEA only"):
        data = posted([{**HTTP_STEP, "credential": name}], action="create", name="B")
        response = client.post(tasks_url(world), data)
        assert response.status_code == 400
        assert f"no credential named “{name}” is available to you in Marketing." in text_of(response)
    assert state() == before


def test_an_editor_by_share_renames_a_task_whose_credential_they_cannot_see_but_cannot_repoint_it(
    world, stock, as_user
):
    task = services.create_task(actor=world.tenant_admin, project=world.website, name="Orders", steps=[HTTP_STEP])
    ed = UserFactory(username="ed")
    add_to_tenant(ed, world.acme)
    services.share_task(actor=world.tenant_admin, task=task, permission="edit", user=ed)
    task.refresh_from_db()
    client = as_user(ed)
    page = text_of(client.get(task_url(world, task)))
    assert "Shared API (not available to you here)" in page
    data = posted([HTTP_STEP], action="edit", name="Orders renamed", description="", version=task.version)
    assert client.post(task_url(world, task), data).status_code == 302  # the steps untouched: not re-checked
    task.refresh_from_db()
    assert (task.name, task.steps) == ("Orders renamed", [HTTP_STEP])
    before = state()
    evil = posted([{**HTTP_STEP, "url": "https://collector.evil.example/"}], action="edit", name="Orders",
                  description="", version=task.version)  # fmt: skip
    response = client.post(task_url(world, task), evil)
    assert response.status_code == 400 and "no credential named “Shared API” is available to you" in text_of(response)
    assert state() == before


# -- who may use the editor ----------------------------------------------------------------------------------------


def test_the_editor_buttons_are_denied_like_a_save(world, people, stock, as_user):
    before = state()
    guest = as_user(people["guest"])
    assert guest.post(tasks_url(world), {"action": "create", "editor": "add:log"}).status_code == 403
    page = task_url(world, stock["task"])
    assert "step-0-message" not in guest.get(page).content.decode()  # no edit form without task.edit
    assert guest.post(page, {"action": "edit", "editor": "add:log"}).status_code == 403
    gina = as_user(world.other_admin)
    assert gina.post(tasks_url(world), {"action": "create", "editor": "add:log"}).status_code == 404
    assert gina.post(page, {"action": "edit", "editor": "add:log"}).status_code == 404
    assert state() == before


def test_the_edit_page_costs_the_same_with_many_steps(world, people, stock, as_user, django_assert_max_num_queries):
    def cost(steps: list[dict[str, Any]]) -> int:
        task = services.create_task(actor=world.tenant_admin, project=world.website, name=f"T{len(steps)}", steps=steps)
        client = as_user(people["integrator"])
        client.get(task_url(world, task))
        with django_assert_max_num_queries(40) as captured:
            assert client.get(task_url(world, task)).status_code == 200
        return len(captured)

    assert cost([HTTP_STEP, LOOKUP_STEP]) == cost([HTTP_STEP, LOOKUP_STEP] * 30)


def test_a_stale_edit_is_refused_and_keeps_the_steps_as_typed(world, people, stock, as_user):
    task = stock["task"]
    opened_at = task.version
    services.update_task(actor=world.tenant_admin, task=task, description="changed meanwhile")
    client = as_user(people["integrator"])
    before = state()
    data = posted([LOG_STEP, TRANSFORM_STEP], action="edit", name="Sync", description="", version=opened_at)
    response = client.post(task_url(world, task), data)
    assert response.status_code == 409 and "What you typed is kept below" in text_of(response)
    assert box_types(response) == ["log", "transform"] and "orders.body[].id" in text_of(response)
    assert state() == before


def test_the_task_page_lists_the_steps_in_words(world, people, stock, as_user):
    task = services.create_task(actor=world.tenant_admin, project=world.website, name="Words", steps=RICH_STEPS)
    page = text_of(as_user(people["guest"]).get(task_url(world, task)))
    assert "HTTP request</strong> · Fetch orders" in page
    assert "POST https://api.example.com/orders · credential Shared API → orders" in page
    assert "Countries[{{ country }}] → land" in page and "warning: Fetched {{ ids }}" in page
    assert "<summary>As JSON</summary>" in page and "step-0-type" not in page  # a guest edits nothing


@pytest.mark.parametrize("char", ["\x00", "\ud800"])
def test_nul_or_a_surrogate_in_a_step_input_is_refused_and_changes_nothing(world, people, stock, as_user, char):
    client = as_user(people["integrator"])
    before = state()
    data = posted([{**LOG_STEP, "message": f"hello{char}"}], action="create", name="Nul")
    response = post_form(client, tasks_url(world), {key: str(value) for key, value in data.items()}, char)
    assert response.status_code == 400 and "not allowed in text" in text_of(response)
    assert state() == before
