"""End to end: a real agent process runs a task whose http steps carry an ``identity``; the system they call (a real
HTTP server) receives Canopy's tokens as bearer tokens and verifies them, with joserfc and PyJWT, against the JWKS
fetched over HTTP from the live Canopy's discovery document — what a cloud does."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from config.actors import SYSTEM
from resources.models import RunLogLine
from tests.runtimes.e2e.conftest import Canopy
from tests.runtimes.queue_helpers import make_runtime, make_task, queue_run
from tests.workload.helpers import ISSUER, VERIFIERS
from workload import keys
from workload.models import IssuedToken

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_agents_steps_send_tokens_a_verifier_accepts_from_the_published_jwks(
    canopy: Canopy, target: HTTPServer, start_agent: Any
) -> None:
    world = canopy.world
    canopy.read(lambda: keys.rotate(actor=SYSTEM))
    runtime = make_runtime(world.marketing, "edge")
    seen: list[tuple[str, str]] = []

    def capture(request: Request) -> Response:
        seen.append((request.path, request.headers.get("Authorization", "")))
        return Response('{"ok": true}', content_type="application/json")

    target.expect_request("/aws").respond_with_handler(capture)
    target.expect_request("/vault").respond_with_handler(capture)
    aws = {"type": "http", "method": "POST", "url": target.url_for("/aws"), "identity": {"audience": "sts.example"}}
    vault = {"type": "http", "method": "GET", "url": target.url_for("/vault"), "identity": {"audience": "vault"}}
    task = make_task(world.website, "Clouds", steps=[aws, aws, vault])
    run = queue_run(task, runtime)
    agent = start_agent(runtime)

    finished = canopy.finished(run)
    assert finished.status == "succeeded", (finished.error, agent.text)
    assert [path for path, _ in seen] == ["/aws", "/aws", "/vault"]
    (first, second, third) = [header.removeprefix("Bearer ") for _, header in seen]
    assert first == second != third  # the agent reused the fresh token for the same audience

    discovery = httpx.get(f"{canopy.url}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == ISSUER
    jwks = httpx.get(canopy.url + "/.well-known/jwks.json").json()  # the path of discovery's jwks_uri
    assert discovery["jwks_uri"].endswith("/.well-known/jwks.json")
    for verify in VERIFIERS:
        for token, audience in ((first, "sts.example"), (third, "vault")):
            claims = verify(token, jwks, audience=audience)["claims"]
            assert claims["run_id"] == str(run.pk) and claims["task_id"] == str(task.pk)
            assert claims["org_ancestor_ids"] == [str(world.root.pk)] and claims["org_id"] == str(world.marketing.pk)
    assert canopy.read(lambda: IssuedToken.objects.filter(run=run).count()) == 2
    messages = canopy.read(lambda: list(RunLogLine.objects.filter(run=run).values_list("message", flat=True)))
    assert not any(first in m or third in m for m in messages)
    assert first not in agent.text and third not in agent.text
    assert agent.terminate() == 0
