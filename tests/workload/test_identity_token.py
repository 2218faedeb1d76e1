"""POST /api/v1/runtime-agent/runs/{id}/identity-token through the real agent API: only the agent holding the run's
lease gets a token, for an audience the run's steps declare; the claims say which run of which org, read at issuance
(a moved org's next token names its new ancestors). Attacks are requests, then the victim's state read back: no
token recorded, the signing key's signed_until untouched."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from orgs import services as org_services
from resources import services as resource_services
from resources.models import Run
from runtimes import reaper
from runtimes.models import Runtime
from tests.factories import make_project
from tests.runtimes.queue_helpers import BASE, enroll, make_runtime, make_task, queue_run
from tests.workload.helpers import (
    AUDIENCE,
    CLAIMS,
    ISSUER,
    VERIFIERS,
    claimed_run,
    fetch_jwks,
    identity_task,
    parts,
)
from workload import services
from workload.models import IssuedToken, SigningKey


def unchanged(signing_keys: Any) -> bool:
    """Nothing was issued: no token recorded and the active key's signed_until never pushed."""
    key = SigningKey.objects.get(kid=signing_keys.active.kid)
    return not IssuedToken.objects.exists() and key.signed_until is None


# -- allowed -------------------------------------------------------------------------------------------------------


def test_the_lease_holder_gets_a_token_both_verifiers_accept_with_exactly_the_claims(world, signing_keys, edge, task):
    claimed = claimed_run(edge, task)
    before = timezone.now().replace(microsecond=0)
    response = claimed.ask()
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"token", "expires_at"}
    jwks = fetch_jwks()
    for verify in VERIFIERS:
        verified = verify(body["token"], jwks)
        header, claims = verified["header"], verified["claims"]
        assert header == {"alg": "RS256", "kid": signing_keys.active.kid, "typ": "JWT"}
        assert set(claims) == CLAIMS
        assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
        assert claims["sub"] == f"org:{world.marketing.pk}:project:{world.website.pk}:task:{task.pk}"
        assert claims["tenant_id"] == str(world.acme.pk) and claims["org_id"] == str(world.marketing.pk)
        assert claims["org_ancestor_ids"] == [str(world.root.pk)]
        assert claims["project_id"] == str(world.website.pk) and claims["task_id"] == str(task.pk)
        assert claims["run_id"] == str(claimed.run.pk)
        assert claims["runtime_id"] == str(edge.pk) and claims["runtime_kind"] == "local"
        assert claims["iat"] == claims["nbf"] and before.timestamp() <= claims["iat"] <= timezone.now().timestamp()
        assert claims["exp"] - claims["iat"] == 300  # WORKLOAD_IDENTITY_TTL_S's default
        assert uuid.UUID(claims["jti"]).version == 4
    issued = IssuedToken.objects.get()
    assert (str(issued.jti), issued.run_id, issued.audience, issued.kid) == (
        claims["jti"], claimed.run.pk, AUDIENCE, signing_keys.active.kid
    )  # fmt: skip
    assert body["token"] not in str(issued.__dict__)  # the token itself is never stored
    key = SigningKey.objects.get(kid=signing_keys.active.kid)
    assert key.signed_until is not None and int(key.signed_until.timestamp()) == claims["exp"]


def test_each_token_has_its_own_jti_and_the_issuance_is_logged_without_the_token(
    world, signing_keys, edge, task, caplog
):
    claimed = claimed_run(edge, task)
    with caplog.at_level("INFO", logger="canopy.workload"):
        first, second = claimed.ask().json()["token"], claimed.ask().json()["token"]
    jtis = {parts(first)[1]["jti"], parts(second)[1]["jti"]}
    assert len(jtis) == 2 and IssuedToken.objects.count() == 2
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "canopy.workload")
    assert all(jti in logged for jti in jtis) and str(claimed.run.pk) in logged and AUDIENCE in logged
    assert first not in logged and second not in logged


def test_a_claimed_run_not_yet_started_gets_a_token_too(world, signing_keys, edge, task):
    agent = enroll(edge)
    run = queue_run(task, edge)
    (claimed,) = agent.claim().json()["runs"]
    assert Run.objects.get(pk=run.pk).status == Run.Status.CLAIMED
    response = agent.post(f"runs/{run.pk}/identity-token", {"lease": claimed["lease"], "audience": AUDIENCE})
    assert response.status_code == 200


def test_the_issuance_costs_a_bounded_number_of_queries(world, signing_keys, edge, task, django_assert_max_num_queries):
    claimed = claimed_run(edge, task)
    claimed.ask()  # warms the agent token's last_used_at
    with django_assert_max_num_queries(9):
        assert claimed.ask().status_code == 200


