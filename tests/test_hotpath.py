"""config.hotpath builds the same instances as the ORM, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config import hotpath
from orgs.models import Organization
from orgs.services import update_org


def field_values(instance):
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_an_org_fetched_by_hand_equals_the_orm_one(world):
    update_org(actor=world.tenant_admin, org=world.emea, access_inheritance="admins_only", description="Europe")
    with CaptureQueriesContext(connection) as ctx:
        fast = Organization.objects.alive_by_pk(world.emea.pk)
    assert len(ctx) == 1
    slow = Organization.objects.get(pk=world.emea.pk)
    assert field_values(fast) == field_values(slow)
    assert fast.description == "Europe" and fast.access_inheritance == "admins_only"
    assert fast._state.adding is False and fast._state.db == "default"


def test_deleted_or_missing_orgs_are_not_fetched(world):
    from uuid import uuid4

    from orgs.services import delete_org

    delete_org(actor=world.tenant_admin, org=world.logistics)
    assert Organization.objects.alive_by_pk(world.logistics.pk) is None
    assert Organization.objects.alive_by_pk(uuid4()) is None


@pytest.mark.parametrize("attname", ["id", "last_login", "date_joined", "is_active", "last_org_id"])
def test_a_user_built_from_raw_columns_equals_the_orm_one(world, attname):
    user_model = get_user_model()
    world.member.last_org = world.emea
    world.member.save()
    table = connection.ops.quote_name(user_model._meta.db_table)
    sql = f"SELECT {hotpath.select_list(user_model, 'u')} FROM {table} u WHERE u.username = %s"
    fast = hotpath.fetch_one(sql, ["bob"], lambda row: hotpath.build(user_model, row))
    slow = user_model.objects.get(username="bob")
    assert getattr(fast, attname) == getattr(slow, attname)
    assert field_values(fast) == field_values(slow)
