"""What nothing ran before issue #10 (§7): task shares and runs in lists, project-team grants, a team renamed or
deleted, update_component, explain for the superuser, a deleted org and an anonymous visitor, and the policy's
remaining corners (SYSTEM, unknown models, malformed ids). Each test reads the state back as a new request would."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import FieldError, ValidationError

from access import policy, selectors
from access.models import AuditEvent, OrgTeamGrant, ProjectTeamGrant
from access.services.custom_roles import create_role
from access.services.grants import grant_role
from access.services.teams import add_team_member, create_team, delete_team, remove_team_member, rename_team
from config.actors import SYSTEM
from config.errors import Forbidden, NotFound
from orgs.models import Organization, Project
from orgs.services import delete_org
from resources.models import Component, Run, Task, TaskTeamShare
from resources.services.resources import (
    add_component_member,
    create_component,
    create_credential,
    create_env_var,
    update_component,
)
from resources.services.tasks import create_task, share_task
from tests.factories import UserFactory, add_to_tenant, make_project

# The oracle (tests/test_policy_oracle.py) found that on SQLite visible() over tasks or runs raised for a user with a
# shared task (the union in access/policy.py kept Task's default ordering): the tests below ran as strict xfails
# until the fix, and now guard it on both backends.


def fresh(user: Any) -> Any:
    """The user as the next request loads it (no cached Access)."""
    return type(user).objects.get(pk=user.pk)


def ids(queryset: Any) -> set[Any]:
    return set(queryset.values_list("pk", flat=True))


@pytest.fixture
def nightly(world: Any) -> Task:
    return create_task(actor=SYSTEM, project=world.website, name="Nightly")


@pytest.fixture
def colleague(world: Any) -> Any:
    """A member of Acme with an Integrator role on Logistics only: nothing on Marketing's project."""
    user = UserFactory(username="colleague")
    add_to_tenant(user, world.acme)
    grant_role(actor=SYSTEM, target=world.logistics, role="integrator", user=user)
    return user


# -- tasks shared with a user or a team, in lists ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "listed_for"),
    [("view", {"task.view"}), ("run", {"task.view", "task.run"}), ("edit", {"task.view", "task.run", "task.edit"})],
)
def test_a_task_shared_with_a_user_is_listed_for_what_its_level_gives(
    world: Any, nightly: Task, colleague: Any, level: str, listed_for: set[str]
) -> None:
    other = create_task(actor=SYSTEM, project=world.website, name="Other")
    share_task(actor=SYSTEM, task=nightly, permission=level, user=colleague)
    for capability in ("task.view", "task.run", "task.edit", "task.delete"):
        listed = ids(policy.visible(fresh(colleague), capability, Task.objects.all()))
        assert listed == ({nightly.pk} if capability in listed_for else set()), capability
        assert other.pk not in listed


def test_a_task_shared_with_a_team_is_listed_for_its_members_only(world: Any, nightly: Task, colleague: Any) -> None:
    team = create_team(actor=SYSTEM, org=world.root, name="Night shift")
    add_team_member(actor=SYSTEM, team=team, user=colleague)
    share_task(actor=SYSTEM, task=nightly, permission="run", team=team)
    assert ids(policy.visible(fresh(colleague), "task.run", Task.objects.all())) == {nightly.pk}
    assert policy.can(fresh(colleague), "task.run", nightly) and not policy.can(fresh(colleague), "task.edit", nightly)
    assert ids(policy.visible(fresh(world.member), "task.view", Task.objects.all())) == set()  # bob is not in it


def test_runs_of_a_shared_task_are_listed_with_it(world: Any, nightly: Task, colleague: Any) -> None:
    run = Run.objects.create(task=nightly)
    Run.objects.create(task=create_task(actor=SYSTEM, project=world.website, name="Unshared"))
    share_task(actor=SYSTEM, task=nightly, permission="view", user=colleague)
    assert ids(policy.visible(fresh(colleague), "task.view", Run.objects.all())) == {run.pk}


def test_a_share_opens_the_task_itself_on_every_database(world: Any, nightly: Task, colleague: Any) -> None:
    assert not policy.can(fresh(colleague), "task.view", nightly)
    share_task(actor=SYSTEM, task=nightly, permission="view", user=colleague)
    assert policy.can(fresh(colleague), "task.view", nightly)
    assert not policy.can(fresh(colleague), "task.run", nightly)
    explanation = policy.explain(fresh(colleague), "task.view", nightly)
    assert explanation.allowed and any("shared with you" in line for line in explanation.reasons)


