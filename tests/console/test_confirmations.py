"""Forgiving writes (issue #11 §2): every destructive console action first answers one shared confirmation page
(templates/_confirm.html) naming the object and what goes with it, and writes nothing; the confirmed POST does it;
a refused request (no capability, not visible) is refused before anything is asked. Where a restore exists, the done
message carries an "Undo" button that takes the write back (and refuses when the state moved on).

Personas: alice administers Acme; admin-m / integrator-m / guest-m hold Admin / Integrator / Guest on Marketing;
newcomer is in Acme without a grant; bob is in Acme; charlie is in no tenant.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from html import unescape
from typing import Any

import pytest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from access.models import AccessToken, AuditEvent, Invitation, OrgUserGrant, ProjectUserGrant, Role, TenantMembership
from access.services import issue_token
from access.services.custom_roles import create_role
from access.services.grants import grant_role
from access.services.invitations import invite
from access.services.teams import add_team_member, create_team
from config.actors import SYSTEM
from config.console import goes_with
from identity.models import Domain
from identity.services import claim_domain
from orgs.models import Organization, Project
from orgs.services import create_project
from resources import services
from resources.models import (
    Component,
    ComponentMember,
    Credential,
    EnvVar,
    Hidden,
    LookupTable,
    OrgSetting,
    Run,
    Task,
)
from runtimes import services as runtime_services
from runtimes.models import Runtime
from tests.factories import World
from twofactor import services as twofactor_services


@dataclass
class Case:
    url: str
    data: dict[str, Any]
    done: Callable[[], bool]  # True once the write happened
    asks: str  # the words of the confirmation page's question
    goes_with: str = ""  # a line of "Goes with it", when the action takes something along


def _url(org: Organization, suffix: str = "") -> str:
    return f"/o/{org.pk}/{suffix}"


def _gone(model: Any, pk: Any) -> Callable[[], bool]:
    return lambda: not model.objects.filter(pk=pk).exists()


def task_case(w: World, p: dict[str, Any]) -> Case:
    task = services.create_task(actor=w.tenant_admin, project=w.website, name="Sync", steps=[])
    Run.objects.create(task=task, steps=[], runtime=None, runtime_name="")
    return Case(
        _url(w.marketing, f"tasks/{task.pk}/"), {"action": "delete", "version": task.version}, _gone(Task, task.pk),
        "Delete the task Sync?", "1 run",
    )  # fmt: skip


def credential_case(w: World, p: dict[str, Any]) -> Case:
    cred = services.create_credential(
        actor=w.tenant_admin,
        org=w.marketing,
        name="Mailer",
        kind="api_key",
        fields={"header": "X"},
        secret={"key": "k"},
    )
    return Case(
        _url(w.marketing, f"credentials/{cred.pk}/"), {"action": "delete", "version": cred.version},
        _gone(Credential, cred.pk), "Delete the credential Mailer?",
    )  # fmt: skip


def lookup_case(w: World, p: dict[str, Any]) -> Case:
    table = services.create_lookup_table(
        actor=w.tenant_admin, org=w.marketing, name="Countries",
        rows=[{"key": "FR", "value": "France"}, {"key": "DE", "value": "Germany"}],
    )  # fmt: skip
    return Case(
        _url(w.marketing, f"lookup-tables/{table.pk}/"), {"action": "delete", "version": table.version},
        _gone(LookupTable, table.pk), "Delete the lookup table Countries?", "2 lookup rows",
    )  # fmt: skip


def env_var_case(w: World, p: dict[str, Any]) -> Case:
    var = services.create_env_var(actor=w.tenant_admin, org=w.marketing, key="REGION", value="eu")
    return Case(
        _url(w.marketing, f"env-vars/{var.pk}/"), {"action": "delete", "version": var.version}, _gone(EnvVar, var.pk),
        "REGION?",
    )  # fmt: skip


def component_case(w: World, p: dict[str, Any]) -> Case:
    component = services.create_component(actor=w.tenant_admin, org=w.marketing, name="Billing")
    return Case(
        _url(w.marketing, f"components/{component.pk}/"), {"action": "delete", "version": component.version},
        _gone(Component, component.pk), "Delete the component Billing?",
    )  # fmt: skip


def component_member_case(w: World, p: dict[str, Any]) -> Case:
    component = services.create_component(actor=w.tenant_admin, org=w.marketing, name="Billing")
    services.add_component_member(actor=w.tenant_admin, component=component, user=p["integrator"])
    member = ComponentMember.objects.get(component=component)
    return Case(
        _url(w.marketing, f"components/{component.pk}/"), {"action": "remove_member", "member": member.pk},
        _gone(ComponentMember, member.pk), "Remove integrator-m from the development team of Billing?",
    )  # fmt: skip


def unshare_case(w: World, p: dict[str, Any]) -> Case:
    task = services.create_task(actor=w.tenant_admin, project=w.website, name="Sync", steps=[])
    services.share_task(actor=w.tenant_admin, task=task, permission="view", user=w.member)
    share = services.shares_of(task)[0]
    return Case(
        _url(w.marketing, f"tasks/{task.pk}/"), {"action": "unshare", "share": share["id"]},
        lambda: not services.shares_of(task), f"Stop sharing Sync with {w.member.username}?",
    )  # fmt: skip


def run_stop_case(w: World, p: dict[str, Any]) -> Case:
    task = services.create_task(actor=w.tenant_admin, project=w.website, name="Sync", steps=[])
    run = Run.objects.create(task=task, steps=[], runtime=None, runtime_name="")
    return Case(
        _url(w.marketing, f"runs/{run.pk}/"), {"action": "stop"},
        lambda: Run.objects.get(pk=run.pk).status == Run.Status.STOPPED, "Stop this run of Sync?",
    )  # fmt: skip


def member_case(w: World, p: dict[str, Any]) -> Case:
    grant = grant_role(actor=w.tenant_admin, target=w.emea, role="guest", user=p["newcomer"])
    return Case(
        _url(w.emea, f"members/{grant.pk}/remove"), {"version": grant.version}, _gone(OrgUserGrant, grant.pk),
        "Remove newcomer from EMEA?", "the role Guest on EMEA and everything below it",
    )  # fmt: skip


def project_member_case(w: World, p: dict[str, Any]) -> Case:
    grant = grant_role(actor=w.tenant_admin, target=w.website, role="guest", user=p["newcomer"])
    return Case(
        _url(w.marketing, f"p/{w.website.pk}/members/"),
        {"action": "remove", "grant": grant.pk, "version": grant.version},
        _gone(ProjectUserGrant, grant.pk), "Remove newcomer from the project Website?",
    )  # fmt: skip


def team_case(w: World, p: dict[str, Any]) -> Case:
    team = create_team(actor=w.tenant_admin, org=w.marketing, name="Ops")
    team = add_team_member(actor=w.tenant_admin, team=team, user=w.member)
    grant_role(actor=w.tenant_admin, target=w.marketing, role="guest", team=team)
    return Case(
        _url(w.marketing, f"teams/{team.pk}/"), {"action": "delete", "version": team.version},
        _gone(type(team), team.pk), "Delete the team Ops?", "1 member loses the roles the team holds",
    )  # fmt: skip


def team_member_case(w: World, p: dict[str, Any]) -> Case:
    team = add_team_member(
        actor=w.tenant_admin, team=create_team(actor=w.tenant_admin, org=w.marketing, name="Ops"), user=w.member
    )
    return Case(
        _url(w.marketing, f"teams/{team.pk}/"), {"action": "remove", "user": w.member.pk},
        lambda: not team.group.user_set.filter(pk=w.member.pk).exists(),
        f"Remove {w.member.username} from the team Ops?",
    )  # fmt: skip


def token_case(w: World, p: dict[str, Any]) -> Case:
    token, _ = issue_token(user=w.tenant_admin, name="deploy")
    return Case(
        f"/tokens/{token.pk}/revoke", {}, lambda: AccessToken.objects.get(pk=token.pk).revoked_at is not None,
        "Revoke the token deploy?",
    )  # fmt: skip


def role_case(w: World, p: dict[str, Any]) -> Case:
    role = create_role(actor=w.tenant_admin, org=w.marketing, name="Auditor", capabilities=["org.view"])
    return Case(
        _url(w.marketing, "roles/"), {"action": "delete", "role": role.pk, "version": role.version},
        _gone(Role, role.pk), "Delete the role Auditor?",
    )  # fmt: skip


def invitation_case(w: World, p: dict[str, Any]) -> Case:
    invitation, _ = invite(actor=w.tenant_admin, org=w.marketing, email="new@example.com", role="guest")
    return Case(
        _url(w.marketing, "invitations/"), {"action": "revoke", "invitation": invitation.pk},
        lambda: Invitation.objects.get(pk=invitation.pk).status != "pending",
        "Revoke the invitation to new@example.com?",
    )  # fmt: skip


def people_case(w: World, p: dict[str, Any]) -> Case:
    membership = TenantMembership.objects.get(tenant=w.acme, user=p["newcomer"])
    return Case(
        _url(w.marketing, "people/"), {"action": "remove", "user": p["newcomer"].pk, "version": membership.version},
        _gone(TenantMembership, membership.pk), "Remove newcomer from Acme?",
    )  # fmt: skip


def org_case(w: World, p: dict[str, Any]) -> Case:
    return Case(
        _url(w.emea, "delete/"), {"action": "delete", "version": w.emea.version},
        lambda: Organization.objects.get(pk=w.emea.pk).is_deleted, "Delete EMEA?", "1 organization below it",
    )  # fmt: skip


def project_case(w: World, p: dict[str, Any]) -> Case:
    project = create_project(actor=w.tenant_admin, org=w.marketing, name="Blog")
    return Case(
        _url(w.marketing, f"p/{project.pk}/delete/"), {"action": "delete", "version": project.version},
        _gone(Project, project.pk), "Delete project Blog?",
    )  # fmt: skip


def _runtime(w: World) -> Runtime:
    return runtime_services.create_local_runtime(actor=w.tenant_admin, org=w.marketing, name="edge").runtime


def runtime_case(w: World, p: dict[str, Any]) -> Case:
    runtime = _runtime(w)
    return Case(
        reverse("runtime", args=[w.marketing.pk, runtime.pk]), {"action": "delete", "version": runtime.version},
        _gone(Runtime, runtime.pk), "Delete the runtime edge?",
    )  # fmt: skip


def runtime_revoke_case(w: World, p: dict[str, Any]) -> Case:
    runtime = _runtime(w)
    return Case(
        reverse("runtime", args=[w.marketing.pk, runtime.pk]), {"action": "revoke"},
        lambda: AuditEvent.objects.filter(action="runtime.revoke").exists(), "Revoke every agent of edge?",
        "0 agent token(s)",
    )  # fmt: skip


def device_case(w: World, p: dict[str, Any]) -> Case:
    device = twofactor_services.enroll(actor=w.tenant_admin, name="Pixel").device
    return Case(
        "/account/two-factor/", {"action": "remove", "device": device.public_id}, _gone(TOTPDevice, device.pk),
        "Remove the authenticator app Pixel?",
    )  # fmt: skip


def domain_case(w: World, p: dict[str, Any]) -> Case:
    domain = claim_domain(actor=w.tenant_admin, tenant=w.acme, domain="acme.test")
    return Case(
        _url(w.root, "sso/"), {"action": "delete-domain", "domain": domain.pk}, _gone(Domain, domain.pk),
        "Remove the domain acme.test?",
    )  # fmt: skip


def setting_reset_case(w: World, p: dict[str, Any]) -> Case:
    setting = services.set_setting(
        actor=w.tenant_admin, org=w.marketing, key="max_lookup_table_rows", value=500, locked=True
    )
    return Case(
        _url(w.marketing, "settings/"), {"action": "reset", "key": "max_lookup_table_rows", "version": setting.version},
        _gone(OrgSetting, setting.pk), "Reset “Lookup table size limit (rows)” in Marketing?",
        "the value set here: 500, and its lock on the organizations below",
    )  # fmt: skip


CASES = {
    f.__name__.removesuffix("_case"): f
    for f in (
        task_case, credential_case, lookup_case, env_var_case, component_case, component_member_case, unshare_case,
        run_stop_case, member_case, project_member_case, team_case, team_member_case, token_case, role_case,
        invitation_case, people_case, org_case, project_case, runtime_case, runtime_revoke_case, device_case,
        domain_case, setting_reset_case,
    )
}  # fmt: skip


def hidden_fields(html: str) -> list[tuple[str, str]]:
    form = html.split('id="confirm-title"')[1].split("</form>")[0]
    return [
        (unescape(n), unescape(v)) for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    ]


def undo_form(html: str) -> tuple[str, dict[str, str]] | None:
    """The "Undo" button beside the done message: where it posts and what."""
    found = re.search(r'<li class="message undo"><form method="post" action="([^"]+)".*?</form>', html, re.S)
    if found is None:
        return None
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', found.group(0)))
    fields.pop("csrfmiddlewaretoken", None)
    return unescape(found.group(1)), {k: unescape(v) for k, v in fields.items()}


def _stringified(data: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in data.items()}


# -- ask first, then do --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_destructive_action_asks_first_and_changes_nothing(world, people, as_user, name):
    case = CASES[name](world, people)
    client = as_user(world.tenant_admin)
    events = AuditEvent.objects.count()
    response = client.post(case.url, case.data)
    html = response.content.decode()
    assert response.status_code == 200, html[-2000:]
    assert case.asks in unescape(html)
    if case.goes_with:
        assert "Goes with it" in html and case.goes_with in unescape(html)
    assert not case.done() and AuditEvent.objects.count() == events
    # The page repeats what was posted, hidden, with confirmed=1, and posts back to the same URL (no action=).
    repeated = hidden_fields(html)
    assert ("confirmed", "1") in repeated
    assert set(_stringified(case.data).items()) <= set(repeated)
    assert re.search(r'<form method="post">', html.split('id="confirm-title"')[1])
    assert 'class="button secondary" href="' in html  # Cancel, a link: nothing posted


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_confirmed_post_does_it(world, people, as_user, name):
    case = CASES[name](world, people)
    client = as_user(world.tenant_admin)
    asked = client.post(case.url, case.data).content.decode()
    response = client.post(case.url, dict(hidden_fields(asked)))
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert case.done()


@pytest.mark.parametrize("name", sorted(CASES))
def test_someone_who_cannot_see_it_gets_404_confirmed_or_not(world, people, as_user, name):
    case = CASES[name](world, people)
    client = as_user(world.other_admin)
    for data in (case.data, {**case.data, "confirmed": "1"}):
        assert client.post(case.url, data).status_code == 404
    assert not case.done()


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_guest_is_refused_not_asked(world, people, as_user, name):
    """A Guest on Marketing sees members, teams, tasks, runs, components and runtimes but may change none: the
    refusal comes before the question, so nobody is asked to confirm what they may not do."""
    case = CASES[name](world, people)
    client = as_user(people["guest"])
    events = AuditEvent.objects.count()
    for data in (case.data, {**case.data, "confirmed": "1"}):
        response = client.post(case.url, data)
        assert response.status_code in (403, 404) and 'name="confirmed"' not in response.content.decode()
    assert not case.done() and AuditEvent.objects.count() == events


def test_a_guest_who_sees_the_member_list_gets_the_403_page(world, people, as_user):
    case = member_case(world, people)
    assert as_user(people["guest"]).post(case.url, case.data).status_code == 403


def test_a_malformed_request_is_refused_not_asked(world, people, as_user):
    case = credential_case(world, people)
    client = as_user(world.tenant_admin)
    response = client.post(case.url, {"action": "delete", "version": "not-a-number"})
    assert response.status_code == 400 and 'name="confirmed"' not in response.content.decode()
    assert not case.done()


def test_a_stale_confirmation_deletes_nothing(world, people, as_user):
    case = credential_case(world, people)
    client = as_user(world.tenant_admin)
    asked = client.post(case.url, case.data).content.decode()
    cred = Credential.objects.get(name="Mailer")
    services.update_credential(actor=world.tenant_admin, credential=cred, fields={"header": "Y"})
    response = client.post(case.url, dict(hidden_fields(asked)))
    assert response.status_code == 409 and not case.done()


def test_the_confirmation_page_keeps_the_org_frame_and_escapes_what_it_repeats(world, people, as_user):
    var = services.create_env_var(actor=world.tenant_admin, org=world.marketing, key="REGION", value="eu")
    client = as_user(world.tenant_admin)
    html = client.post(
        _url(world.marketing, f"env-vars/{var.pk}/"), {"action": "delete", "version": var.version, "x": '"><b>'}
    ).content.decode()
    assert "Marketing" in html and 'aria-label="Breadcrumb"' in html.replace("aria-label='Breadcrumb'", "")
    assert '"><b>' not in html and "&quot;&gt;&lt;b&gt;" in html


def test_the_org_delete_page_is_the_shared_confirmation(world, as_user):
    client = as_user(world.tenant_admin)
    html = client.get(_url(world.marketing, "delete/")).content.decode()
    assert "Delete Marketing?" in html and "2 organizations below it" in html and "restore" in html
    assert ("confirmed", "1") in hidden_fields(html)
    assert not Organization.objects.get(pk=world.marketing.pk).is_deleted


# -- undo ----------------------------------------------------------------------------------------------------------


def _confirm_and_follow(client: Any, case: Case) -> str:
    asked = client.post(case.url, case.data).content.decode()
    return client.post(case.url, dict(hidden_fields(asked)), follow=True).content.decode()


def test_undoing_an_org_delete_restores_the_subtree(world, people, as_user):
    client = as_user(world.tenant_admin)
    page = _confirm_and_follow(client, org_case(world, people))
    assert Organization.objects.get(pk=world.campaigns.pk).is_deleted
    offer = undo_form(page)
    assert offer is not None and offer[0] == reverse("org-restore", args=[world.emea.pk])
    assert client.post(*offer).status_code == 302
    assert not Organization.objects.get(pk=world.emea.pk).is_deleted
    assert not Organization.objects.get(pk=world.campaigns.pk).is_deleted


def test_the_undo_button_is_offered_once(world, people, as_user):
    client = as_user(world.tenant_admin)
    assert undo_form(_confirm_and_follow(client, org_case(world, people))) is not None
    assert undo_form(client.get(_url(world.root)).content.decode()) is None


def test_a_write_without_undo_offers_none(world, people, as_user):
    client = as_user(world.tenant_admin)
    page = _confirm_and_follow(client, credential_case(world, people))
    assert "was deleted" in page and undo_form(page) is None


def test_undoing_a_member_removal_grants_the_same_role_and_expiry_again(world, people, as_user):
    expires = "2099-01-02T03:04:00+00:00"
    grant = grant_role(
        actor=world.tenant_admin, target=world.emea, role="integrator", user=people["newcomer"],
        expires_at=OrgUserGrant._meta.get_field("expires_at").to_python(expires),
    )  # fmt: skip
    client = as_user(world.tenant_admin)
    case = Case(
        _url(world.emea, f"members/{grant.pk}/remove"), {"version": grant.version}, _gone(OrgUserGrant, grant.pk), ""
    )
    page = _confirm_and_follow(client, case)
    assert case.done()
    offer = undo_form(page)
    assert offer is not None and offer[0] == _url(world.emea, "members/")
    assert client.post(*offer).status_code == 302
    again = OrgUserGrant.objects.get(user=people["newcomer"], content_object=world.emea)
    assert again.role.key == "integrator" and again.expires_at == grant.expires_at


def test_undoing_a_member_removal_is_refused_when_they_were_added_back_meanwhile(world, people, as_user):
    client = as_user(world.tenant_admin)
    page = _confirm_and_follow(client, member_case(world, people))
    offer = undo_form(page)
    assert offer is not None
    grant_role(actor=world.tenant_admin, target=world.emea, role="admin", user=people["newcomer"])
    events = AuditEvent.objects.count()
    assert client.post(*offer).status_code == 409
    assert OrgUserGrant.objects.get(user=people["newcomer"], content_object=world.emea).role.key == "admin"
    assert AuditEvent.objects.count() == events


def test_undoing_a_member_removal_needs_the_capability(world, people, as_user):
    client = as_user(world.tenant_admin)
    offer = undo_form(_confirm_and_follow(client, member_case(world, people)))
    assert offer is not None
    assert as_user(people["guest"]).post(*offer).status_code == 403
    assert as_user(world.other_admin).post(*offer).status_code == 404
    assert not OrgUserGrant.objects.filter(user=people["newcomer"], content_object=world.emea).exists()


def test_undoing_a_project_member_removal_grants_it_again(world, people, as_user):
    client = as_user(world.tenant_admin)
    offer = undo_form(_confirm_and_follow(client, project_member_case(world, people)))
    assert offer is not None and client.post(*offer).status_code == 302
    assert ProjectUserGrant.objects.get(user=people["newcomer"], content_object=world.website).role.key == "guest"


def test_undoing_a_team_member_removal_adds_them_back(world, people, as_user):
    client = as_user(world.tenant_admin)
    case = team_member_case(world, people)
    offer = undo_form(_confirm_and_follow(client, case))
    assert case.done() and offer is not None
    assert client.post(*offer).status_code == 302
    assert not case.done()


def test_undoing_a_development_team_removal_adds_them_back(world, people, as_user):
    client = as_user(world.tenant_admin)
    case = component_member_case(world, people)
    offer = undo_form(_confirm_and_follow(client, case))
    assert case.done() and offer is not None
    assert client.post(*offer).status_code == 302
    assert ComponentMember.objects.filter(user=people["integrator"]).exists()


def test_undoing_hiding_a_runtime_makes_it_usable_again(world, people, as_user):
    Runtime.objects.get_or_create(
        name="platform", org=None, defaults={"kind": Runtime.Kind.GLOBAL, "all_tenants": True}
    )
    client = as_user(world.tenant_admin)
    page = client.post(
        reverse("runtimes", args=[world.marketing.pk]), {"action": "hide", "name": "platform"}, follow=True
    )
    assert Hidden.objects.filter(org=world.marketing, name="platform").exists()
    offer = undo_form(page.content.decode())
    assert offer is not None and client.post(*offer).status_code == 302
    assert not Hidden.objects.filter(org=world.marketing, name="platform").exists()


def test_the_api_deletes_without_asking(world, api_as):
    cred = services.create_credential(
        actor=SYSTEM, org=world.marketing, name="Mailer", kind="api_key", fields={"header": "X"}, secret={"key": "k"}
    )
    assert api_as(world.tenant_admin).delete(f"/api/v1/credentials/{cred.pk}").status_code == 204
    assert not Credential.objects.filter(pk=cred.pk).exists()


def test_cancel_goes_back_to_the_page_the_button_was_on_when_it_is_this_site(world, people, as_user):
    case = run_stop_case(world, people)
    client = as_user(world.tenant_admin)
    task_page = f"http://testserver{_url(world.marketing, 'tasks/')}"
    came = client.post(case.url, case.data, HTTP_REFERER=task_page).content.decode()
    assert f'class="button secondary" href="{task_page}"' in came
    foreign = client.post(case.url, case.data, HTTP_REFERER="https://evil.example/").content.decode()
    assert "evil.example" not in foreign and f'class="button secondary" href="{case.url}"' in foreign


# -- what goes with it ---------------------------------------------------------------------------------------------


def test_goes_with_counts_what_the_cascade_takes_in_one_query_per_table(world, django_assert_max_num_queries):
    table = services.create_lookup_table(
        actor=world.tenant_admin,
        org=world.marketing,
        name="Big",
        rows=[{"key": f"k{i}", "value": "v"} for i in range(300)],
    )
    with django_assert_max_num_queries(6):
        assert goes_with(table) == ["300 lookup rows"]
    assert goes_with(table, skip=[type(table.rows.first())]) == []
    assert goes_with(table, names={type(table.rows.first()): ("key", "keys")}) == ["300 keys"]


def test_goes_with_says_nothing_when_the_delete_would_be_refused(world, people):
    role = create_role(actor=world.tenant_admin, org=world.marketing, name="Auditor", capabilities=["org.view"])
    grant_role(actor=world.tenant_admin, target=world.marketing, role=role, user=people["newcomer"])
    assert goes_with(role) == []  # granted roles are protected: the service refuses with its own message
