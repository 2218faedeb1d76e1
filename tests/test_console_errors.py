"""The console's one error path (config/console.py): each domain error mapped once, the reproduced 500 of a project
delete with tasks, stale edit forms that keep what the user typed and name who changed the row, and the 403 page
framed by the org."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django import forms
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.test import RequestFactory

from access.models import OrgUserGrant, Role, Team
from access.services.custom_roles import create_role, update_role
from access.services.grants import change_grant
from access.services.teams import create_team, rename_team
from config.console import EditForm, Write, dispatch, error_page, fetch_org
from config.errors import Busy, Conflict, Forbidden, NotFound, Stale
from orgs import services as org_services
from orgs.models import Organization, Project
from resources import services
from resources.models import Credential, OrgSetting, Task


def url(org: Organization, suffix: str = "") -> str:
    return f"/o/{org.pk}/{suffix}"


def opened_version(html: str) -> int:
    """The version an edit form carries (its hidden field), as the browser would send it back."""
    match = re.search(r'name="version" value="(\d+)"', html)
    assert match, "the form carries no version"
    return int(match.group(1))


# -- the mapping, one error type at a time ---------------------------------------------------------------------------


class NameForm(EditForm):
    name = forms.CharField(max_length=20)


def post(user: Any, data: dict[str, Any]) -> Any:
    request = RequestFactory().post("/anywhere/", data)
    request.user = user
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def show(context: dict[str, Any]) -> HttpResponse:
    """The page shown again: what the mapping gives it (the bound form, the error) is all it prints."""
    form = context.get("form")
    typed = form["name"].value() if form is not None else ""
    errors = form.errors.as_text() if form is not None else ""
    return HttpResponse(f"typed={typed}|error={context.get('error', '')}|fields={errors}")


def failing(exc: Exception) -> dict[str, Write]:
    def run(data: dict[str, Any]) -> Any:
        raise exc

    return {"": Write(run=run, then=lambda result: "/done/", form=NameForm, form_key="form")}


@pytest.mark.parametrize(
    ("exc", "status", "says"),
    [
        (Conflict("Marketing already exists here."), 409, "error=Marketing already exists here."),
        (
            Stale(version=4, changed_by="maria", changed_at=None),
            409,
            "error=This was changed by maria after you loaded it (now version 4). Reload it and apply your change "
            "again. What you typed is kept below.",
        ),
        (ValidationError({"name": ["Too dull."]}), 400, "fields=* name\n  * Too dull."),
        (Busy("Someone else is writing this tree.", retry_after=2), 503, "error=Someone else is writing this tree."),
    ],
)
def test_a_refusal_with_a_form_shows_the_page_again_with_the_input_kept(world, exc, status, says):
    response = dispatch(post(world.tenant_admin, {"name": "Mine", "version": "3"}), failing(exc), show)
    body = response.content.decode()
    assert response.status_code == status and says in body and "typed=Mine" in body
    if isinstance(exc, Busy):
        assert response["Retry-After"] == "2"
    assert "ETag" not in response  # the console's answers carry no API header


@pytest.mark.parametrize("exc", [NotFound(), Forbidden("Only tenant administrators move organizations.")])
def test_not_found_and_forbidden_answer_their_own_pages_not_the_form(world, exc):
    response = dispatch(post(world.tenant_admin, {"name": "Mine"}), failing(exc), show)
    body = response.content.decode()
    assert response.status_code == exc.status and "typed=" not in body
    if isinstance(exc, Forbidden):
        assert "Only tenant administrators move organizations." in body
    else:
        assert "This page does not exist, or you do not have access to it." in body


def test_bad_input_never_reaches_the_service(world):
    called = []
    writes = {"": Write(run=called.append, then=lambda r: "/done/", form=NameForm, form_key="form")}
    response = dispatch(post(world.tenant_admin, {"name": "x" * 21, "version": "two"}), writes, show)
    assert response.status_code == 400 and called == []
    assert "at most 20 characters" in response.content.decode()


def test_a_one_button_action_shows_its_refusal_on_the_page(world):
    writes = {"delete": Write(run=lambda d: (_ for _ in ()).throw(Conflict("It holds 2 tasks.")), then=lambda r: "/")}
    response = dispatch(post(world.tenant_admin, {"action": "delete", "confirmed": "1", "version": "1"}), writes, show)
    assert response.status_code == 409 and "error=It holds 2 tasks." in response.content.decode()
    writes["run"] = Write(run=lambda d: None, then=lambda r: "/")  # with two writes, the action must name one
    unknown = dispatch(post(world.tenant_admin, {"action": "explode"}), writes, show)
    assert unknown.status_code == 400 and "Unknown action." in unknown.content.decode()


def test_a_success_passes_the_version_to_the_service_and_redirects(world):
    seen = []
    writes = {"": Write(run=seen.append, then=lambda r: "/done/", done="Saved.", form=NameForm, form_key="form")}
    response = dispatch(post(world.tenant_admin, {"name": "Mine", "version": "7"}), writes, show)
    assert response.status_code == 302 and response["Location"] == "/done/"
    assert seen == [{"name": "Mine", "version": 7}]


def test_error_page_maps_each_error_outside_a_form(world, people):
    request = RequestFactory().get("/anywhere/")
    request.user = world.tenant_admin
    assert error_page(request, NotFound()).status_code == 404
    assert error_page(request, ValidationError("Bad.")).status_code == 400
    conflict = error_page(request, Conflict("Taken."))
    assert conflict.status_code == 409 and "Taken." in conflict.content.decode()
    stale = error_page(request, Stale(version=2, changed_by="sam"))
    assert stale.status_code == 409 and "changed by sam" in stale.content.decode()
    busy = error_page(request, Busy("Busy now.", retry_after=3))
    assert busy.status_code == 503 and busy["Retry-After"] == "3" and "Busy now." in busy.content.decode()
    # Forbidden happens on something visible: its org frames the 403 page (breadcrumb, tabs, the reason).
    request.user = people["guest"]
    with pytest.raises(Forbidden) as refused:
        fetch_org(request, world.marketing.pk, "member.manage")
    page = error_page(request, refused.value)
    html = page.content.decode()
    assert page.status_code == 403 and 'aria-label="Organization sections"' in html
    assert "You do not have permission to do this here." in html and "Marketing" in html
    with pytest.raises(NotFound):  # not visible: no org to frame anything
        fetch_org(request, world.globex_root.pk)


# -- the 403 page in org context, through the console ---------------------------------------------------------------


def test_the_403_page_keeps_the_breadcrumb_and_the_tabs_and_says_why(world, people, as_user):
    client = as_user(people["guest"])
    response = client.get(url(world.marketing, "invitations/"))
    html = response.content.decode()
    assert response.status_code == 403
    assert 'class="crumb' in html and 'aria-label="Organization sections"' in html  # breadcrumb and tabs
    assert "You do not have permission to do this here." in html and "Nothing was changed." in html
    assert response.context["org"] == world.marketing
    # A denied write answers the same page and writes nothing (not even the remembered org).
    before = (people["guest"].last_org_id, Organization.objects.filter(name="Nope").exists())
    response = client.post(url(world.marketing, "new/"), {"name": "Nope"})
    assert response.status_code == 403 and 'aria-label="Organization sections"' in response.content.decode()
    people["guest"].refresh_from_db()
    assert (people["guest"].last_org_id, Organization.objects.filter(name="Nope").exists()) == before


# -- the reproduced 500: deleting a project that still has tasks ------------------------------------------------------


def test_deleting_a_project_with_tasks_answers_409_with_the_message(world, as_user):
    services.create_task(actor=world.tenant_admin, project=world.website, name="Sync", steps=[])
    client = as_user(world.tenant_admin)
    page = client.get(url(world.marketing, f"p/{world.website.pk}/delete/"))
    response = client.post(
        url(world.marketing, f"p/{world.website.pk}/delete/"),
        {"action": "delete", "confirmed": "1", "version": opened_version(page.content.decode())},
    )
    html = response.content.decode()
    assert response.status_code == 409
    assert "Website holds 1 integration task(s): delete them first." in html and "Nothing was changed." in html
    assert Project.objects.filter(pk=world.website.pk).exists() and Task.objects.filter(name="Sync").exists()


# -- stale edit forms: the input kept, the changer named, nothing overwritten -----------------------------------------


def stale_save(client: Any, page_url: str, data: dict[str, Any], change: Any) -> str:
    """Open the form, let someone else change the row, then save the form as opened: the refused page's HTML."""
    version = opened_version(client.get(page_url).content.decode())
    change()
    response = client.post(page_url, {**data, "version": version})
    assert response.status_code == 409
    html = response.content.decode()
    assert "This was changed by alice at " in html and "after you loaded it" in html
    assert "What you typed is kept below." in html
    return html


