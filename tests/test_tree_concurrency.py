"""Real concurrency on PostgreSQL: tree writes serialize on the tenant row, root creation on an advisory lock.

Skipped on SQLite, which has one writer at a time anyway (and whose in-memory test database is per connection).
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable

import pytest
from django.db import close_old_connections, connection

from config.errors import Conflict
from orgs import services
from orgs.integrity import tree_problems
from orgs.models import Organization, Tenant
from tests.factories import PASSWORD, UserFactory, make_org, make_tenant, root_of

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres(postgres_only):
    pass


def run_together(workers: list[Callable[[], None]]) -> list[BaseException]:
    """Start every worker at the same instant (a barrier) and collect what they raised."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def wrap(work: Callable[[], None]) -> None:
        try:
            barrier.wait(timeout=30)
            work()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=wrap, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    close_old_connections()
    return errors


def test_concurrent_creates_and_moves_in_one_tenant_keep_the_tree_sound():
    admin = UserFactory(username="boss")
    tenant = make_tenant("Busy", admin=admin)
    root = root_of(tenant)
    branches = [make_org(root, f"branch-{i}") for i in range(4)]
    created: list[str] = []
    lock = threading.Lock()

    def worker(index: int) -> Callable[[], None]:
        def work() -> None:
            rng = random.Random(index)
            mine = []
            for step in range(15):
                parent = branches[index] if not mine or rng.random() < 0.5 else rng.choice(mine)
                org = services.create_org(actor=admin, parent=parent, name=f"w{index}-{step}")
                mine.append(org)
                with lock:
                    created.append(org.name)
                if step % 3 == 2:
                    # Move one of my subtrees under another worker's branch: the writers interleave in one tree.
                    node = rng.choice(mine)
                    target = branches[(index + 1) % len(branches)]
                    # A refusal (e.g. a name taken there) must be clean: nothing half-done.
                    with contextlib.suppress(Conflict):
                        services.move_org(actor=admin, org=node, parent=target)

        return work

    errors = run_together([worker(i) for i in range(4)])
    assert errors == []
    assert len(created) == 60
    assert Organization.objects.filter(tenant=tenant).count() == 1 + 4 + 60
    assert tree_problems(tenant) == []


def test_parallel_sign_ups_get_distinct_trees():
    def sign_up(i: int) -> Callable[[], None]:
        return lambda: services.sign_up(
            tenant_name=f"Startup {i}", username=f"founder{i}", email=f"f{i}@example.com", password=PASSWORD
        )

    errors = run_together([sign_up(i) for i in range(8)])
    assert errors == []
    tree_ids = list(Organization.objects.filter(parent__isnull=True).values_list("tree_id", flat=True))
    assert len(tree_ids) == len(set(tree_ids)) == 8
    assert Tenant.objects.count() == 8
    assert tree_problems() == []