# -- refused -------------------------------------------------------------------------------------------------------


def test_an_agent_of_another_runtime_gets_404_and_nothing_is_issued(world, signing_keys, edge, task):
    claimed = claimed_run(edge, task)
    other = enroll(make_runtime(world.root, "other"))
    response = claimed.ask(agent=other)
    assert response.status_code == 404
    assert unchanged(signing_keys)


def test_another_tenants_run_is_404_even_with_its_lease(world, signing_keys, edge):
    globex_runtime = make_runtime(world.globex_root, "globex-edge")
    victim = claimed_run(globex_runtime, identity_task(world.globex_project))
    attacker = enroll(edge)
    response = victim.ask(agent=attacker)  # the attacker even knows the run's id and lease
    assert response.status_code == 404
    assert response.json()["detail"] == "No such run on this runtime."
    assert unchanged(signing_keys)


def test_a_wrong_lease_is_409_lease_lost(world, signing_keys, edge, task):
    claimed = claimed_run(edge, task)
    response = claimed.ask(lease="not-the-lease")
    assert response.status_code == 409 and response.json()["code"] == "lease_lost"
    assert unchanged(signing_keys)


def test_a_stale_lease_after_a_reclaim_is_409_and_the_new_holder_gets_its_token(world, signing_keys, edge):
    task = identity_task(world.website, retry_on_lost=True)  # the reaper queues a lost run again
    slow = claimed_run(edge, task)
    Run.objects.filter(pk=slow.run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert reaper.reap().requeued == 1
    fresh_agent = enroll(edge, "fresh")
    (claimed,) = fresh_agent.claim().json()["runs"]
    assert claimed["lease"] != slow.lease
    response = slow.ask()
    assert response.status_code == 409 and response.json()["code"] == "lease_lost"
    assert unchanged(signing_keys)
    fresh = slow.ask(agent=fresh_agent, lease=claimed["lease"])
    assert fresh.status_code == 200


def test_a_finished_run_gets_no_token(world, signing_keys, edge, task):
    claimed = claimed_run(edge, task)
    finish = claimed.agent.post(f"runs/{claimed.run.pk}/finish", {"lease": claimed.lease, "status": "succeeded"})
    assert finish.status_code == 200
    response = claimed.ask()
    assert response.status_code == 409 and response.json()["code"] == "lease_lost"
    assert unchanged(signing_keys)


def test_a_run_whose_stop_was_requested_gets_no_new_token(world, signing_keys, edge, task):
    claimed = claimed_run(edge, task)
    resource_services.stop_run(actor=world.tenant_admin, run=Run.objects.get(pk=claimed.run.pk))
    response = claimed.ask()
    assert response.status_code == 409 and response.json()["code"] == "run_stopping"
    assert unchanged(signing_keys)


def test_a_users_token_is_401_even_a_superusers(world, signing_keys, edge, task, api_as):
    claimed = claimed_run(edge, task)
    for user in (world.tenant_admin, world.superuser):
        response = api_as(user).post(
            f"{BASE}runs/{claimed.run.pk}/identity-token", {"lease": claimed.lease, "audience": AUDIENCE}, format="json"
        )
        assert response.status_code == 401 and response.json()["code"] == "token_invalid"
    assert unchanged(signing_keys)


def test_no_token_at_all_is_401(world, signing_keys, edge, task, api):
    claimed = claimed_run(edge, task)
    response = api.post(f"{BASE}runs/{claimed.run.pk}/identity-token", {"lease": claimed.lease, "audience": AUDIENCE})
    assert response.status_code == 401
    assert unchanged(signing_keys)


def test_an_audience_no_step_declares_is_403(world, signing_keys, edge, task):
    claimed = claimed_run(edge, task)
    response = claimed.ask(audience="https://vault.attacker.example")
    assert response.status_code == 403 and response.json()["code"] == "audience_not_declared"
    assert unchanged(signing_keys)


def test_a_run_without_identity_steps_gets_no_token(world, signing_keys, edge):
    claimed = claimed_run(edge, make_task(world.website, "Plain"))
    response = claimed.ask()
    assert response.status_code == 403 and response.json()["code"] == "audience_not_declared"
    assert unchanged(signing_keys)


@pytest.mark.parametrize("audience", ["", "two words", "tab\there", "x" * 256, "line\nbreak"])
def test_a_malformed_audience_is_400(world, signing_keys, edge, task, audience):
    claimed = claimed_run(edge, task)
    response = claimed.ask(audience=audience)
    assert response.status_code == 400, response.content
    assert unchanged(signing_keys)


def test_an_unknown_run_id_is_404(world, signing_keys, edge, task):
    claimed = claimed_run(edge, task)
    for run_id in (uuid.uuid4(), "not-a-uuid"):
        response = claimed.agent.post(f"runs/{run_id}/identity-token", {"lease": claimed.lease, "audience": AUDIENCE})
        assert response.status_code == 404
    assert unchanged(signing_keys)


def test_a_run_has_a_limited_number_of_tokens(world, signing_keys, edge, task, settings):
    settings.WORKLOAD_IDENTITY_TOKENS_PER_RUN = 3
    claimed = claimed_run(edge, task)
    assert [claimed.ask().status_code for _ in range(3)] == [200, 200, 200]
    refused = claimed.ask()
    assert refused.status_code == 429 and refused.json()["code"] == "identity_token_limit"
    assert IssuedToken.objects.filter(run=claimed.run).count() == 3
    # Another run of the same task has its own allowance.
    other = claimed_run(edge, task, agent=claimed.agent)
    assert other.ask().status_code == 200


def test_without_any_signing_key_the_answer_says_so_and_nothing_is_issued(world, edge, task):
    claimed = claimed_run(edge, task)
    response = claimed.ask()
    assert response.status_code == 503 and response.json()["code"] == "identity_not_configured"
    assert "rotate_workload_keys" in response.json()["detail"]
    assert not IssuedToken.objects.exists()


# -- claims read at issuance ---------------------------------------------------------------------------------------


def test_a_moved_org_gets_new_ancestors_in_its_next_token_and_the_same_subject(world, signing_keys, edge):
    deep = make_project(world.campaigns, "Deep")
    task = identity_task(deep)
    claimed = claimed_run(edge, task)
    jwks = fetch_jwks()
    before = {verify.__name__: verify(claimed.ask().json()["token"], jwks)["claims"] for verify in VERIFIERS}
    org_services.move_org(actor=world.tenant_admin, org=world.campaigns, parent=world.logistics)
    after = {verify.__name__: verify(claimed.ask().json()["token"], jwks)["claims"] for verify in VERIFIERS}
    for name in before:
        assert before[name]["org_ancestor_ids"] == [str(world.root.pk), str(world.marketing.pk), str(world.emea.pk)]
        assert after[name]["org_ancestor_ids"] == [str(world.root.pk), str(world.logistics.pk)]
        assert before[name]["sub"] == after[name]["sub"] == f"org:{world.campaigns.pk}:project:{deep.pk}:task:{task.pk}"
        assert before[name]["org_id"] == after[name]["org_id"] == str(world.campaigns.pk)


def test_a_global_runtime_names_its_kind(world, signing_keys):
    platform = Runtime.objects.get(is_platform_default=True)
    claimed = claimed_run(platform, identity_task(world.website))
    claims = parts(claimed.ask().json()["token"])[1]
    assert claims["runtime_kind"] == "global" and claims["runtime_id"] == str(platform.pk)


# -- settings ------------------------------------------------------------------------------------------------------


def test_the_lifetime_follows_the_setting(world, signing_keys, edge, task, settings):
    settings.WORKLOAD_IDENTITY_TTL_S = 900
    claims = parts(claimed_run(edge, task).ask().json()["token"])[1]
    assert claims["exp"] - claims["iat"] == 900


@pytest.mark.parametrize("seconds", [901, 3600, 59, 0])
def test_a_lifetime_beyond_15_minutes_is_refused_at_run_time_too(settings, seconds):
    settings.WORKLOAD_IDENTITY_TTL_S = seconds
    with pytest.raises(ImproperlyConfigured, match="15 minutes at most"):
        services.ttl()


def test_the_settings_refuse_to_start_with_a_lifetime_beyond_15_minutes():
    env = {**os.environ, "WORKLOAD_IDENTITY_TTL_S": "901", "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "WORKLOAD_IDENTITY_TTL_S must be from 60 to 900" in done.stderr
    env["WORKLOAD_IDENTITY_TTL_S"] = "900"
    fine = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, timeout=60
    )
    assert fine.returncode == 0, fine.stderr
    env.update(WORKLOAD_IDENTITY_TTL_S="300", WORKLOAD_IDENTITY_ALG="HS256")
    bad_alg = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, timeout=60
    )
    assert bad_alg.returncode != 0 and "WORKLOAD_IDENTITY_ALG must be RS256 or ES256" in bad_alg.stderr
