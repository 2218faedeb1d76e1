"""Reliability under concurrent writes, on PostgreSQL: tree writes wait a bounded time and block nothing else, and
reads never lie while the tree is renumbered around them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import close_old_connections, connection, transaction
from rest_framework.test import APIClient

from access.services import issue_token
from access.services.grants import grant_role
from config.actors import SYSTEM
from orgs import services
from orgs.locks import lock_tenant
from orgs.models import Organization
from tests.factories import UserFactory, add_to_tenant, build_world, make_org

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres(postgres_only):
    pass


def client_of(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user=user)[1]}")
    return client


def in_thread(work: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def holding_the_tenant_lock(tenant_id, held: threading.Event, release: threading.Event) -> Callable[[], None]:
    """Another session in the middle of a long tree write."""

    def work() -> None:
        with transaction.atomic():
            lock_tenant(tenant_id)
            held.set()
            release.wait(timeout=30)

    return work


def test_a_tree_write_stuck_behind_another_gives_up_with_503_and_retry_after(settings):
    settings.TENANT_LOCK_TIMEOUT_MS = 300
    world = build_world()
    held, release = threading.Event(), threading.Event()
    holder = in_thread(holding_the_tenant_lock(world.acme.pk, held, release))
    try:
        assert held.wait(timeout=10)
        started = time.monotonic()
        response = client_of(world.tenant_admin).post(
            "/api/v1/orgs", {"name": "Waiting", "parent": str(world.root.pk)}, format="json"
        )
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join(timeout=30)
        close_old_connections()
    assert response.status_code == 503 and response.json()["code"] == "busy"
    assert response["Retry-After"] == "1"
    assert 0.3 <= waited < 2.0
    assert not Organization.objects.filter(name="Waiting").exists()


def test_writes_that_only_reference_the_tenant_do_not_wait_behind_a_tree_write(settings):
    settings.TENANT_LOCK_TIMEOUT_MS = 10_000
    world = build_world()
    api = client_of(world.tenant_admin)
    task = api.post(f"/api/v1/projects/{world.website.pk}/tasks", {"name": "Sync"}, format="json").json()
    held, release = threading.Event(), threading.Event()
    holder = in_thread(holding_the_tenant_lock(world.acme.pk, held, release))
    try:
        assert held.wait(timeout=10)
        started = time.monotonic()
        run = api.post(f"/api/v1/tasks/{task['id']}/run")
        project = api.post(f"/api/v1/orgs/{world.logistics.pk}/projects", {"name": "Fleet"}, format="json")
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join(timeout=30)
        close_old_connections()
    # Their audit events reference the tenant row (a FOR KEY SHARE check): a FOR UPDATE lock would hold them.
    assert run.status_code == 201 and project.status_code == 201
    assert waited < 2.0


def test_readers_get_no_false_404_while_orgs_are_created_to_their_left():
    world = build_world()
    guest = UserFactory(username="gwen")
    add_to_tenant(guest, world.acme)
    target = make_org(world.logistics, "Depot")  # right of Marketing's subtree, where the writers add orgs
    grant_role(actor=SYSTEM, target=target, role="guest", user=guest)
    api, token = client_of(guest), issue_token(user=guest)[1]
    stop = threading.Event()
    outcomes: list[int] = []
    lock = threading.Lock()

    def write() -> None:
        n = 0
        while not stop.is_set() and n < 400:
            services.create_org(actor=SYSTEM, parent=world.campaigns, name=f"c{threading.get_ident()}-{n}")
            n += 1

    def read() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        for _ in range(150):
            listed = client.get("/api/v1/orgs")
            status = [
                client.get(f"/api/v1/orgs/{target.pk}").status_code,
                # The list is filtered by the grant's tree range: it must hold Depot, whatever moved meanwhile.
                listed.status_code if [o["name"] for o in listed.json()["results"]] == ["Depot"] else 0,
            ]
            with lock:
                outcomes.extend(status)

    writers = [in_thread(write) for _ in range(2)]
    readers = [in_thread(read) for _ in range(3)]
    for thread in readers:
        thread.join(timeout=300)
    stop.set()
    for thread in writers:
        thread.join(timeout=300)
    close_old_connections()
    assert len(outcomes) == 3 * 150 * 2
    assert outcomes.count(200) == len(outcomes), {s: outcomes.count(s) for s in set(outcomes)}
    assert Organization.objects.filter(parent=world.campaigns).count() > 50  # the tree really moved under them
    assert api.get(f"/api/v1/orgs/{target.pk}").status_code == 200