def test_runs_are_listed_by_the_role_on_their_project(world: Any, nightly: Task, colleague: Any) -> None:
    run = Run.objects.create(task=nightly)
    logistics_run = Run.objects.create(
        task=create_task(actor=SYSTEM, project=make_project(world.logistics, "Fleet"), name="Daily")
    )
    integrator = UserFactory(username="integrator-m")
    add_to_tenant(integrator, world.acme)
    grant_role(actor=SYSTEM, target=world.marketing, role="integrator", user=integrator)
    assert ids(policy.visible(fresh(integrator), "task.view", Run.objects.all())) == {run.pk}
    assert ids(policy.visible(fresh(colleague), "task.view", Run.objects.all())) == {logistics_run.pk}
    assert ids(policy.visible(fresh(world.outsider), "task.view", Run.objects.all())) == set()
    assert ids(policy.visible(fresh(world.superuser), "task.view", Run.objects.all())) == {run.pk, logistics_run.pk}
    delete_org(actor=SYSTEM, org=world.marketing)  # a deleted org's runs leave every list but the superuser's
    assert ids(policy.visible(fresh(integrator), "task.view", Run.objects.all())) == set()


# -- project-team grants -------------------------------------------------------------------------------------------


def test_a_project_team_grant_gives_its_members_that_project_and_nothing_else(world: Any, colleague: Any) -> None:
    team = create_team(actor=SYSTEM, org=world.marketing, name="Web")
    add_team_member(actor=SYSTEM, team=team, user=colleague)
    sibling = make_project(world.marketing, "Brochures")
    grant_role(actor=SYSTEM, target=world.website, role="integrator", team=team)

    assert policy.can(fresh(colleague), "task.create", world.website)
    assert not policy.can(fresh(colleague), "task.view", sibling)
    assert policy.capabilities(fresh(colleague), world.marketing) == frozenset()
    assert ids(policy.visible(fresh(colleague), "project.view", Project.objects.all())) == {world.website.pk}
    explanation = policy.explain(fresh(colleague), "task.create", world.website)
    assert explanation.allowed and "team Web" in " ".join(explanation.reasons)

    remove_team_member(actor=SYSTEM, team=team, user=colleague)
    assert not policy.can(fresh(colleague), "task.view", world.website)
    assert ids(policy.visible(fresh(colleague), "project.view", Project.objects.all())) == set()


# -- a team renamed, a team deleted --------------------------------------------------------------------------------


def test_a_renamed_team_keeps_its_grants_and_explanations_name_it_anew(world: Any, colleague: Any) -> None:
    team = create_team(actor=SYSTEM, org=world.root, name="Analysts")
    add_team_member(actor=SYSTEM, team=team, user=colleague)
    grant_role(actor=SYSTEM, target=world.marketing, role="guest", team=team)
    rename_team(actor=SYSTEM, team=team, name="Insights")
    explanation = policy.explain(fresh(colleague), "org.view", world.emea)
    assert explanation.allowed
    assert any("team Insights" in line for line in explanation.reasons)
    assert not any("Analysts" in line for line in explanation.reasons)
    assert {g["team"] for g in explanation.grants} == {"Insights"}


def test_deleting_a_team_ends_every_grant_and_share_it_held(world: Any, nightly: Task, colleague: Any) -> None:
    team = create_team(actor=SYSTEM, org=world.root, name="Analysts")
    add_team_member(actor=SYSTEM, team=team, user=colleague)
    grant_role(actor=SYSTEM, target=world.marketing, role="guest", team=team)
    grant_role(actor=SYSTEM, target=world.website, role="integrator", team=team)
    share_task(actor=SYSTEM, task=nightly, permission="run", team=team)
    group_id = team.group_id
    assert policy.can(fresh(colleague), "task.run", nightly)

    delete_team(actor=SYSTEM, team=team)
    assert not OrgTeamGrant.objects.filter(group_id=group_id).exists()
    assert not ProjectTeamGrant.objects.filter(group_id=group_id).exists()
    assert not TaskTeamShare.objects.filter(group_id=group_id).exists()
    after = fresh(colleague)
    assert policy.capabilities(after, world.marketing) == frozenset()
    assert not policy.can(after, "task.view", nightly)
    assert ids(policy.visible(after, "org.view", Organization.objects.all())) == {world.logistics.pk}


