"""The agent against Canopy itself: runs queued on a runtime are executed by a real agent process, whose results and
log lines are read back through the API; Stop, kill -9, a revoked token, a used enrollment token, a sovereign
runtime."""

from __future__ import annotations

import base64
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from django.core import serializers
from django.utils import timezone
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from config.actors import SYSTEM
from resources import services
from resources.models import Credential, Run, RunLogLine
from runtimes.models import AgentToken, Runtime
from runtimes.tokens import issue_enrollment_token
from tests.runtimes.e2e.conftest import Canopy
from tests.runtimes.queue_helpers import make_runtime, make_task, queue_run

pytestmark = pytest.mark.django_db(transaction=True)


def slow_handler(seconds: float) -> Any:
    def handle(request: Request) -> Response:
        time.sleep(seconds)
        return Response("slow answer")

    return handle


def wait_until(predicate: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_an_agent_runs_http_lookup_transform_and_log_steps(
    canopy: Canopy, target: HTTPServer, start_agent: Any
) -> None:
    world = canopy.world
    runtime = make_runtime(world.marketing, "edge")
    services.create_credential(
        actor=SYSTEM, org=world.marketing, name="crm", kind="http_basic", fields={"username": "bot"},
        secret={"password": "e2e-Secret-771"},
    )  # fmt: skip
    services.create_lookup_table(
        actor=SYSTEM, org=world.marketing, name="regions",
        rows=[{"key": "eu", "value": "Frankfurt"}, {"key": "us", "value": "Virginia"}],
    )  # fmt: skip
    services.create_env_var(actor=SYSTEM, org=world.marketing, key="REGION", value="eu")
    task = make_task(world.website, "Orders", steps=[
        {"type": "http", "method": "GET", "name": "fetch orders", "credential": "crm", "into": "resp",
         "url": target.url_for("/orders") + "?run={{ run.id }}&region={{ env.REGION }}"},
        {"type": "lookup", "table": "regions", "key": "{{ resp.body.region }}", "into": "dc"},
        {"type": "transform", "expression": "resp.body.items[?qty > `0`].sku", "into": "skus"},
        {"type": "log", "message": "{{ dc }} ships {{ length(skus) }} sku(s): {{ skus }}", "level": "warning"},
    ])  # fmt: skip
    run = queue_run(task, runtime)
    target.expect_request("/orders", query_string={"run": str(run.pk), "region": "eu"}).respond_with_json(
        {"region": "eu", "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 0}]}
    )
    agent = start_agent(runtime, "--name", "edge-e2e")

    canopy.finished(run)
    answer = canopy.api.get(f"runs/{run.pk}").json()
    assert answer["status"] == "succeeded", answer
    fresh = canopy.run(run)
    assert [step["status"] for step in fresh.step_results] == ["succeeded"] * 4
    assert fresh.attempt == 1 and fresh.instance is not None and fresh.instance.hostname == "edge-e2e"
    lines = canopy.api.get(f"runs/{run.pk}/logs", params={"page_size": 200}).json()["results"]
    messages = [line["message"] for line in lines]
    assert any(m == 'Frankfurt ships 1 sku(s): ["A-1"]' for m in messages), messages
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert any(line["level"] == "warning" for line in lines)
    request = target.log[0][0]
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"bot:e2e-Secret-771").decode()
    assert agent.terminate() == 0
    assert f"finished run {run.pk}: succeeded" in agent.text


def test_stop_ends_a_slow_step_within_a_heartbeat(canopy: Canopy, target: HTTPServer, start_agent: Any) -> None:
    runtime = make_runtime(canopy.world.marketing, "edge")
    target.expect_request("/slow").respond_with_handler(slow_handler(20))
    task = make_task(canopy.world.website, "Slow", steps=[
        {"type": "http", "method": "GET", "url": target.url_for("/slow"), "name": "wait"},
        {"type": "log", "message": "never"},
    ])  # fmt: skip
    run = queue_run(task, runtime)
    start_agent(runtime)
    canopy.wait_run(run, lambda r: r.status == Run.Status.RUNNING)
    time.sleep(0.5)
    asked = time.monotonic()
    assert canopy.api.post(f"runs/{run.pk}/stop").status_code == 200
    fresh = canopy.finished(run, timeout=10)
    assert time.monotonic() - asked < 1 + 2.5  # one heartbeat (1 s) and the time to report
    assert fresh.status == Run.Status.STOPPED
    assert [step["status"] for step in fresh.step_results] == ["stopped", "skipped"]


def test_kill_9_leaves_the_run_lost_then_a_second_agent_takes_the_requeued_run(
    canopy: Canopy, target: HTTPServer, start_agent: Any, settings: Any
) -> None:
    settings.RUNTIME_LEASE_S = 6  # renewed every second: room for a slow, busy test machine
    # A killed agent's long poll goes on in the server until its wait ends, and may claim the requeued run for the
    # dead agent (then lost again). Kept shorter than the lease here; the server gap is in the report.
    settings.RUNTIME_CLAIM_MAX_WAIT_S = 2
    runtime = make_runtime(canopy.world.marketing, "edge")
    hits: list[str] = []

    def count(request: Request) -> Response:
        hits.append(request.args["attempt"])
        if request.args["attempt"] == "1":
            time.sleep(30)
        return Response("ok")

    target.expect_request("/work").respond_with_handler(count)
    steps = [{"type": "http", "method": "GET", "url": target.url_for("/work") + "?attempt={{ run.attempt }}"}]
    retried = queue_run(make_task(canopy.world.website, "Idempotent", steps=steps, retry_on_lost=True), runtime)
    first = start_agent(runtime, "--name", "first")
    canopy.wait_run(retried, lambda r: r.status == Run.Status.RUNNING)
    wait_until(lambda: hits == ["1"])  # mid-request
    first.process.send_signal(signal.SIGKILL)
    first.wait(5)
    # Nobody renews the lease: once it expired, the reaper (run by the next agent's calls) queues the run again.
    second = start_agent(runtime, "--name", "second")
    done = canopy.finished(retried, timeout=40)
    history = canopy.read(lambda: list(RunLogLine.objects.filter(run=retried).order_by("seq").values_list("message")))
    assert (done.status, done.attempt) == (Run.Status.SUCCEEDED, 2), (history, first.text, second.text)
    assert hits == ["1", "2"]
    assert second.terminate() == 0

    # Without retry_on_lost, a killed agent's run ends lost.
    once = queue_run(make_task(canopy.world.website, "Once", steps=[
        {"type": "http", "method": "GET", "url": target.url_for("/work") + "?attempt=1"},
    ]), runtime)  # fmt: skip
    third = start_agent(runtime, "--name", "third")
    canopy.wait_run(once, lambda r: r.status == Run.Status.RUNNING)
    wait_until(lambda: len(hits) == 3)
    third.process.send_signal(signal.SIGKILL)
    third.wait(5)
    fourth = start_agent(runtime, "--name", "fourth")
    lost = canopy.finished(once, timeout=40)
    assert lost.status == Run.Status.LOST and lost.attempt == 1
    assert fourth.terminate() == 0


def test_a_revoked_token_stops_the_agent_and_it_claims_nothing_more(
    canopy: Canopy, start_agent: Any, settings: Any
) -> None:
    settings.RUNTIME_CLAIM_MAX_WAIT_S = 2
    runtime = make_runtime(canopy.world.marketing, "edge")
    agent = start_agent(runtime)
    task = make_task(canopy.world.website, "Ping", steps=[{"type": "log", "message": "ping"}])
    first = canopy.read(lambda: queue_run(task, runtime))
    assert canopy.finished(first).status == Run.Status.SUCCEEDED
    canopy.read(lambda: AgentToken.objects.filter(runtime=runtime).update(revoked_at=timezone.now()))
    assert agent.wait(15) == 3
    assert "token revoked or expired" in agent.text
    # A long poll the agent began before the revocation may still be waiting in the server: it is let run out
    # (the server authenticates a claim when it begins, not again when it takes runs; see the report).
    time.sleep(settings.RUNTIME_CLAIM_MAX_WAIT_S + 0.5)
    later = canopy.read(lambda: queue_run(task, runtime))
    time.sleep(2)
    assert canopy.run(later).status == Run.Status.QUEUED


def test_an_expired_or_used_enrollment_token_exits_with_canopys_message(
    canopy: Canopy, start_agent: Any, tmp_path: Path
) -> None:
    runtime = make_runtime(canopy.world.marketing, "edge")
    token, raw = issue_enrollment_token(runtime, actor=SYSTEM)
    first = start_agent(runtime, token=raw)
    deadline = time.monotonic() + 15
    while not (first.state_dir / "agent.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert first.terminate() == 0
    used = start_agent(runtime, token=raw)  # a fresh state directory, the same (now used) token
    assert used.wait(15) == 2
    assert "enrollment refused:" in used.text
    message = used.text.split("enrollment refused:", 1)[1].splitlines()[0].strip()

    _, expired_raw = issue_enrollment_token(runtime, actor=SYSTEM)
    canopy.read(lambda: runtime.enrollment_tokens.exclude(pk=token.pk).update(expires_at=timezone.now()))
    expired = start_agent(runtime, token=expired_raw)
    assert expired.wait(15) == 2
    assert message in expired.text  # one message for used, expired and unknown
    assert not (expired.state_dir / "agent.json").exists()


def test_a_sovereign_run_leaves_no_log_body_and_no_secret_in_the_database(
    canopy: Canopy, target: HTTPServer, start_agent: Any, tmp_path: Path
) -> None:
    world = canopy.world
    runtime = make_runtime(world.marketing, "vault", sovereign=True)
    credential = services.create_credential(
        actor=SYSTEM, org=world.marketing, name="bank", kind="api_key", fields={"header": "X-Key"},
        secret={"key": "placeholder"},
    )  # fmt: skip
    # Kept on the runtime: Canopy holds no secret (the credential services' source field is another part's).
    Credential.objects.filter(pk=credential.pk).update(
        source=Credential.Source.RUNTIME, secret_ciphertext="", secret_names=[]
    )
    target.expect_request("/pay").respond_with_json({"iban": "DE89-3704-0044-0532-0130-00", "owner": "Zoë Payload"})
    target.expect_request("/refuse").respond_with_data("card 4111-1111-1111-1111 declined", status=402)
    task = make_task(world.website, "Payroll", steps=[
        {"type": "http", "method": "POST", "url": target.url_for("/pay"), "credential": "bank", "into": "paid"},
        {"type": "log", "message": "paid {{ paid.body.owner }} at {{ paid.body.iban }}"},
        {"type": "http", "method": "POST", "url": target.url_for("/refuse"), "name": "charge card"},
    ])  # fmt: skip
    run = queue_run(task, runtime)
    log_dir = tmp_path / "sovereign"
    agent = start_agent(runtime, "--log-dir", str(log_dir), env={"CANOPY_SECRET_BANK_KEY": "rt-Secret-9Q"})
    done = canopy.finished(run)
    assert done.status == Run.Status.FAILED
    assert done.log_location == str(log_dir / f"{run.pk}.log")
    local = Path(done.log_location).read_text()
    assert "paid Zoë Payload at DE89-3704-0044-0532-0130-00" in local and "4111-1111-1111-1111" in local
    assert target.log[0][0].headers["X-Key"] == "rt-Secret-9Q"
    assert agent.terminate() == 0

    def dump() -> str:
        models = [Run, RunLogLine, Credential, Runtime]
        rows = [row for model in models for row in model.objects.all()]
        return serializers.serialize("json", rows) + json.dumps(list(RunLogLine.objects.values()), default=str)

    everything = canopy.read(dump)
    for payload in ("Zoë Payload", "DE89-3704", "4111-1111", "rt-Secret-9Q", "declined"):
        assert payload not in everything
    messages = canopy.read(lambda: list(RunLogLine.objects.filter(run=run).values_list("message", flat=True)))
    assert messages.count("") >= 4  # the agent's lines: level, time and seq only
