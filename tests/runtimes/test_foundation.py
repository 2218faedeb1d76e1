"""The runtimes foundation: what the policy answers on the platform's global runtimes (no org), which the faces and
the queue build on, the allowed_runtimes setting, and the data model's invariants."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from access import policy
from resources.settings_registry import clean_value
from runtimes.models import Runtime
from tests.factories import World, add_to_tenant


@pytest.fixture
def runtimes(world: World) -> dict[str, Runtime]:
    everyone = Runtime.objects.get(name="platform", kind=Runtime.Kind.GLOBAL, all_tenants=True)  # the world's
    globex_only = Runtime.objects.create(name="globex-gpu", kind=Runtime.Kind.GLOBAL)
    globex_only.tenants.add(world.globex)
    unoffered = Runtime.objects.create(name="staging", kind=Runtime.Kind.GLOBAL)
    local = Runtime.objects.create(name="eu-local", kind=Runtime.Kind.LOCAL, org=world.logistics)
    return {"everyone": everyone, "globex": globex_only, "unoffered": unoffered, "local": local}


def names(user: Any) -> set[str]:
    return set(policy.visible(user, "runtime.view", Runtime.objects.all()).values_list("name", flat=True))


def test_members_see_the_global_runtimes_offered_to_their_tenant_only(world: World, runtimes: dict) -> None:
    # bob is a member of Acme with no role: the platform's runtime offered to everyone, nothing else.
    assert names(world.member) == {"platform"}
    assert names(world.other_admin) == {"platform", "globex-gpu"}
    assert names(world.tenant_admin) == {"platform", "eu-local"}
    assert names(world.outsider) == set()
    assert names(world.superuser) == {"platform", "globex-gpu", "staging", "eu-local"}


def test_one_row_per_runtime_when_offered_to_several_tenants_of_the_viewer(world: World, runtimes: dict) -> None:
    runtimes["globex"].tenants.add(world.acme)
    add_to_tenant(world.member, world.globex)
    visible = list(policy.visible(world.member, "runtime.view", Runtime.objects.all()).values_list("name", flat=True))
    assert sorted(visible) == ["globex-gpu", "platform"]


def test_only_superusers_manage_a_global_runtime(world: World, runtimes: dict) -> None:
    platform = runtimes["everyone"]
    assert policy.can(world.tenant_admin, "runtime.view", platform)
    assert not policy.can(world.tenant_admin, "runtime.manage", platform)
    assert policy.visible(world.tenant_admin, "runtime.manage", Runtime.objects.filter(pk=platform.pk)).count() == 0
    assert policy.can(world.superuser, "runtime.manage", platform)
    assert not policy.can(world.tenant_admin, "runtime.view", runtimes["globex"])
    assert not policy.can(world.outsider, "runtime.view", platform)
    why = policy.explain(world.tenant_admin, "runtime.manage", platform)
    assert not why.allowed and any("superusers" in line for line in why.reasons)
    assert policy.explain(world.member, "runtime.view", platform).allowed


def test_a_local_runtime_follows_the_org_roles(world: World, runtimes: dict) -> None:
    local = runtimes["local"]
    assert policy.can(world.tenant_admin, "runtime.manage", local)
    assert not policy.can(world.member, "runtime.view", local)
    assert not policy.can(world.other_admin, "runtime.view", local)


def test_a_global_runtime_has_no_org_and_a_local_one_has_one(world: World) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Runtime.objects.create(name="x", kind=Runtime.Kind.GLOBAL, org=world.root)
    with pytest.raises(IntegrityError), transaction.atomic():
        Runtime.objects.create(name="y", kind=Runtime.Kind.LOCAL)


def test_global_runtime_names_are_unique_and_one_platform_default(world: World) -> None:
    assert Runtime.objects.get(is_platform_default=True).name == "platform"  # the world's (tests/factories.py)
    with pytest.raises(IntegrityError), transaction.atomic():
        Runtime.objects.create(name="platform", kind=Runtime.Kind.GLOBAL)
    with pytest.raises(IntegrityError), transaction.atomic():
        Runtime.objects.create(name="other", kind=Runtime.Kind.GLOBAL, is_platform_default=True)


def test_allowed_runtimes_takes_names_without_duplicates() -> None:
    assert clean_value("allowed_runtimes", "eu-local, EU-local platform") == ["eu-local", "platform"]
    assert clean_value("allowed_runtimes", []) == []
    with pytest.raises(ValidationError):
        clean_value("allowed_runtimes", [""])
    with pytest.raises(ValidationError):
        clean_value("allowed_runtimes", {"a": 1})
