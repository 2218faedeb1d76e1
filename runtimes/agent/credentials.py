"""Credentials of http steps: where their secrets come from and how each kind is applied to a request.

Canopy sends what a step names in the claim's ``context.credentials``: ``kind``, ``source``, non-secret ``fields``
and, for ``source: canopy``, the ``secret`` fields. A ``source: runtime`` credential's secret never reaches Canopy:
the agent reads each secret field from its environment, ``CANOPY_SECRET_<NAME>_<FIELD>`` (upper-cased, every
non-alphanumeric character as ``_``), or from ``<secrets dir>/<name>.json`` (an object of field → value).

Secrets are applied to requests only; they are never variables, so no template can put one in a URL or a log."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

# The secret fields each kind needs (generic: none is applied).
SECRET_FIELDS = {"http_basic": ("password",), "api_key": ("key",), "oauth2_client": ("client_secret",), "generic": ()}


class CredentialError(Exception):
    pass


def env_name(credential: str, field: str) -> str:
    def part(text: str) -> str:
        return re.sub(r"[^A-Z0-9]", "_", text.upper())

    return f"CANOPY_SECRET_{part(credential)}_{part(field)}"


def _secrets_file(secrets_dir: str | None, name: str) -> Path | None:
    if not secrets_dir:
        return None
    # The name as it is, unless it could leave the directory; then its environment-style form.
    safe = name if re.fullmatch(r"[A-Za-z0-9 _.@+-]+", name) and not name.startswith(".") else env_name(name, "")
    return Path(secrets_dir) / f"{safe}.json"


def runtime_secret(
    name: str, fields: tuple[str, ...], *, secrets_dir: str | None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The secret fields of the ``source: runtime`` credential ``name`` from the environment or the secrets file;
    a missing one raises :class:`CredentialError` telling where it was looked for."""
    environ = os.environ if environ is None else environ
    path = _secrets_file(secrets_dir, name)
    from_file: dict[str, Any] = {}
    if path is not None and path.exists():
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise CredentialError(f"credential “{name}”: cannot read {path}: {error}") from error
        if not isinstance(loaded, dict):
            raise CredentialError(f"credential “{name}”: {path} must hold a JSON object of field → value")
        from_file = loaded
    secret: dict[str, str] = {}
    for field in fields:
        value = environ.get(env_name(name, field))
        if value is None and isinstance(from_file.get(field), str):
            value = from_file[field]
        if value is None:
            where = f"the environment variable {env_name(name, field)}"
            where += f" or “{field}” in {path}" if path is not None else " (or start the agent with --secrets-dir)"
            raise CredentialError(
                f"credential “{name}” is kept on the runtime, but its secret “{field}” is not here: set {where}"
            )
        secret[field] = value
    return secret


class Credentials:
    """The credentials of one run, applied to requests. OAuth 2 access tokens are fetched once per run and
    credential (client credentials grant) and reused until they expire."""

    def __init__(self, context: Mapping[str, Any], *, secrets_dir: str | None) -> None:
        self.context = context
        self.secrets_dir = secrets_dir
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.secrets: set[str] = set()  # every secret value applied in this run: never written to a log

    def redact(self, text: str) -> str:
        """``text`` with every secret this run used replaced (a server may echo one in an error body)."""
        with self._lock:
            values = sorted(self.secrets, key=len, reverse=True)
        for value in values:
            text = text.replace(value, "[redacted]")
        return text

    def remember(self, value: str) -> None:
        """Keep ``value`` (a bearer token the run got elsewhere: a workload identity token) out of the logs too."""
        self._remember(value)

    def _remember(self, *values: str) -> None:
        with self._lock:
            self.secrets.update(value for value in values if len(value) >= 4)

    def _get(self, name: str) -> tuple[str, dict[str, Any], dict[str, str]]:
        credential = self.context.get(name)
        if not isinstance(credential, Mapping):
            raise CredentialError(f"credential “{name}” was not sent with the run (is it visible to the task?)")
        kind = str(credential.get("kind") or "")
        if kind not in SECRET_FIELDS:
            raise CredentialError(f"credential “{name}” has an unknown kind “{kind}”")
        fields = dict(credential.get("fields") or {})
        if credential.get("source") == "runtime":
            secret = runtime_secret(name, SECRET_FIELDS[kind], secrets_dir=self.secrets_dir)
        else:
            secret = {str(k): str(v) for k, v in dict(credential.get("secret") or {}).items()}
            for field in SECRET_FIELDS[kind]:
                if not secret.get(field):
                    raise CredentialError(f"credential “{name}” has no secret “{field}”")
        self._remember(*secret.values())
        return kind, fields, secret

    def apply(self, name: str, headers: dict[str, str], client: httpx.Client) -> httpx.Auth | None:
        """Put the credential ``name`` on a request: headers changed in place, or an httpx auth returned."""
        kind, fields, secret = self._get(name)
        if kind == "http_basic":
            return httpx.BasicAuth(str(fields.get("username") or ""), secret["password"])
        if kind == "api_key":
            header = str(fields.get("header") or "Authorization")
            headers[header] = str(fields.get("prefix") or "") + secret["key"]
        elif kind == "oauth2_client":
            headers["Authorization"] = "Bearer " + self._access_token(name, fields, secret, client)
        return None

    def _access_token(self, name: str, fields: dict[str, Any], secret: dict[str, str], client: httpx.Client) -> str:
        with self._lock:
            cached = self._tokens.get(name)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        token_url = str(fields.get("token_url") or "")
        if not token_url.startswith(("https://", "http://")):
            raise CredentialError(f"credential “{name}”: “token_url” must be an http(s) address")
        form = {"grant_type": "client_credentials", "client_id": str(fields.get("client_id") or "")}
        form["client_secret"] = secret["client_secret"]
        scopes = fields.get("scopes") or fields.get("scope")
        if scopes:
            form["scope"] = " ".join(scopes) if isinstance(scopes, list) else str(scopes)
        if fields.get("audience"):
            form["audience"] = str(fields["audience"])
        try:
            response = client.post(token_url, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise CredentialError(f"credential “{name}”: token request failed: {type(error).__name__}") from error
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if response.status_code != 200 or not isinstance(token, str) or not token:
            # The answer's error code only: the body could echo the secret.
            code = answer.get("error") if isinstance(answer, dict) else None
            raise CredentialError(
                f"credential “{name}”: the token endpoint answered HTTP {response.status_code}"
                + (f" ({code})" if isinstance(code, str) else "")
            )
        lifetime = answer.get("expires_in")
        expires = time.monotonic() + (float(lifetime) - 30 if isinstance(lifetime, int | float) else 3600)
        with self._lock:
            self._tokens[name] = (token, expires)
        self._remember(token)
        return token
