from __future__ import annotations

from typing import Any

import pytest

from config.actors import SYSTEM
from runtimes import wakeup
from runtimes.models import Runtime
from tests.runtimes.queue_helpers import make_runtime
from tests.workload.helpers import ISSUER, identity_task
from workload import keys


@pytest.fixture(autouse=True)
def _issuer(settings: Any) -> Any:
    settings.WORKLOAD_IDENTITY_ISSUER = ISSUER
    settings.RUNTIME_REAPER_INTERVAL_S = 0  # no opportunistic sweep in the middle of a test
    keys.forget_published()  # the JWKS cache outlives a test's database
    yield
    keys.forget_published()
    wakeup.stop_listening()  # a claim's LISTEN connection (PostgreSQL) would keep the test database from being dropped


@pytest.fixture
def signing_keys(db: Any) -> keys.Rotation:
    return keys.rotate(actor=SYSTEM)


@pytest.fixture
def edge(world: Any) -> Runtime:
    return make_runtime(world.root, "edge")


@pytest.fixture
def task(world: Any) -> Any:
    return identity_task(world.website)
