"""A real OpenID Provider for the single sign-on tests: scripts/test_idp/server.mjs (the npm package oidc-provider)
run as a subprocess on loopback, and a person's browser at it (httpx posting its HTML log-in form).

``make_idp(...)`` starts one IdP (several per test for two tenants), waits for its discovery document and stops it at
the end of the test. Without Node or ``npm ci`` in scripts/test_idp the tests are skipped with the reason, except
under CI (CI=true), where they must run: .ci/run installs the package (as the browser tests need chromium there).
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

SERVER_DIR = Path(__file__).resolve().parents[2] / "scripts" / "test_idp"
START_TIMEOUT = 20.0  # seconds; a busy 2-core machine starts node slowly
START_ATTEMPTS = 2  # a node that hangs silently at start (seen once in CI) gets one more chance


def _pump(stream: Any, lines: queue.Queue[str | None]) -> None:
    """Copy the IdP's output into ``lines`` until it closes (None then): the start waits on the queue with a timeout,
    and a full pipe never blocks the server."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def require_idp() -> None:
    """Skip (fail under CI) when the test IdP cannot run here."""
    missing = None
    if shutil.which("node") is None:
        missing = "node is not installed"
    elif not (SERVER_DIR / "node_modules" / "oidc-provider").is_dir():
        missing = "the test IdP is not installed: (cd scripts/test_idp && npm ci)"
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the SSO tests need the test IdP under CI: {missing}")
        pytest.skip(missing)


class IdP:
    """One running test IdP. ``issuer`` stays the same across ``restart`` (same port), as a real IdP's does."""

    def __init__(self, *, clients: list[dict[str, Any]], users: list[dict[str, Any]], claims_in_id_token: bool):
        self.clients = clients
        self.users = users
        self.claims_in_id_token = claims_in_id_token
        self.admin_token = secrets.token_urlsafe(16)
        self._dir = tempfile.mkdtemp(prefix="canopy-idp-")
        self.keys_file = os.path.join(self._dir, "keys.json")
        self.port = 0
        self.process: subprocess.Popen[str] | None = None
        self.kid = ""
        self._drain: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return self.url

    def start(self, *, rotate: bool = False) -> None:
        env = {
            **os.environ,
            "IDP_PORT": str(self.port),
            "IDP_CLIENTS": json.dumps(self.clients),
            "IDP_USERS": json.dumps(self.users),
            "IDP_KEYS_FILE": self.keys_file,
            "IDP_ROTATE": "1" if rotate else "0",
            "IDP_CLAIMS_IN_ID_TOKEN": "1" if self.claims_in_id_token else "0",
            "IDP_ADMIN_TOKEN": self.admin_token,
        }
        if self.port:
            env["IDP_ISSUER"] = self.url
        for attempt in range(START_ATTEMPTS):
            failure = self._launch(env)
            if failure is None:
                return
            self.stop()
            if attempt + 1 == START_ATTEMPTS:
                pytest.fail(f"the test IdP did not start (scripts/test_idp/server.mjs): {failure}")

    def _launch(self, env: dict[str, str]) -> str | None:
        """Start node and wait, at most START_TIMEOUT, for its "listening" line and its discovery document: None
        when it is up, else what went wrong (with what it printed). Its output is read by a thread into a queue, so
        a node that starts but prints nothing costs START_TIMEOUT, never a blocked read until pytest's timeout."""
        self.process = subprocess.Popen(
            ["node", "server.mjs"],
            cwd=SERVER_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        lines: queue.Queue[str | None] = queue.Queue()
        self._drain = threading.Thread(target=_pump, args=(self.process.stdout, lines), daemon=True)
        self._drain.start()
        deadline = time.monotonic() + START_TIMEOUT
        printed: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return f"no 'listening' line within {START_TIMEOUT:.0f} s; it printed: {''.join(printed)[-2000:]!r}"
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                return f"it exited (status {self.process.poll()}); it printed: {''.join(printed)[-2000:]!r}"
            printed.append(line)
            match = re.search(r"listening http://127\.0\.0\.1:(\d+) .* kid (\S+)", line)
            if match:
                self.port, self.kid = int(match.group(1)), match.group(2)
                break
        while time.monotonic() < deadline:  # the discovery document answers: the provider is up
            try:
                if httpx.get(f"{self.url}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return None
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return "its discovery document did not answer"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._drain is not None:
            self._drain.join(timeout=5)
            self._drain = None
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def restart(self, *, rotate: bool) -> None:
        """Stop and start again on the same port; ``rotate``: with a new signing key (the old one stays published)."""
        self.stop()
        self.start(rotate=rotate)

    def set_users(self, users: list[dict[str, Any]]) -> None:
        """Change the IdP's people (their groups, say) without a restart."""
        self.users = users
        response = httpx.post(
            f"{self.url}/__test/users", json=users, headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        assert response.status_code == 204

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- a person's browser at the IdP ----------------------------------------------------------------------------

    def log_in(self, authorize_url: str, username: str, password: str = "password") -> str:
        """Follow the authorization request through the IdP's log-in form; the URL the IdP sends the browser back
        to (the relying party's callback with ``code``, ``state`` and ``iss``)."""
        with httpx.Client(timeout=10) as browser:
            response = browser.get(authorize_url)
            for _ in range(10):
                if response.status_code in (302, 303):
                    location = urljoin(str(response.url), response.headers["location"])
                    if not location.startswith(self.url):
                        return location  # back to the relying party
                    response = browser.get(location)
                    continue
                assert response.status_code == 200, response.text[:500]
                action = re.search(r'<form method="post" action="([^"]+)"', response.text)
                assert action is not None, response.text[:500]
                if "Wrong username or password" in response.text:
                    raise AssertionError("the test IdP refused the credentials")
                response = browser.post(
                    urljoin(str(response.url), action.group(1)), data={"username": username, "password": password}
                )
            raise AssertionError("the IdP never sent the browser back")


def callback_path(url: str) -> str:
    """The path and query of a callback URL, for Django's test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


@pytest.fixture
def make_idp() -> Iterator[Any]:
    """make_idp(clients=[...], users=[...], claims_in_id_token=False) -> a started IdP, stopped after the test."""
    started: list[IdP] = []

    def make(*, clients: list[dict[str, Any]], users: list[dict[str, Any]], claims_in_id_token: bool = False) -> IdP:
        require_idp()
        idp = IdP(clients=clients, users=users, claims_in_id_token=claims_in_id_token)
        started.append(idp)
        idp.start()
        return idp

    yield make
    for idp in started:
        idp.cleanup()