def test_a_stale_org_edit_keeps_the_input_and_names_the_changer(world, people, as_user):
    html = stale_save(
        as_user(people["admin"]),
        url(world.marketing, "edit/"),
        {"name": "Marketing & Brand", "description": "Typed by the admin", "access_inheritance": "all"},
        lambda: org_services.update_org(actor=world.tenant_admin, org=world.marketing, description="Set by alice"),
    )
    assert 'value="Marketing &amp; Brand"' in html and "Typed by the admin" in html
    world.marketing.refresh_from_db()
    assert (world.marketing.name, world.marketing.description) == ("Marketing", "Set by alice")


def test_a_stale_project_edit_keeps_the_input_and_names_the_changer(world, people, as_user):
    html = stale_save(
        as_user(people["admin"]),
        url(world.marketing, f"p/{world.website.pk}/edit/"),
        {"name": "Web site", "description": "Typed"},
        lambda: org_services.update_project(actor=world.tenant_admin, project=world.website, description="alice's"),
    )
    assert 'value="Web site"' in html
    world.website.refresh_from_db()
    assert (world.website.name, world.website.description) == ("Website", "alice's")


def test_a_stale_credential_edit_keeps_the_input_and_names_the_changer(world, people, as_user):
    credential = services.create_credential(
        actor=world.tenant_admin, org=world.marketing, name="Mailer", kind="http_basic",
        fields={"username": "mailer"}, secret={"password": "s3cret-value"},
    )  # fmt: skip
    html = stale_save(
        as_user(people["integrator"]),
        url(world.marketing, f"credentials/{credential.pk}/"),
        {"action": "edit", "name": "Mailer", "description": "", "field_values": "username=typed", "set__password": ""},
        lambda: services.update_credential(
            actor=world.tenant_admin, credential=credential, fields={"username": "alice-set"}
        ),
    )
    assert "username=typed" in html and "s3cret-value" not in html
    assert Credential.objects.get(pk=credential.pk).fields == {"username": "alice-set"}


