"""The agent's steps against real HTTP servers (pytest-httpserver): templates, http options, credentials of every
kind (the OAuth 2 token fetched once per run), runtime-kept secrets, lookups, transforms, logs, the SSRF guard and
the interruption of a slow request. No Django here: the agent runs without it."""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from runtimes.agent import netguard, templates
from runtimes.agent.credentials import Credentials, env_name
from runtimes.agent.steps import StepEnv, StepError, StepStopped, describe, execute


@pytest.fixture
def slow_server() -> Iterator[HTTPServer]:
    """A threaded server: a slow answer does not hold up the next request."""
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def make_env(credentials: dict[str, Any] | None = None, *, allow_private: bool = True, **kwargs: Any) -> StepEnv:
    logged: list[tuple[str, str]] = []
    env = StepEnv(
        variables=kwargs.pop("variables", {"env": {"REGION": "eu"}, "run": {"id": "r-1", "attempt": 1}}),
        lookup_tables=kwargs.pop("lookup_tables", {}),
        credentials=Credentials(credentials or {}, secrets_dir=kwargs.pop("secrets_dir", None)),
        allow_private=allow_private,
        log=lambda level, message: logged.append((level, message)),
    )
    env.logged = logged
    return env


# -- templates -----------------------------------------------------------------------------------------------------


def test_templates_are_jmespath_over_the_variables_never_code() -> None:
    variables = {"resp": {"body": {"id": 42, "tags": ["a", "b"], "name": "Zoë"}}, "env": {"REGION": "eu"}}
    assert templates.render("/orders/{{ resp.body.id }}?r={{env.REGION}}", variables) == "/orders/42?r=eu"
    assert templates.render("{{ resp.body.tags }}", variables) == '["a","b"]'
    assert templates.render("{{ resp.body.name }}", variables) == "Zoë"
    assert templates.render("{{ missing.thing }}", variables) == "null"
    # Python is not evaluated: this is an invalid JMESPath expression, reported as such.
    with pytest.raises(templates.TemplateError, match="bad expression"):
        templates.render("{{ __import__('os').system('true') }}", variables)
    body = templates.render_json({"id": "{{ resp.body.id }}", "label": "n{{ resp.body.id }}", "k": [1]}, variables)
    assert body == {"id": 42, "label": "n42", "k": [1]}


def test_describe_numbers_steps_from_one() -> None:
    assert describe(1, {"type": "http", "name": "fetch orders"}) == "step 2 (fetch orders)"
    assert describe(0, {"type": "log"}) == "step 1 (log)"


# -- http ----------------------------------------------------------------------------------------------------------


def test_http_step_renders_and_parses_json_into_a_variable(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        "/orders/7", method="POST", headers={"X-Region": "eu"}, json={"run": "r-1", "n": 7}
    ).respond_with_json({"ok": True, "items": [1, 2]}, status=201, headers={"X-Trace": "t1"})
    env = make_env(variables={"env": {"REGION": "eu"}, "run": {"id": "r-1"}, "order": {"id": 7}})
    step = {
        "type": "http", "method": "POST", "url": httpserver.url_for("/orders/{{ order.id }}"),
        "headers": {"X-Region": "{{ env.REGION }}"}, "body": {"run": "{{ run.id }}", "n": "{{ order.id }}"},
        "into": "resp",
    }  # fmt: skip
    summary = execute(step, env)
    assert "→ 201" in summary
    assert env.variables["resp"]["status"] == 201
    assert env.variables["resp"]["body"] == {"ok": True, "items": [1, 2]}
    assert env.variables["resp"]["headers"]["x-trace"] == "t1"
    httpserver.check_assertions()


