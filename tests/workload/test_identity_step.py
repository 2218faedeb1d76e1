"""The http step's ``identity``: validated when a task is saved (one source of authentication per step), and, in the
agent, a token asked from Canopy for the run and sent as ``Authorization: Bearer`` to a real server
(pytest-httpserver), the token both verifiers accept; reused while fresh, kept out of the logs, refusals failing the
step with Canopy's reason."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from rest_framework.test import APIClient
from werkzeug import Response

from resources import services
from resources.models import Task
from runtimes.agent import client as agent_client
from runtimes.agent.credentials import Credentials
from runtimes.agent.runner import RunExecution, RunOptions
from runtimes.agent.steps import StepEnv, StepError, StepStopped, execute
from tests.runtimes.queue_helpers import BASE, make_task
from tests.workload.helpers import AUDIENCE, VERIFIERS, claimed_run, fetch_jwks, identity_task
from workload.models import IssuedToken


def make_env(identity_token: Any = None) -> StepEnv:
    logged: list[tuple[str, str]] = []
    return StepEnv(
        variables={"env": {}, "run": {"id": "r-1"}},
        lookup_tables={},
        credentials=Credentials(
            {"CRM": {"kind": "api_key", "source": "canopy", "secret": {"key": "k"}}}, secrets_dir=None
        ),
        allow_private=True,
        log=lambda level, message: logged.append((level, message)),
        identity_token=identity_token,
    )


def step(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "url": url, "identity": {"audience": AUDIENCE}, "into": "r", **extra}


# -- the agent's step, on its own ----------------------------------------------------------------------------------


def test_the_step_sends_the_token_it_got_for_its_audience(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/ping", headers={"Authorization": "Bearer token-for-sts"}).respond_with_json({"ok": 1})
    asked: list[str] = []

    def identity_token(audience: str) -> str:
        asked.append(audience)
        return "token-for-sts"

    env = make_env(identity_token)
    execute(step(httpserver.url_for("/ping")), env)
    assert asked == [AUDIENCE] and env.variables["r"]["body"] == {"ok": 1}
    httpserver.check_assertions()


@pytest.mark.parametrize(
    "extra",
    [
        {"headers": {"Authorization": "Basic eDp5"}},
        {"headers": {"authorization": "Bearer mine"}},
        {"credential": "CRM"},
    ],
)
def test_the_step_refuses_a_second_source_of_authentication(httpserver: HTTPServer, extra: dict[str, Any]) -> None:
    asked: list[str] = []
    env = make_env(lambda audience: asked.append(audience) or "t")
    with pytest.raises(StepError, match="Authorization header or credential"):
        execute(step(httpserver.url_for("/ping"), **extra), env)
    assert asked == [] and httpserver.log == []  # no token asked, nothing sent


def test_an_agent_without_a_token_source_fails_the_step(httpserver: HTTPServer) -> None:
    with pytest.raises(StepError, match="cannot get workload identity tokens"):
        execute(step(httpserver.url_for("/ping")), make_env(None))
    assert httpserver.log == []


def test_the_client_does_not_retry_a_spent_allowance(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{agent_client.API_PREFIX}runs/r-1/identity-token", method="POST").respond_with_json(
        {"detail": "This run has had 60 identity tokens: no more.", "code": "identity_token_limit"}, status=429
    )
    canopy = agent_client.CanopyClient(httpserver.url_for("/"), "cna_x")
    with pytest.raises(agent_client.ApiError) as refused:
        canopy.identity_token("r-1", "lease", AUDIENCE)
    assert refused.value.code == "identity_token_limit" and len(httpserver.log) == 1
    canopy.close()


# -- the agent's run against Canopy --------------------------------------------------------------------------------


class BridgeClient(agent_client.CanopyClient):
    """The agent's client, its calls answered by Canopy's views in this process (the test client) instead of HTTP:
    the same paths, bodies and error mapping."""

    def __init__(self, api: APIClient) -> None:
        super().__init__("http://canopy.invalid")
        self.api = api

    def post(self, path: str, body: dict[str, Any], *, timeout: float | None = None, auth: bool = True) -> Any:
        response = self.api.post(BASE + path, body, format="json")
        data = response.json() if response.content else {}
        if response.status_code < 400:
            return data
        if response.status_code == 409 and data.get("code") == "lease_lost":
            raise agent_client.LeaseLost(data["detail"])
        if response.status_code == 401:
            raise agent_client.TokenInvalid(data["detail"])
        raise agent_client.ApiError(response.status_code, data.get("detail", ""), data.get("code", ""))


def execution(claimed: Any, tmp_path: Path) -> RunExecution:
    claim = {"id": str(claimed.run.pk), "lease": claimed.lease, "steps": claimed.run.steps, "context": {}}
    options = RunOptions(
        client=BridgeClient(claimed.agent.client), secrets_dir=None, log_dir=tmp_path, allow_private=True,
        agent_name="test", give_up=threading.Event(), on_token_invalid=lambda: None,
    )  # fmt: skip
    return RunExecution(claim, options)


def test_the_run_sends_a_canopy_token_both_verifiers_accept(world, signing_keys, edge, httpserver, tmp_path):
    seen: list[str] = []

    def handler(request: Any) -> Any:
        seen.append(request.headers.get("Authorization", ""))
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/aws").respond_with_handler(handler)
    task = make_task(world.website, "AWS", steps=[step(httpserver.url_for("/aws"))])
    claimed = claimed_run(edge, task)
    run = execution(claimed, tmp_path)
    env = make_env(run.identity_token)
    execute(claimed.run.steps[0], env)
    execute(claimed.run.steps[0], env)  # a second call reuses the fresh token
    assert len(seen) == 2 and seen[0] == seen[1] and seen[0].startswith("Bearer ey")
    token = seen[0].removeprefix("Bearer ")
    for verify in VERIFIERS:
        claims = verify(token, fetch_jwks())["claims"]
        assert claims["run_id"] == str(claimed.run.pk) and claims["task_id"] == str(task.pk)
    assert IssuedToken.objects.filter(run=claimed.run).count() == 1
    assert run.redact(f"echo {token}") == "echo [redacted]"  # never in the run's log


def test_a_refusal_fails_the_step_with_canopys_reason(world, signing_keys, edge, httpserver, tmp_path):
    # The run's steps declare another audience than the one this step asks for (an older task's run).
    claimed = claimed_run(edge, identity_task(world.website, audience="vault"))
    run = execution(claimed, tmp_path)
    with pytest.raises(StepError, match="No step of this run declares this audience"):
        execute(step(httpserver.url_for("/aws")), make_env(run.identity_token))
    assert httpserver.log == [] and not IssuedToken.objects.exists()


def test_a_lost_lease_drops_the_run(world, signing_keys, edge, httpserver, tmp_path):
    claimed = claimed_run(edge, identity_task(world.website))
    claimed.lease = "stale"
    run = execution(claimed, tmp_path)
    with pytest.raises(StepStopped):
        execute(step(httpserver.url_for("/aws")), make_env(run.identity_token))
    assert run.lost.is_set() and httpserver.log == []


# -- validation when the task is saved -----------------------------------------------------------------------------


GOOD = {"type": "http", "method": "POST", "url": "https://sts.example/x", "identity": {"audience": AUDIENCE}}


def test_a_step_with_an_identity_is_saved(world, api_as):
    response = api_as(world.tenant_admin).post(
        f"/api/v1/projects/{world.website.pk}/tasks", {"name": "Cloud", "steps": [GOOD]}, format="json"
    )
    assert response.status_code == 201 and response.json()["steps"] == [GOOD]


@pytest.mark.parametrize(
    ("identity_step", "message"),
    [
        ({**GOOD, "headers": {"Authorization": "Bearer x"}}, "remove the step's own Authorization header"),
        ({**GOOD, "headers": {"AUTHORIZATION": "Basic x"}}, "remove the step's own Authorization header"),
        ({**GOOD, "credential": "CRM"}, "either an identity or a credential"),
        ({**GOOD, "identity": {"audience": "two words"}}, "without whitespace"),
        ({**GOOD, "identity": {"audience": ""}}, "without whitespace"),
        ({**GOOD, "identity": {"audience": "a" * 256}}, "at most 255 characters"),
        ({**GOOD, "identity": {"audience": 7}}, "“identity.audience” must be"),
        ({**GOOD, "identity": {"audience": "x", "scope": "all"}}, "with an “audience” only"),
        ({**GOOD, "identity": "sts.amazonaws.com"}, "with an “audience” only"),
        ({"type": "log", "message": "hi", "identity": {"audience": "x"}}, "unknown field(s) identity"),
    ],
)
def test_a_bad_identity_is_refused_with_a_clear_400_and_nothing_changes(world, api_as, identity_step, message):
    services.create_credential(actor=world.tenant_admin, org=world.root, name="CRM", kind="generic")
    task = make_task(world.website, "Existing")
    client = api_as(world.tenant_admin)
    response = client.patch(f"/api/v1/tasks/{task.pk}", {"steps": [identity_step]}, format="json")
    assert response.status_code == 400, response.content
    assert message in response.json()["steps"][0] and response.json()["steps"][0].startswith("Step 1:")
    assert Task.objects.get(pk=task.pk).steps == [{"type": "log", "message": "hi"}]
    created = client.post(
        f"/api/v1/projects/{world.website.pk}/tasks", {"name": "New", "steps": [identity_step]}, format="json"
    )
    assert created.status_code == 400 and not Task.objects.filter(name="New").exists()


class UnreachableCanopy(BridgeClient):
    def post(self, path: str, body: dict[str, Any], *, timeout: float | None = None, auth: bool = True) -> Any:
        self.calls = getattr(self, "calls", 0) + 1
        raise agent_client.Unreachable("HTTP 502: bad gateway")


def test_a_stop_ends_the_retries_of_an_unreachable_canopy(world, signing_keys, edge, httpserver, tmp_path):
    claimed = claimed_run(edge, identity_task(world.website))
    run = execution(claimed, tmp_path)
    run.options.client = UnreachableCanopy(claimed.agent.client)
    threading.Timer(1.0, run.cancel).start()  # the user's Stop, a second later
    started = time.monotonic()
    with pytest.raises(StepStopped):
        execute(step(httpserver.url_for("/aws")), make_env(run.identity_token))
    assert time.monotonic() - started < 5 and run.options.client.calls >= 2  # it retried, then stopped at once
    assert httpserver.log == []


def test_the_console_task_form_refuses_identity_beside_authorization_with_the_reason(world, as_user):
    client = as_user(world.tenant_admin)
    page = f"/o/{world.marketing.pk}/p/{world.website.pk}/tasks/"
    bad = json.dumps([{**GOOD, "headers": {"Authorization": "Bearer mine"}}])
    response = client.post(page, {"action": "create", "name": "Cloud", "steps": bad})
    assert response.status_code == 400
    assert "remove the step&#x27;s own Authorization header" in response.content.decode()
    assert not Task.objects.filter(name="Cloud").exists()
    good = client.post(page, {"action": "create", "name": "Cloud", "steps": json.dumps([GOOD])})
    assert good.status_code == 302 and Task.objects.get(name="Cloud").steps == [GOOD]