def test_a_stale_task_edit_keeps_the_input_and_names_the_changer(world, people, as_user):
    task = services.create_task(actor=world.tenant_admin, project=world.website, name="Sync", steps=[])
    steps = [{"type": "log", "message": "alice's step"}]
    html = stale_save(
        as_user(people["integrator"]),
        url(world.marketing, f"tasks/{task.pk}/"),
        {"action": "edit", "name": "Sync 2", "description": "", "steps": '[{"type": "log", "message": "mine"}]'},
        lambda: services.update_task(actor=world.tenant_admin, task=task, steps=steps),
    )
    assert 'value="Sync 2"' in html and "mine" in html
    task.refresh_from_db()
    assert (task.name, task.steps) == ("Sync", steps)


def test_a_stale_delete_button_deletes_nothing(world, people, as_user):
    task = services.create_task(actor=world.tenant_admin, project=world.website, name="Sync", steps=[])
    client = as_user(people["integrator"])
    version = opened_version(client.get(url(world.marketing, f"tasks/{task.pk}/")).content.decode())
    services.update_task(actor=world.tenant_admin, task=task, name="Sync renamed")
    response = client.post(
        url(world.marketing, f"tasks/{task.pk}/"), {"action": "delete", "confirmed": "1", "version": version}
    )
    assert response.status_code == 409 and "changed by alice" in response.content.decode()
    assert Task.objects.filter(pk=task.pk, name="Sync renamed").exists()


