"""The kind registry (config/kinds.py) is what the policy and the inheritance engine read: every kind is in it with
a capability of the vocabulary, no module of ``access`` names another app's model, and the inheritable queryset of
environment variables makes ``effective(EnvVar, …)`` safe whatever queryset a caller passes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.apps import apps
from django.urls import NoReverseMatch, reverse

from access import policy
from access.roles import ALL_CAPABILITIES, TENANT_ADMIN
from config import kinds
from config.actors import SYSTEM
from config.errors import Forbidden, NotFound
from config.kinds import Rule
from resources import inheritance, services
from resources.models import Credential, Declaration, EnvVar, Hidden, Run, Task

ROOT = Path(__file__).resolve().parent.parent
UUID = "00000000-0000-0000-0000-000000000000"


def test_every_declaration_and_every_model_the_policy_decides_on_is_registered() -> None:
    declared = {m for m in apps.get_models() if issubclass(m, Declaration)}
    assert declared == {k.model for k in kinds.registry.declared()}
    assert {Task, Run} <= {k.model for k in kinds.registry.all()}
    assert {k.model._meta.label_lower for k in kinds.registry.all()} >= {
        "orgs.tenant",
        "orgs.organization",
        "orgs.project",
    }


@pytest.mark.parametrize("kind", kinds.registry.all(), ids=lambda k: k.key)
def test_each_entry_names_capabilities_of_the_vocabulary_and_urls_that_exist(kind: kinds.Kind) -> None:
    assert kind.view in ALL_CAPABILITIES | {TENANT_ADMIN}
    assert not kind.manage or kind.manage in ALL_CAPABILITIES | {TENANT_ADMIN}
    assert kind.label and kind.label_plural and kind.label != kind.label_plural
    for name in (kind.console_list, kind.console_detail, kind.api_list, kind.api_detail):
        if name:
            assert _reverses(name), name
    if kind.rule is Rule.CHILD:
        assert kinds.registry.parent(kind).rule in (Rule.TASK, Rule.DECLARED)


def test_tasks_are_the_shareable_kind_with_a_user_and_a_team_share_table() -> None:
    (task,) = kinds.registry.shareable()
    assert task.model is Task and task.rule is Rule.TASK
    user_share, team_share = task.shares
    assert {f.name for f in user_share._meta.get_fields()} >= {"user", "content_object", "permission"}
    assert {f.name for f in team_share._meta.get_fields()} >= {"group", "content_object", "permission"}


def test_a_hideable_kind_is_hidden_under_the_kind_that_hides_it() -> None:
    hideable = kinds.registry.hideable()
    assert set(hideable) == {"credential", "lookup_table", "env_var", "component", "runtime"}
    assert all(key == k.model.KIND for key, k in hideable.items())


def test_an_unregistered_model_is_refused_by_the_policy_not_guessed(world) -> None:
    membership = world.acme.memberships.first()
    with pytest.raises(TypeError, match="knows no rule"):
        policy.can(world.member, "org.view", membership)


def _reverses(name: str) -> bool:
    """Whether the URL name exists, with none, one or two ids (a list of everything, of an org, an org's item)."""
    for count in (0, 1, 2):
        try:
            reverse(name, args=[UUID] * count)
        except NoReverseMatch:
            continue
        return True
    return False


RELATIONS = {"ForeignKey", "OneToOneField", "ManyToManyField"}


def test_no_module_of_access_names_a_model_of_another_app() -> None:
    """The policy asks the registry: a string like "resources.task" in access/ would be a switch on a label. (The
    lazy targets of access's own foreign keys, ``ForeignKey("orgs.Organization")``, are relations, not switches.)"""
    labels = {m._meta.label_lower for m in apps.get_models() if m._meta.app_label != "access"}
    found = []
    for path in sorted((ROOT / "access").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        targets = {
            id(node.args[0])
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and node.args
            and getattr(node.func, "attr", getattr(node.func, "id", "")) in RELATIONS
        }
        found += [
            f"{path.relative_to(ROOT)}:{node.lineno} {node.value}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.lower() in labels
            and id(node) not in targets
        ]
    assert found == []


def test_view_capability_reads_the_registry() -> None:
    assert policy.view_capability(EnvVar) == "envvar.view"
    assert policy.VIEW_CAPABILITY["resources.run"] == "task.view"
    assert policy.VIEW_CAPABILITY["orgs.tenant"] == TENANT_ADMIN


# -- the effective(EnvVar, …) trap --------------------------------------------------------------------------------


@pytest.fixture
def variables(world):
    """REGION declared at Marketing, and a component in Marketing with its own REGION and TOKEN variables."""
    admin = world.tenant_admin
    org_region = services.create_env_var(actor=admin, org=world.marketing, key="REGION", value="eu")
    component = services.create_component(actor=admin, org=world.marketing, name="Mailer")
    services.create_env_var(actor=admin, component=component, key="REGION", value="component-only")
    services.create_env_var(actor=admin, component=component, key="TOKEN", value="t")
    return {"org_region": org_region, "component": component}


def test_a_component_variable_never_reaches_an_org_effective_list_whatever_queryset_is_passed(world, variables):
    everything = EnvVar.objects.all()
    assert everything.count() == 3  # the component's two variables are in the table
    for org in (world.marketing, world.campaigns):
        for queryset in (None, everything, policy.visible(SYSTEM, "envvar.view", everything)):
            items = inheritance.effective(EnvVar, org, queryset)
            assert [(e.name, e.item.pk) for e in items] == [("REGION", variables["org_region"].pk)]


def test_the_development_team_sees_the_component_variables_but_no_org_list_shows_them(world, people, variables):
    newcomer = people["newcomer"]
    services.add_component_member(actor=world.tenant_admin, component=variables["component"], user=newcomer)
    policy.forget(newcomer)
    seen = policy.visible(newcomer, "envvar.view", EnvVar.objects.all())
    assert sorted(seen.values_list("key", flat=True)) == ["REGION", "TOKEN"]  # the component's own, by its team
    assert inheritance.effective(EnvVar, world.marketing, seen) == []


def test_locks_overrides_and_hides_ignore_component_variables(world, variables):
    assert not inheritance.declared_above(EnvVar, world.emea, "TOKEN")
    assert inheritance.declared_above(EnvVar, world.emea, "REGION")
    assert inheritance.below(EnvVar, world.root, "TOKEN") == []
    assert [v.pk for v in inheritance.below(EnvVar, world.root, "REGION")] == [variables["org_region"].pk]
    assert inheritance.locked_above(EnvVar, world.emea, "REGION") is None


def test_an_effective_list_of_env_vars_stays_one_query(world, variables, django_assert_num_queries):
    with django_assert_num_queries(1):
        items = inheritance.effective(EnvVar, world.campaigns, EnvVar.objects.all())
    assert [e.name for e in items] == ["REGION"] and items[0].inherited


# -- §5 measured: a new declared kind is a model and a registry entry for the policy and the inheritance engine ----


@pytest.fixture
def probe():
    """A kind registered the way the runtimes issue's Runtime will be, with runtime.view/runtime.manage: here a proxy
    of Credential (so it needs no table; its rows are credential rows, which this test never lists as credentials),
    in a test-only app label, removed again afterwards."""

    class Probe(Credential):
        KIND = "probe"

        class Meta:
            proxy = True
            app_label = "tests"

    kind = kinds.register(
        kinds.Kind(model=Probe, rule=Rule.DECLARED, view="runtime.view", manage="runtime.manage", within="org",
                   label="probe", label_plural="probes")
    )  # fmt: skip
    yield kind
    kinds.registry.unregister(Probe)
    del apps.all_models["tests"]["probe"]
    apps.clear_cache()


def test_a_new_declared_kind_is_decided_and_inherited_once_registered(world, people, probe):
    Probe, admin = probe.model, world.tenant_admin
    top = Probe.objects.create(org=world.root, name="eu-west")
    mine = Probe.objects.create(org=world.marketing, name="eu-west")  # overrides the root's
    theirs = Probe.objects.create(org=world.logistics, name="warehouse")
    # The policy: Guests view runtimes (also those declared above their grant), only Admins manage them, and what
    # another branch declares does not exist for them.
    guest, integrator, boss = people["guest"], people["integrator"], people["admin"]
    assert policy.can(guest, "runtime.view", top) and policy.can(guest, "runtime.view", mine)
    assert not policy.can(integrator, "runtime.manage", mine) and policy.can(boss, "runtime.manage", mine)
    assert not policy.can(boss, "runtime.manage", top)  # declared above the grant: seen, not managed
    with pytest.raises(NotFound):
        policy.authorize(boss, "runtime.manage", theirs)
    with pytest.raises(Forbidden):
        policy.authorize(guest, "runtime.manage", mine)
    assert set(policy.visible(guest, "runtime.view", Probe.objects.all())) == {top, mine}
    why = policy.explain(guest, "runtime.view", top)
    assert why.allowed and any("in an organization below" in line for line in why.reasons)
    # The inheritance engine: nearest wins, a hide leaves it out below, a lock above is found.
    (seen,) = inheritance.effective(Probe, world.campaigns)
    assert seen.item == mine and seen.inherited and seen.overrides == top.pk
    Hidden.objects.create(org=world.campaigns, kind="probe", name="eu-west", created_by=admin)
    assert inheritance.effective(Probe, world.campaigns) == []
    assert [e.item for e in inheritance.effective(Probe, world.emea)] == [mine]
    Probe.objects.filter(pk=top.pk).update(locked=True)
    assert inheritance.locked_above(Probe, world.marketing, "EU-WEST") == top
    assert [e.item for e in inheritance.effective(Probe, world.campaigns)] == [top]  # a lock beats the hide
    assert ("probe", "probe") in Hidden._meta.get_field("kind").choices