# -- update_component ---------------------------------------------------------------------------------------------


@pytest.fixture
def widget(world: Any) -> Component:
    return create_component(actor=SYSTEM, org=world.marketing, name="widget", repository_url="https://git.example/w")


def _admin_of(world: Any, org: Organization, role: str, username: str) -> Any:
    user = UserFactory(username=username)
    add_to_tenant(user, world.acme)
    grant_role(actor=SYSTEM, target=org, role=role, user=user)
    return user


def test_an_admin_updates_a_component_and_the_change_is_audited(world: Any, widget: Component) -> None:
    admin = _admin_of(world, world.marketing, "admin", "admin-m")
    update_component(actor=admin, component=widget, description="Charts", repository_url="https://git.example/c")
    widget.refresh_from_db()
    assert (widget.description, widget.repository_url) == ("Charts", "https://git.example/c")
    event = AuditEvent.objects.filter(action="component.update", target_id=str(widget.pk)).get()
    assert event.actor_id == admin.pk and set(event.changes) == {"description", "repository_url"}


def test_a_component_update_without_the_right_or_with_bad_input_changes_nothing(world: Any, widget: Component) -> None:
    integrator = _admin_of(world, world.marketing, "integrator", "integrator-m")
    with pytest.raises(Forbidden):
        update_component(actor=integrator, component=widget, description="Mine")
    with pytest.raises(NotFound):
        update_component(actor=world.outsider, component=widget, description="Mine")
    with pytest.raises(ValidationError):
        update_component(actor=world.tenant_admin, component=widget, repository_url="ftp://nowhere")
    widget.refresh_from_db()
    assert (widget.description, widget.repository_url) == ("", "https://git.example/w")
    assert not AuditEvent.objects.filter(action="component.update").exists()


# -- explain for everyone ---------------------------------------------------------------------------------------


def test_explain_for_the_superuser_a_deleted_org_and_an_anonymous_visitor(world: Any) -> None:
    superuser = policy.explain(fresh(world.superuser), "org.manage", world.emea)
    assert superuser.allowed and superuser.reasons == ["Superuser: holds every capability everywhere."]
    anonymous = policy.explain(AnonymousUser(), "org.view", world.emea)
    assert not anonymous.allowed and anonymous.reasons == ["Not signed in."]
    delete_org(actor=SYSTEM, org=world.emea)
    world.emea.refresh_from_db()
    deleted = policy.explain(fresh(world.tenant_admin), "org.view", world.emea)
    assert not deleted.allowed and deleted.reasons == ["The organization is deleted."]
    assert not policy.explain(fresh(world.superuser), "org.view", world.emea).allowed


def test_explain_names_tenant_administration_and_the_tenant_rule(world: Any) -> None:
    admin = policy.explain(fresh(world.tenant_admin), "audit.view", world.campaigns)
    assert admin.allowed and admin.reasons[0] == "Tenant administrator: holds every capability in the tenant."
    assert policy.explain(fresh(world.tenant_admin), policy.TENANT_ADMIN, world.acme).reasons == ["Allowed."]
    refused = policy.explain(fresh(world.member), policy.TENANT_ADMIN, world.acme)
    assert not refused.allowed and refused.reasons == ["Tenant administrators only."]
    system = policy.explain(SYSTEM, "org.manage", world.emea)
    assert system.allowed and "system" in system.reasons[0]


def test_explain_a_declaration_seen_from_below_and_a_component_team(world: Any, widget: Component) -> None:
    below = _admin_of(world, world.emea, "integrator", "integrator-emea")
    credential = create_credential(
        actor=SYSTEM, org=world.marketing, name="smtp", kind="generic", fields={"host": "smtp.example"}
    )
    seen = policy.explain(fresh(below), "credential.view", credential)
    assert seen.allowed and any("below Marketing" in line for line in seen.reasons)
    add_component_member(actor=SYSTEM, component=widget, user=world.member)
    push = policy.explain(fresh(world.member), "component.push", widget)
    assert push.allowed and push.reasons == ["On the component's development team."]
    view = policy.explain(fresh(world.member), "component.view", widget)
    assert view.allowed and "You are on the component's development team." in view.reasons
    refused = policy.explain(fresh(below), "component.push", widget)
    assert not refused.allowed and "no role gives it" in refused.reasons[0]


