"""Helpers of the workload identity tests: two independent verifiers (joserfc and PyJWT) that fetch the keys from
the JWKS endpoint's JSON, pinned to RS256, as a cloud or Vault would; a run claimed by an enrolled agent; forgeries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
from joserfc import jwt as jose_jwt
from joserfc.errors import BadSignatureError, JoseError, UnsupportedAlgorithmError
from joserfc.jwk import KeySet
from rest_framework.test import APIClient

from resources.models import Run, Task
from runtimes.models import Runtime
from tests.runtimes.queue_helpers import Agent, enroll, make_task, queue_run

ISSUER = "https://canopy.example"
AUDIENCE = "sts.amazonaws.com"
IDENTITY_STEP = {"type": "http", "method": "GET", "url": "https://api.example/ping", "identity": {"audience": AUDIENCE}}
CLAIMS = {
    "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "tenant_id", "org_id", "org_ancestor_ids", "project_id",
    "task_id", "run_id", "runtime_id", "runtime_kind",
}  # fmt: skip


def fetch_jwks(client: Any = None) -> dict[str, Any]:
    response = (client or APIClient()).get("/.well-known/jwks.json")
    assert response.status_code == 200
    return json.loads(response.content)


def verify_with_joserfc(token: str, jwks: dict[str, Any], audience: str = AUDIENCE, alg: str = "RS256") -> Any:
    decoded = jose_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=[alg])
    registry = jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": audience},
        sub={"essential": True},
        exp={"essential": True},
        nbf={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
    )
    registry.validate(decoded.claims)
    return {"header": decoded.header, "claims": decoded.claims}


def verify_with_pyjwt(token: str, jwks: dict[str, Any], audience: str = AUDIENCE, alg: str = "RS256") -> Any:
    header = pyjwt.get_unverified_header(token)
    key = pyjwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = pyjwt.decode(
        token,
        key.key,
        algorithms=[alg],
        audience=audience,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
    )
    return {"header": header, "claims": claims}


VERIFIERS = [verify_with_joserfc, verify_with_pyjwt]
# What the verifiers raise when they refuse a token: for an algorithm other than the pinned RS256, for a signature
# that does not match, for anything at all.
ALG_REFUSED = (UnsupportedAlgorithmError, pyjwt.InvalidAlgorithmError)
SIGNATURE_REFUSED = (BadSignatureError, pyjwt.InvalidSignatureError)
REFUSED = (JoseError, pyjwt.PyJWTError, ValueError, KeyError)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
        signature,
    )


def forge_hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


@dataclass
class Claimed:
    agent: Agent
    run: Run
    lease: str

    def ask(self, audience: str = AUDIENCE, lease: str | None = None, agent: Agent | None = None) -> Any:
        return (agent or self.agent).post(
            f"runs/{self.run.pk}/identity-token",
            {"lease": self.lease if lease is None else lease, "audience": audience},
        )


def claimed_run(runtime: Runtime, task: Task, agent: Agent | None = None) -> Claimed:
    """A run of ``task`` queued on ``runtime`` and claimed (started) by an agent of it."""
    agent = agent or enroll(runtime)
    run = queue_run(task, runtime)
    response = agent.post("claim", {"instance": str(agent.instance.pk), "max": 1, "start": True})
    assert response.status_code == 200, response.content
    (claimed,) = response.json()["runs"]
    assert claimed["id"] == str(run.pk)
    return Claimed(agent, Run.objects.get(pk=run.pk), claimed["lease"])


def identity_task(project: Any, name: str = "Call AWS", audience: str = AUDIENCE, **fields: Any) -> Task:
    step = {**IDENTITY_STEP, "identity": {"audience": audience}}
    return make_task(project, name, steps=[step], **fields)