# -- the other edit forms carry their version too ---------------------------------------------------------------------


def test_team_and_role_edit_pages_save_and_refuse_a_stale_form(world, people, as_user):
    team = create_team(actor=world.tenant_admin, org=world.marketing, name="Web")
    role = create_role(actor=world.tenant_admin, org=world.marketing, name="Reader", capabilities=["org.view"])
    client = as_user(people["admin"])
    team_url, role_url = url(world.marketing, f"teams/{team.pk}/edit/"), url(world.marketing, f"roles/{role.pk}/edit/")
    response = client.post(team_url, {"name": "Web team", "description": "", "version": team.version})
    assert response.status_code == 302 and Team.objects.get(pk=team.pk).name == "Web team"
    stale_save(
        client, team_url, {"name": "Mine", "description": ""},
        lambda: rename_team(actor=world.tenant_admin, team=Team.objects.get(pk=team.pk), name="Alices team"),
    )  # fmt: skip
    assert Team.objects.get(pk=team.pk).name == "Alices team"
    html = stale_save(
        client, role_url, {"name": "Reader", "description": "", "capabilities": ["org.view", "audit.view"]},
        lambda: update_role(actor=world.tenant_admin, role=role, description="alice's words"),
    )  # fmt: skip
    assert Role.objects.get(pk=role.pk).custom_capabilities == ["org.view"]
    assert re.search(r'value="audit\.view" id="[^"]+" checked', html)  # the box the user ticked is still ticked
    # Someone who only sees the roles gets the 403 page; an unknown role is 404 for everyone.
    assert as_user(people["guest"]).get(role_url).status_code == 403
    assert client.get(url(world.marketing, f"roles/{world.marketing.pk}/edit/")).status_code == 404


def test_a_stale_role_change_of_a_member_changes_nothing(world, people, as_user):
    grant = OrgUserGrant.objects.get(user=people["guest"], content_object=world.marketing)
    client = as_user(people["admin"])
    version = grant.version
    change_grant(actor=world.tenant_admin, grant=grant, role="integrator")
    response = client.post(url(world.marketing, f"members/{grant.pk}/role"), {"role": "admin", "version": version})
    assert response.status_code == 409 and "changed by alice" in response.content.decode()
    assert OrgUserGrant.objects.get(pk=grant.pk).role.key == "integrator"


def test_a_setting_set_meanwhile_refuses_the_stale_form(world, people, as_user):
    client = as_user(people["admin"])
    page = client.get(url(world.marketing, "settings/")).content.decode()
    opened_at = re.search(r'name="versions"(?: value="([^"]*)")?', page)  # no value: nothing set here yet
    assert opened_at is not None and "run_log_retention_days" not in (opened_at.group(1) or "")
    services.set_setting(actor=world.tenant_admin, org=world.marketing, key="run_log_retention_days", value=7)
    response = client.post(
        url(world.marketing, "settings/"),
        {"action": "set", "key": "run_log_retention_days", "value": "30", "versions": opened_at.group(1) or ""},
    )
    assert response.status_code == 409 and "changed by alice" in response.content.decode()
    assert 'value="30"' in response.content.decode()  # what was typed
    assert OrgSetting.objects.get(org=world.marketing, key="run_log_retention_days").value == 7
