"""Two first sign-ins of the same person at once (two tabs, a double click) make one account, one identity and one
membership, and both sign in: the loser of the race on the identity's unique key starts again and finds it."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from access.models import AuditEvent, OrgUserGrant, Role, TenantMembership
from identity import oidc
from identity.models import Domain, ExternalIdentity, GroupRole, TenantSSO
from identity.signin import provision
from tests.factories import make_org, make_tenant, root_of

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres(postgres_only):
    pass


def test_two_first_sign_ins_at_once_make_one_account_and_both_succeed():
    tenant = make_tenant("Racy")
    team = make_org(root_of(tenant), "Team")
    sso = TenantSSO.objects.create(
        tenant=tenant, issuer="https://idp.racy.test", client_id="c", changed_at=timezone.now()
    )
    Domain.objects.create(tenant=tenant, domain="racy.test", txt_token="t" * 32, verified_at=timezone.now())
    GroupRole.objects.create(sso=sso, group="eng", role=Role.objects.get(key="integrator"), org=team)
    identity = oidc.Identity(
        issuer=sso.issuer, subject="s-1", email="kim@racy.test", email_verified=True, groups=["eng"], claims={}
    )
    barrier = threading.Barrier(2)
    users: list[Any] = []
    errors: list[BaseException] = []

    def sign_in() -> None:
        try:
            barrier.wait(timeout=30)
            users.append(provision(sso=TenantSSO.objects.select_related("tenant").get(pk=sso.pk), identity=identity))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sign_in) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    close_old_connections()
    assert errors == []
    assert len(users) == 2 and users[0].pk == users[1].pk
    assert ExternalIdentity.objects.count() == 1
    assert TenantMembership.objects.filter(tenant=tenant, user=users[0]).count() == 1
    assert OrgUserGrant.objects.filter(user=users[0], content_object=team).count() == 1
    assert AuditEvent.objects.filter(action="sso.provisioned").count() == 1
    assert AuditEvent.objects.filter(action="sso.signin").count() == 2