def test_http_step_fails_on_an_unexpected_status_naming_it(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/boom").respond_with_data("database down", status=500)
    with pytest.raises(StepError, match=r"HTTP 500 INTERNAL SERVER ERROR: database down"):
        execute({"type": "http", "method": "GET", "url": httpserver.url_for("/boom")}, make_env())
    httpserver.expect_request("/gone").respond_with_data("", status=404)
    env = make_env()
    execute(
        {"type": "http", "method": "GET", "url": httpserver.url_for("/gone"), "expect_status": [404], "into": "r"}, env
    )
    assert env.variables["r"]["status"] == 404


def test_http_step_does_not_follow_redirects(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hop").respond_with_data("", status=302, headers={"Location": "http://169.254.169.254/"})
    with pytest.raises(StepError, match="HTTP 302"):
        execute({"type": "http", "method": "GET", "url": httpserver.url_for("/hop")}, make_env())
    assert len(httpserver.log) == 1


def test_http_step_caps_the_answer_size(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data("x" * 5000)
    with pytest.raises(StepError, match="larger than max_bytes"):
        execute({"type": "http", "method": "GET", "url": httpserver.url_for("/big"), "max_bytes": 1000}, make_env())
    env = make_env()
    execute({"type": "http", "method": "GET", "url": httpserver.url_for("/big"), "into": "r"}, env)
    assert env.variables["r"]["body"] == "x" * 5000


def test_http_step_timeout_ends_a_slow_answer(slow_server: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(5)
        return Response("late")

    slow_server.expect_request("/slow").respond_with_handler(slow)
    started = time.monotonic()
    with pytest.raises(StepError, match="within 1 s"):
        execute({"type": "http", "method": "GET", "url": slow_server.url_for("/slow"), "timeout_s": 1}, make_env())
    assert time.monotonic() - started < 3


def test_a_stop_cuts_a_slow_request_within_a_second(slow_server: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(6)
        return Response("late")

    slow_server.expect_request("/slow").respond_with_handler(slow)
    env = make_env()
    threading.Timer(0.5, env.interrupt, args=("stopped on request",)).start()
    started = time.monotonic()
    with pytest.raises(StepStopped, match="stopped on request"):
        execute({"type": "http", "method": "GET", "url": slow_server.url_for("/slow")}, env)
    assert time.monotonic() - started < 1.5


# -- the SSRF guard ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
     "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "240.0.0.1"],
)  # fmt: skip
def test_forbidden_addresses(address: str) -> None:
    assert netguard.is_forbidden(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_global_addresses_are_allowed(address: str) -> None:
    assert not netguard.is_forbidden(address)


def test_a_global_runtime_refuses_a_host_resolving_to_loopback(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/internal").respond_with_data("secret admin page")
    for host in ("127.0.0.1", "localhost"):
        url = f"http://{host}:{httpserver.port}/internal"
        with pytest.raises(StepError, match="private, loopback"):
            execute({"type": "http", "method": "GET", "url": url}, make_env(allow_private=False))
    assert httpserver.log == []  # nothing reached the server


def test_the_guard_checks_where_it_connects_not_only_the_first_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    # One name, two addresses, one of them private: refused (every address is checked).
    def resolve(host: str, port: int, **kwargs: Any) -> list[Any]:
        return [(2, 1, 6, "", ("93.184.216.34", port)), (2, 1, 6, "", ("10.0.0.5", port))]

    monkeypatch.setattr(netguard.socket, "getaddrinfo", resolve)
    with pytest.raises(netguard.BlockedAddress, match=r"10\.0\.0\.5"):
        netguard.GuardedBackend(allow_private=False).resolve("rebind.example", 80)


def test_the_oauth2_token_request_is_guarded_too(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/token").respond_with_json({"access_token": "t"})
    credentials = {"api": {"kind": "oauth2_client", "source": "canopy", "secret": {"client_secret": "s"},
                           "fields": {"token_url": httpserver.url_for("/token"), "client_id": "c"}}}  # fmt: skip
    step = {"type": "http", "method": "GET", "url": "https://93.184.216.34.invalid/", "credential": "api"}
    with pytest.raises(StepError):
        execute(step, make_env(credentials, allow_private=False))
    assert httpserver.log == []


# -- credentials ---------------------------------------------------------------------------------------------------


def _echo(httpserver: HTTPServer, path: str) -> None:
    def echo(request: Request) -> Response:
        return Response(json.dumps(dict(request.headers)), content_type="application/json")

    httpserver.expect_request(path).respond_with_handler(echo)


def test_http_basic_and_api_key_credentials(httpserver: HTTPServer) -> None:
    _echo(httpserver, "/h")
    credentials = {
        "crm": {"kind": "http_basic", "source": "canopy", "fields": {"username": "bot"}, "secret": {"password": "pw"}},
        "key": {"kind": "api_key", "source": "canopy", "fields": {"header": "X-Api-Key"}, "secret": {"key": "k1"}},
        "bearer": {"kind": "api_key", "source": "canopy", "fields": {"prefix": "Bearer "}, "secret": {"key": "k2"}},
        "gen": {"kind": "generic", "source": "canopy", "fields": {"a": "b"}, "secret": {"token": "never-sent"}},
    }
    env = make_env(credentials)
    for name in credentials:
        execute(
            {"type": "http", "method": "GET", "url": httpserver.url_for("/h"), "credential": name, "into": name}, env
        )
    assert env.variables["crm"]["body"]["Authorization"] == "Basic " + base64.b64encode(b"bot:pw").decode()
    assert env.variables["key"]["body"]["X-Api-Key"] == "k1"
    assert env.variables["bearer"]["body"]["Authorization"] == "Bearer k2"
    assert "never-sent" not in json.dumps(env.variables["gen"]["body"])
    # Secrets are applied to requests, never put in the variables templates can read.
    assert "credentials" not in env.variables


def test_oauth2_client_credentials_token_is_fetched_once_per_run(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        "/token", method="POST",
        data="grant_type=client_credentials&client_id=cid&client_secret=cs&scope=read+write&audience=orders",
    ).respond_with_json({"access_token": "AT-1", "expires_in": 3600})  # fmt: skip
    _echo(httpserver, "/api")
    credentials = {"api": {"kind": "oauth2_client", "source": "canopy", "secret": {"client_secret": "cs"},
                           "fields": {"token_url": httpserver.url_for("/token"), "client_id": "cid",
                                      "scopes": ["read", "write"], "audience": "orders"}}}  # fmt: skip
    env = make_env(credentials)
    for _ in range(3):
        execute(
            {"type": "http", "method": "GET", "url": httpserver.url_for("/api"), "credential": "api", "into": "r"}, env
        )
        assert env.variables["r"]["body"]["Authorization"] == "Bearer AT-1"
    assert [entry[0].path for entry in httpserver.log].count("/token") == 1


def test_oauth2_token_failure_says_so_without_the_body(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/token").respond_with_json({"error": "invalid_client", "echo": "cs-SECRET"}, status=401)
    credentials = {"api": {"kind": "oauth2_client", "source": "canopy", "secret": {"client_secret": "cs-SECRET"},
                           "fields": {"token_url": httpserver.url_for("/token"), "client_id": "cid"}}}  # fmt: skip
    with pytest.raises(StepError) as failure:
        execute(
            {"type": "http", "method": "GET", "url": httpserver.url_for("/x"), "credential": "api"},
            make_env(credentials),
        )
    assert "HTTP 401 (invalid_client)" in str(failure.value)
    assert "cs-SECRET" not in str(failure.value)


def test_runtime_kept_secrets_come_from_the_environment_or_the_secrets_dir(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    _echo(httpserver, "/h")
    credentials = {
        "Local CRM": {"kind": "http_basic", "source": "runtime", "fields": {"username": "bot"}},
        "filed": {"kind": "api_key", "source": "runtime", "fields": {"header": "X-Key"}},
    }
    assert env_name("Local CRM", "password") == "CANOPY_SECRET_LOCAL_CRM_PASSWORD"
    monkeypatch.setenv("CANOPY_SECRET_LOCAL_CRM_PASSWORD", "from-env")
    (tmp_path / "filed.json").write_text(json.dumps({"key": "from-file"}))
    env = make_env(credentials, secrets_dir=str(tmp_path))
    execute(
        {"type": "http", "method": "GET", "url": httpserver.url_for("/h"), "credential": "Local CRM", "into": "a"}, env
    )
    execute({"type": "http", "method": "GET", "url": httpserver.url_for("/h"), "credential": "filed", "into": "b"}, env)
    assert env.variables["a"]["body"]["Authorization"] == "Basic " + base64.b64encode(b"bot:from-env").decode()
    assert env.variables["b"]["body"]["X-Key"] == "from-file"


def test_a_missing_runtime_secret_fails_the_step_saying_where_to_put_it(httpserver: HTTPServer, tmp_path: Any) -> None:
    credentials = {"crm": {"kind": "http_basic", "source": "runtime", "fields": {"username": "bot"}}}
    step = {"type": "http", "method": "GET", "url": httpserver.url_for("/h"), "credential": "crm"}
    with pytest.raises(StepError, match=r"CANOPY_SECRET_CRM_PASSWORD or “password” in .*crm\.json"):
        execute(step, make_env(credentials, secrets_dir=str(tmp_path)))
    with pytest.raises(StepError, match="not sent with the run"):
        execute({**step, "credential": "other"}, make_env(credentials))
    assert httpserver.log == []


def test_a_secrets_file_name_cannot_leave_the_directory(tmp_path: Any) -> None:
    outside = tmp_path / "evil.json"
    outside.write_text(json.dumps({"password": "x"}))
    inside = tmp_path / "secrets"
    inside.mkdir()
    credentials = {"../evil": {"kind": "http_basic", "source": "runtime", "fields": {}}}
    with pytest.raises(StepError, match="CANOPY_SECRET____EVIL_PASSWORD"):
        execute({"type": "http", "method": "GET", "url": "http://127.0.0.1:9/", "credential": "../evil"},
                make_env(credentials, secrets_dir=str(inside)))  # fmt: skip


# -- lookup, transform, log ----------------------------------------------------------------------------------------


def test_lookup_transform_and_log() -> None:
    env = make_env(lookup_tables={"regions": {"eu": "Frankfurt", "us": "Virginia"}})
    env.variables["order"] = {"items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 0}], "region": "eu"}
    execute({"type": "lookup", "table": "regions", "key": "{{ order.region }}", "into": "dc"}, env)
    assert env.variables["dc"] == "Frankfurt"
    execute({"type": "lookup", "table": "regions", "key": "apac", "default": "nowhere", "into": "dc2"}, env)
    assert env.variables["dc2"] == "nowhere"
    with pytest.raises(StepError, match="no row “apac” in lookup table “regions”"):
        execute({"type": "lookup", "table": "regions", "key": "apac"}, env)
    with pytest.raises(StepError, match="lookup table “other” was not sent"):
        execute({"type": "lookup", "table": "other", "key": "x"}, env)
    execute({"type": "transform", "expression": "order.items[?qty > `0`].sku", "into": "skus"}, env)
    assert env.variables["skus"] == ["a"]
    execute({"type": "log", "message": "{{ dc }} has {{ length(skus) }} sku(s)", "level": "warning"}, env)
    assert env.logged == [("warning", "Frankfurt has 1 sku(s)")]
    with pytest.raises(StepError, match="bad expression"):
        execute({"type": "transform", "expression": "items[?", "into": "x"}, env)


# -- TLS -----------------------------------------------------------------------------------------------------------


def _self_signed(tmp_path: Any) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


def test_https_certificates_are_verified(tmp_path: Any) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = HTTPServer(ssl_context=context)
    server.start()
    try:
        server.expect_request("/tls").respond_with_data("secret over tls")
        step = {"type": "http", "method": "GET", "url": f"https://localhost:{server.port}/tls"}
        with pytest.raises(StepError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            execute(step, make_env())
        assert server.log == []  # the handshake failed: no request was sent
    finally:
        server.stop()
