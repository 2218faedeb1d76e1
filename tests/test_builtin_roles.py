"""The built-in roles are rows that grants point at: they exist after every migrate and come back after a flush (a
transactional test's teardown empties every table; the tests after it on the same worker still need them)."""

import pytest
from django.apps import apps
from django.core.management import call_command

from access.models import Role
from access.roles import BUILTIN_ROLE_NAMES, ensure_builtin_roles


def builtin_keys() -> set[str]:
    return set(Role.objects.filter(tenant__isnull=True).values_list("key", flat=True))


@pytest.mark.django_db(transaction=True)
def test_a_flush_brings_the_builtin_roles_back():
    assert builtin_keys() == set(BUILTIN_ROLE_NAMES)
    call_command("flush", interactive=False, verbosity=0)
    assert builtin_keys() == set(BUILTIN_ROLE_NAMES)
    assert Role.objects.get(key="guest", tenant__isnull=True).name == "Guest"


@pytest.mark.django_db
def test_ensuring_them_again_changes_nothing():
    before = list(Role.objects.filter(tenant__isnull=True).order_by("key").values_list("pk", "key", "name"))
    ensure_builtin_roles(using="default", apps=apps)
    after = list(Role.objects.filter(tenant__isnull=True).order_by("key").values_list("pk", "key", "name"))
    assert before == after and len(after) == 3
