"""Races on PostgreSQL (real row locks): concurrent requests of one run never pass its token allowance, and a key
rotation in the middle of issuance never leaves a token whose key is unpublished or whose signed_until is short."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from config.actors import SYSTEM
from runtimes import wakeup
from tests.runtimes.queue_helpers import BASE, agent_client, together
from tests.workload.helpers import AUDIENCE, VERIFIERS, claimed_run, fetch_jwks, identity_task, parts
from workload import keys
from workload.models import IssuedToken, SigningKey

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres(postgres_only: Any) -> Iterator[None]:
    yield
    wakeup.stop_listening()


def test_concurrent_requests_never_pass_the_runs_allowance(world, edge, settings):
    keys.rotate(actor=SYSTEM)
    settings.WORKLOAD_IDENTITY_TOKENS_PER_RUN = 3
    claimed = claimed_run(edge, identity_task(world.website))
    body = {"lease": claimed.lease, "audience": AUDIENCE}

    def ask() -> int:
        client = agent_client(claimed.agent.token)
        return client.post(f"{BASE}runs/{claimed.run.pk}/identity-token", body, format="json").status_code

    results, errors = together([ask] * 8)
    assert errors == []
    assert sorted(results) == [200] * 3 + [429] * 5
    assert IssuedToken.objects.filter(run=claimed.run).count() == 3


def test_a_rotation_during_issuance_keeps_every_tokens_key_published(world, edge, settings):
    settings.WORKLOAD_IDENTITY_TOKENS_PER_RUN = 100
    keys.rotate(actor=SYSTEM)
    SigningKey.objects.filter(state="next").update(created_at=timezone.now() - timedelta(hours=1))
    claimed = claimed_run(edge, identity_task(world.website))
    body = {"lease": claimed.lease, "audience": AUDIENCE}

    def ask() -> str:
        client = agent_client(claimed.agent.token)
        response = client.post(f"{BASE}runs/{claimed.run.pk}/identity-token", body, format="json")
        assert response.status_code == 200, response.content
        return response.json()["token"]

    def rotate() -> str:
        return keys.rotate(actor=SYSTEM).active.kid

    results, errors = together([ask] * 6 + [rotate])
    assert errors == []
    tokens = [r for r in results if isinstance(r, str) and r.count(".") == 2]
    assert len(tokens) == 6
    jwks = fetch_jwks()
    for token in tokens:
        header, claims, _ = parts(token)
        key = SigningKey.objects.get(kid=header["kid"])
        assert key.signed_until >= datetime.fromtimestamp(claims["exp"], tz=UTC)
        for verify in VERIFIERS:
            verify(token, jwks)