def test_a_component_team_reads_the_component_variables_and_nothing_else(world: Any, widget: Component) -> None:
    variable = create_env_var(actor=SYSTEM, component=widget, key="CHART_THEME", value="dark")
    org_variable = create_env_var(actor=SYSTEM, org=world.marketing, key="REGION", value="eu")
    add_component_member(actor=SYSTEM, component=widget, user=world.member)
    member = fresh(world.member)
    assert policy.can(member, "envvar.view", variable)
    assert not policy.can(member, "envvar.manage", variable)
    assert not policy.can(member, "envvar.view", org_variable)


# -- the policy's corners ------------------------------------------------------------------------------------------


def test_anonymous_visitors_hold_nothing_and_see_nothing(world: Any, nightly: Task) -> None:
    anonymous = AnonymousUser()
    assert not policy.is_tenant_admin(anonymous, world.acme.pk)
    assert policy.capabilities(anonymous, world.marketing) == frozenset()
    assert policy.capabilities(anonymous, nightly) == frozenset()
    assert not policy.visible(anonymous, "org.view", Organization.objects.all()).exists()


def test_the_system_holds_everything_without_a_query(world: Any, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        assert policy.can(SYSTEM, "tenant.plan", world.acme)
        assert policy.is_tenant_admin(SYSTEM, world.acme.pk)
        assert policy.capabilities(SYSTEM, world.emea) >= {"org.manage", policy.COMPONENT_PUSH}
        queryset = policy.visible(SYSTEM, "org.view", Organization.objects.all())
    assert ids(queryset) == set(Organization.objects.values_list("pk", flat=True))


def test_a_model_the_policy_has_no_rule_for_is_a_programming_error(world: Any) -> None:
    event = AuditEvent.objects.first()
    assert event is not None
    with pytest.raises(TypeError, match="no rule"):
        policy.can(fresh(world.member), "org.view", event)
    with pytest.raises(TypeError, match="no rule"):
        policy.visible(fresh(world.member), "org.view", AuditEvent.objects.all())


def test_a_capability_no_role_holds_lists_nothing_but_the_superuser_sees_all(world: Any) -> None:
    assert not policy.visible(fresh(world.tenant_admin), "no.such.capability", Organization.objects.all()).exists()
    assert policy.visible(fresh(world.superuser), "no.such.capability", Organization.objects.all()).exists()


def test_get_for_answers_404_to_a_malformed_or_unknown_id(world: Any) -> None:
    with pytest.raises(NotFound):
        policy.get_for(fresh(world.tenant_admin), "org.view", Organization.objects.all(), pk="not-a-uuid")
    with pytest.raises(NotFound):
        policy.get_for(fresh(world.tenant_admin), "org.view", Organization.objects.all(), pk=world.globex_root.pk)
    org = policy.get_for(fresh(world.tenant_admin), "org.view", Organization.objects.all(), pk=world.emea.pk)
    assert org.pk == world.emea.pk


def test_an_anonymous_visitor_or_a_deleted_org_gives_no_capability_on_a_declaration(world: Any) -> None:
    credential = create_credential(actor=SYSTEM, org=world.emea, name="ftp", kind="generic", fields={"h": "x"})
    assert policy.capabilities(AnonymousUser(), credential) == frozenset()
    assert "credential.view" in policy.capabilities(fresh(world.tenant_admin), credential)
    delete_org(actor=SYSTEM, org=world.emea)
    credential.org.refresh_from_db()
    assert policy.capabilities(fresh(world.tenant_admin), credential) == frozenset()


def test_get_for_lets_a_programming_error_through(world: Any) -> None:
    with pytest.raises(FieldError):
        policy.get_for(fresh(world.tenant_admin), "org.view", Organization.objects.all(), no_such_field=1)


# -- selectors the faces use ---------------------------------------------------------------------------------------


def test_a_grant_is_found_by_id_whether_on_an_org_or_a_project(world: Any, colleague: Any) -> None:
    on_project = grant_role(actor=SYSTEM, target=world.website, role="guest", user=colleague)
    found = selectors.grant_by_id(on_project.pk)
    assert found == on_project and found.content_object.org == world.marketing
    assert selectors.grant_by_id(world.acme.pk) is None  # an id of something else


def test_custom_roles_are_usable_below_the_org_that_defines_them_only(world: Any) -> None:
    role = create_role(actor=SYSTEM, org=world.marketing, name="Reviewer", capabilities=["org.view"])
    assert list(selectors.custom_roles_in(world.campaigns)) == [role]
    assert list(selectors.custom_roles_in(world.logistics)) == []
