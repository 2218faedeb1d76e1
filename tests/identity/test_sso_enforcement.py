"""What enforcement does: a member whose address is in a verified domain reaches the tenant only through its IdP.
Password sessions and personal tokens lose THIS tenant (403 sso_required on its orgs, left out of lists, the
console sends them to the sso-required page) and keep their other tenants; a context authenticated through the
tenant passes; members with other addresses are untouched; break-glass codes open it once each."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.cache import cache
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext

from access import fences, policy
from access.models import AuditEvent
from access.services.grants import grant_role
from access.services.tokens import issue_token
from config.actors import SYSTEM
from config.errors import Conflict
from identity import services
from identity.fences import SSOFences, email_domain
from identity.models import Domain, ExternalIdentity, RecoveryCode
from tests.factories import UserFactory, add_to_tenant
from tests.identity.sso_helpers import enforced, verified_domain


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def employee(world):
    """An Integrator of Marketing at Acme with an Acme address, also Guest at Globex."""
    user = UserFactory(username="erin", email="erin@Acme.TEST")
    add_to_tenant(user, world.acme)
    grant_role(actor=SYSTEM, target=world.marketing, role="integrator", user=user)
    add_to_tenant(user, world.globex)
    grant_role(actor=SYSTEM, target=world.globex_root, role="guest", user=user)
    return user


@pytest.fixture
def contractor(world):
    user = UserFactory(username="carl", email="carl@freelance.test")
    add_to_tenant(user, world.acme)
    grant_role(actor=SYSTEM, target=world.marketing, role="integrator", user=user)
    return user


def _token_client(api: Any, user: Any, **kwargs: Any) -> Any:
    _, raw = issue_token(user=user, **kwargs)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


def test_a_personal_token_of_a_domain_member_loses_this_tenant_only(world, employee, api_as):
    client = api_as(employee)
    assert client.get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 200
    enforced(world)
    answer = client.get(f"/api/v1/orgs/{world.marketing.pk}")
    assert (answer.status_code, answer.json()["code"]) == (403, "sso_required")
    assert "Acme" in answer.json()["detail"] and "identity provider" in answer.json()["detail"]
    listed = {o["id"] for o in client.get("/api/v1/orgs?page_size=200").json()["results"]}
    assert str(world.marketing.pk) not in listed and str(world.globex_root.pk) in listed
    assert client.get(f"/api/v1/orgs/{world.globex_root.pk}").status_code == 200
    me = client.get("/api/v1/me").json()
    assert [t["name"] for t in me["tenants"]] == ["Globex"]


def test_a_token_issued_through_the_tenants_sso_passes(world, employee, api):
    enforced(world)
    client = _token_client(api, employee, sso_tenants=[world.acme.pk])
    assert client.get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 200
    other = _token_client(api, employee, sso_tenants=[world.globex.pk])  # another tenant's SSO does not count
    assert other.get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 403


def test_members_outside_the_domains_are_untouched(world, contractor, people, api_as):
    enforced(world)
    assert api_as(contractor).get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 200
    assert api_as(people["admin"]).get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 200
    assert api_as(world.tenant_admin).get(f"/api/v1/tenants/{world.acme.pk}/sso").status_code == 200


def test_a_non_member_still_gets_404_not_the_fence(world, api_as):
    enforced(world)
    stranger = UserFactory(username="sam", email="sam@acme.test")
    answer = api_as(stranger).get(f"/api/v1/orgs/{world.marketing.pk}")
    assert answer.status_code == 404


def test_a_domain_tenant_admin_loses_the_administration_and_a_recovery_code_is_the_way_back(world, api_as, api):
    boss = UserFactory(username="boss", email="boss@acme.test")
    add_to_tenant(boss, world.acme, is_admin=True)
    enforced(world)
    answer = api_as(boss).get(f"/api/v1/tenants/{world.acme.pk}/sso")
    assert (answer.status_code, answer.json()["code"]) == (403, "sso_required")
    assert not policy.is_tenant_admin(boss, world.acme.pk)
    codes = services.regenerate_recovery_codes(actor=world.tenant_admin, tenant=world.acme)
    assert services.use_recovery_code(boss, world.acme, codes[3].upper().replace("-", " "))
    assert not services.use_recovery_code(boss, world.acme, codes[3])  # single use
    used = RecoveryCode.objects.get(used_by=boss)
    assert used.used_at is not None
    event = AuditEvent.objects.get(action="sso.recovery_used")
    assert (event.actor, event.tenant_id, event.changes["left"]) == (boss, world.acme.pk, 9)
    # The sign-in flow then gives the session the tenant, as for an SSO sign-in: it passes.
    client = _token_client(api, boss, sso_tenants=[world.acme.pk])
    assert client.get(f"/api/v1/tenants/{world.acme.pk}/sso").status_code == 200


def test_recovery_codes_open_nothing_for_non_admins_or_other_tenants(world, employee):
    codes = services.regenerate_recovery_codes(actor=world.tenant_admin, tenant=world.acme)
    assert not services.use_recovery_code(employee, world.acme, codes[0])  # a member, not an administrator
    assert not services.use_recovery_code(world.other_admin, world.acme, codes[0])  # another tenant's admin
    assert not services.use_recovery_code(world.other_admin, world.globex, codes[0])  # Acme's code at Globex
    assert not services.use_recovery_code(world.tenant_admin, world.acme, "wrong-code-value")
    assert not services.use_recovery_code(world.tenant_admin, world.acme, "")
    assert RecoveryCode.objects.filter(used_at__isnull=False).count() == 0
    assert services.use_recovery_code(world.tenant_admin, world.acme, codes[0])


def test_changing_ones_address_does_not_escape_a_linked_identity(world, employee, api_as):
    enforced(world)
    ExternalIdentity.objects.create(user=employee, tenant=world.acme, issuer="https://idp.acme.test", subject="e")
    employee.email = "erin@personal.test"
    employee.save(update_fields=["email"])
    answer = api_as(employee).get(f"/api/v1/orgs/{world.marketing.pk}")
    assert (answer.status_code, answer.json()["code"]) == (403, "sso_required")


def test_stopping_enforcement_or_removing_the_domain_opens_the_tenant_at_once(world, employee, api_as):
    enforced(world)
    client = api_as(employee)
    assert client.get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 403
    services.set_enforced(actor=world.tenant_admin, tenant=world.acme, enforced=False)
    assert client.get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 200
    services.set_enforced(actor=world.tenant_admin, tenant=world.acme, enforced=True)
    assert client.get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 403
    services.delete_domain(actor=world.tenant_admin, domain=Domain.objects.get(tenant=world.acme))
    assert client.get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 200


def test_the_console_sends_a_password_session_to_the_sso_required_page(world, employee, client):
    enforced(world)
    client.force_login(employee)
    answer = client.get(f"/o/{world.marketing.pk}/")
    assert answer.status_code == 302
    assert answer["Location"].startswith("/sso/required/?")
    assert f"tenant={world.acme.pk}" in answer["Location"]
    page = client.get(answer["Location"])
    assert page.status_code == 200
    assert b"Acme requires single sign-on" in page.content
    assert client.get(f"/o/{world.globex_root.pk}/").status_code == 200
    session = client.session
    session[fences.SESSION_KEY] = fences.AuthContext("sso", frozenset({world.acme.pk})).as_session()
    session.save()
    assert client.get(f"/o/{world.marketing.pk}/").status_code == 200


def test_the_provider_costs_one_query_and_none_for_a_satisfied_context(world, employee, contractor):
    enforced(world)
    provider = SSOFences()
    with CaptureQueriesContext(connection) as queries:
        found = provider.fences(employee, fences.AuthContext("password"), world.acme.pk)
        untouched = provider.fences(contractor, fences.AuthContext("password"), world.acme.pk)
    assert len(queries) == 2
    assert [f.code for f in found] == ["sso_required"] and found[0].whole_tenant and untouched == []
    with CaptureQueriesContext(connection) as queries:
        assert provider.fences(employee, fences.AuthContext("sso", frozenset({world.acme.pk})), world.acme.pk) == []
        assert provider.fences(world.superuser, fences.AuthContext("password"), world.acme.pk) == []
    assert len(queries) == 0
    assert provider.enforcing([world.acme.pk, world.globex.pk]) == {world.acme.pk}


def test_an_unverified_domain_binds_nobody(world, employee, api_as):
    enforced(world)
    services.claim_domain(actor=world.tenant_admin, tenant=world.acme, domain="sub.acme.test")
    sub = UserFactory(username="subby", email="s@sub.acme.test")
    add_to_tenant(sub, world.acme)
    grant_role(actor=SYSTEM, target=world.marketing, role="guest", user=sub)
    assert api_as(sub).get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 200


@pytest.mark.parametrize(
    ("email", "domain"), [("a@B.example.", "b.example"), ("weird@x@y.test", "y.test"), ("", ""), (None, "")]
)
def test_email_domain_is_the_lower_case_part_after_the_last_at(email, domain):
    assert email_domain(email) == domain


# -- races on PostgreSQL ---------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_tenants_verifying_one_domain_at_once_one_wins(postgres_only):
    from tests.factories import build_world

    world = build_world()
    ours = services.claim_domain(actor=world.tenant_admin, tenant=world.acme, domain="race.test")
    theirs = services.claim_domain(actor=world.other_admin, tenant=world.globex, domain="race.test")
    first_written, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        from django.db import transaction

        try:
            with transaction.atomic():
                services.verify_domain(actor=world.superuser, domain=theirs)
                first_written.set()
                release.wait(timeout=30)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    def second() -> None:
        try:
            first_written.wait(timeout=30)
            services.verify_domain(actor=world.superuser, domain=ours)  # its check cannot see the uncommitted row
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_written.wait(timeout=30)
    threading.Timer(1.0, release.set).start()  # the second writer is then blocked on the unique index
    for thread in threads:
        thread.join(timeout=60)
    close_old_connections()
    assert len(errors) == 1 and isinstance(errors[0], Conflict) and errors[0].code == "domain_taken", errors
    assert list(Domain.objects.filter(verified_at__isnull=False).values_list("tenant_id", flat=True)) == [
        world.globex.pk
    ]


def test_the_constraint_allows_one_verified_claim_per_domain(world):
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    verified_domain(world, "one.test", tenant=world.globex)
    with pytest.raises(IntegrityError), transaction.atomic():
        Domain.objects.create(tenant=world.acme, domain="ONE.test", txt_token="t", verified_at=timezone.now())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_recovery_code_spent_twice_at_once_opens_once(postgres_only):
    from tests.factories import build_world

    world = build_world()
    code = services.regenerate_recovery_codes(actor=world.tenant_admin, tenant=world.acme)[0]
    barrier = threading.Barrier(4)
    results: list[bool] = []

    def spend() -> None:
        try:
            barrier.wait(timeout=30)
            results.append(services.use_recovery_code(world.tenant_admin, world.acme, code))
        finally:
            connection.close()

    threads = [threading.Thread(target=spend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    close_old_connections()
    assert sorted(results) == [False, False, False, True]
    assert AuditEvent.objects.filter(action="sso.recovery_used").count() == 1


def test_sign_in_discovery_finds_the_sso_of_a_verified_domain_only(world):
    enforced(world)
    services.claim_domain(actor=world.tenant_admin, tenant=world.acme, domain="pending.test")
    assert services.sso_for_address("Someone@ACME.test").tenant == world.acme
    assert services.sso_for_address("someone@pending.test") is None  # claimed, not verified
    assert services.sso_for_address("someone@elsewhere.test") is None
    assert services.sso_for_address("no-at-sign") is None


def test_an_idn_address_matches_its_punycode_domain(world):
    enforced(world)
    verified_domain(world, "bücher.test")
    assert Domain.objects.filter(domain="xn--bcher-kva.test").exists()
    assert email_domain("leser@BÜCHER.test") == "xn--bcher-kva.test"
    assert services.sso_for_address("leser@bücher.test").tenant == world.acme


def test_a_password_session_on_the_api_loses_the_tenant_too(world, employee, client):
    enforced(world)
    client.force_login(employee)
    answer = client.get(f"/api/v1/orgs/{world.marketing.pk}")
    assert (answer.status_code, answer.json()["code"]) == (403, "sso_required")
    assert client.get(f"/api/v1/orgs/{world.globex_root.pk}").status_code == 200


def test_only_a_tenant_administrator_completes_a_test_sign_in(world, employee):
    from tests.identity.sso_helpers import configure

    sso = configure(world)
    assert services.mark_tested(actor=employee, tenant=world.acme, changed_at=sso.changed_at) is False
    assert services.mark_tested(actor=world.other_admin, tenant=world.acme, changed_at=sso.changed_at) is False
    assert not AuditEvent.objects.filter(action="sso.tested").exists()
    assert services.mark_tested(actor=world.tenant_admin, tenant=world.acme, changed_at=sso.changed_at) is True
    event = AuditEvent.objects.get(action="sso.tested")
    assert (event.actor, event.tenant_id) == (world.tenant_admin, world.acme.pk)
