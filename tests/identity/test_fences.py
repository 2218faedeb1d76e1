"""The policy's authentication fences (access/fences.py), driven by a provider of the test's own: a fenced subtree
answers 403 with the fence's code to those whose roles reach it and 404 to anyone else, lists leave it out, a
whole-tenant fence takes the tenant away (and its administration) without touching the user's other tenants, and
a tenant without rules costs no query."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from access import fences, policy
from access.services.grants import grant_role
from access.services.tokens import issue_token
from config.actors import SYSTEM
from tests.factories import UserFactory, add_to_tenant


@dataclass
class RuleBook:
    """Rules by tenant: ("2fa", org) closes org's subtree to unverified contexts; ("sso", None) the whole tenant to
    contexts not authenticated through the tenant."""

    name: str = "test-rules"
    rules: dict[UUID, list[tuple[str, Any]]] = field(default_factory=dict)
    asked: list[list[UUID]] = field(default_factory=list)

    def enforcing(self, tenant_ids: Any) -> set[UUID]:
        ids = list(tenant_ids)
        self.asked.append(ids)
        return {t for t in ids if self.rules.get(t)}

    def fences(self, user: Any, context: fences.AuthContext, tenant_id: UUID) -> list[fences.Fence]:
        found = []
        for rule, org in self.rules.get(tenant_id, []):
            if rule == "2fa" and not context.otp_verified:
                org.refresh_from_db()
                found.append(
                    fences.Fence(
                        "2fa_required",
                        f"{org.name} requires two-factor authentication.",
                        tenant_id,
                        org.tree_id,
                        org.lft,
                        org.rght,
                        org.pk,
                        org.name,
                    )
                )
            if rule == "sso" and tenant_id not in context.sso_tenants:
                found.append(fences.Fence("sso_required", "Sign in through your company.", tenant_id))
        return found


@pytest.fixture
def book(db: Any):
    book = RuleBook()
    fences.register(book)
    cache.clear()
    yield book
    fences._providers.remove(book)
    cache.clear()


def _rule(book: RuleBook, tenant: Any, rule: str, org: Any = None) -> None:
    book.rules.setdefault(tenant.pk, []).append((rule, org))
    fences.invalidate(tenant.pk)


def test_a_fenced_subtree_is_403_with_the_code_for_members_and_404_for_others(world, people, book, api_as):
    _rule(book, world.acme, "2fa", world.emea)
    admin = api_as(people["admin"])
    assert admin.get(f"/api/v1/orgs/{world.marketing.pk}").status_code == 200
    for org in (world.emea, world.campaigns):
        answer = admin.get(f"/api/v1/orgs/{org.pk}")
        assert answer.status_code == 403, answer.content
        assert answer.json()["code"] == "2fa_required"
    listed = {o["id"] for o in admin.get("/api/v1/orgs?page_size=100").json()["results"]}
    assert str(world.marketing.pk) in listed
    assert {str(world.emea.pk), str(world.campaigns.pk)}.isdisjoint(listed)
    # The Guest of Logistics' sibling sees nothing of it whatever the fence: 404 as before.
    stranger = UserFactory(username="stranger")
    add_to_tenant(stranger, world.acme)
    grant_role(actor=SYSTEM, target=world.logistics, role="guest", user=stranger)
    assert api_as(stranger).get(f"/api/v1/orgs/{world.emea.pk}").status_code == 404
    assert api_as(world.outsider).get(f"/api/v1/orgs/{world.emea.pk}").status_code == 404


def test_a_verified_context_passes_the_fence_and_the_parent_is_never_fenced(world, people, book, api):
    _rule(book, world.acme, "2fa", world.emea)
    _, raw = issue_token(user=people["admin"], otp_verified=True)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get(f"/api/v1/orgs/{world.campaigns.pk}").status_code == 200
    user = people["admin"]
    assert policy.can(user, "org.view", world.marketing)  # no context: the weakest, and the parent stays open
    assert not policy.can(user, "org.view", world.emea)
    assert policy.explain(user, "org.view", world.emea).reasons == ["EMEA requires two-factor authentication."]


def test_a_whole_tenant_fence_takes_the_tenant_and_its_administration_not_other_tenants(world, book, api_as, api):
    both = world.tenant_admin
    add_to_tenant(both, world.globex)
    grant_role(actor=SYSTEM, target=world.globex_root, role="guest", user=both)
    _rule(book, world.acme, "sso")
    client = api_as(both)
    answer = client.get(f"/api/v1/orgs/{world.root.pk}")
    assert (answer.status_code, answer.json()["code"]) == (403, "sso_required")
    assert client.get(f"/api/v1/orgs/{world.globex_root.pk}").status_code == 200
    assert client.get(f"/api/v1/tenants/{world.acme.pk}").status_code in (403, 404)
    assert not policy.is_tenant_admin(both, world.acme.pk)
    # A token authorized for the tenant's SSO reaches it, administration included.
    _, raw = issue_token(user=both, sso_tenants=[world.acme.pk])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get(f"/api/v1/orgs/{world.root.pk}").status_code == 200
    assert api.get(f"/api/v1/tenants/{world.acme.pk}").status_code == 200


def test_the_session_context_decides_in_the_console(world, people, book, client):
    _rule(book, world.acme, "2fa", world.emea)
    client.force_login(people["admin"])  # a password session
    answer = client.get(f"/o/{world.emea.pk}/")
    assert answer.status_code == 302  # to the page that opens the fence, then back
    assert answer["Location"].startswith("/account/two-factor/required/?")
    assert f"org={world.emea.pk}" in answer["Location"] and f"next=%2Fo%2F{world.emea.pk}%2F" in answer["Location"]
    session = client.session
    session[fences.SESSION_KEY] = fences.AuthContext("password", frozenset(), True).as_session()
    session.save()
    assert client.get(f"/o/{world.emea.pk}/").status_code == 200


def test_no_rules_no_query_and_the_cache_answers_after_the_first_request(world, people, book):
    user = people["admin"]
    policy.can(user, "org.view", world.marketing)
    assert book.asked == [[world.acme.pk]]
    policy.forget(user)
    with CaptureQueriesContext(connection) as queries:
        assert policy.can(user, "org.view", world.marketing)
    assert len(queries) == 1  # the grants; the tenant's "no rules" came from the cache
    assert book.asked == [[world.acme.pk]]
    _rule(book, world.acme, "2fa", world.emea)  # a change invalidates at once
    policy.forget(user)
    assert not policy.can(user, "org.view", world.emea)


def test_fences_leave_the_platform_s_objects_to_the_tenants_still_open(world, book):
    """A global runtime has no org: a whole-tenant fence hides it only through the tenants it closes."""
    from runtimes.models import Runtime

    both = world.tenant_admin
    add_to_tenant(both, world.globex)
    platform = Runtime.objects.get(org__isnull=True, name="platform")
    _rule(book, world.acme, "sso")
    assert platform in policy.visible(both, "runtime.view", Runtime.objects.all())  # through Globex, still open
    alone = UserFactory(username="acme-only")
    add_to_tenant(alone, world.acme)
    assert not policy.visible(alone, "runtime.view", Runtime.objects.all()).exists()
    assert not policy.can(alone, "runtime.view", platform)
    _rule(book, world.globex, "2fa", world.globex_root)  # a subtree fence of the other tenant: the org-less row stays
    policy.forget(both)
    assert platform in policy.visible(both, "runtime.view", Runtime.objects.all())


def test_a_cold_cache_asks_every_query_provider_in_one_query(world):
    """SSO and 2FA both say which tenants they enforce in with a queryset: a miss is one UNION, not one per
    provider; then the cache answers."""
    from tests.twofactor.helpers import require_2fa

    names = {p.name for p in fences.providers()}
    assert {"sso", "2fa"} <= names
    require_2fa(world.emea, grace_hours=24)
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        answer = fences.enforcing([world.acme.pk, world.globex.pk])
    assert len(queries) == 1 and "UNION" in queries[0]["sql"].upper()
    assert answer == {world.acme.pk: ("2fa",), world.globex.pk: ()}
    with CaptureQueriesContext(connection) as queries:
        assert fences.enforcing([world.acme.pk, world.globex.pk]) == answer
    assert len(queries) == 0
