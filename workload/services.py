"""Identity tokens for runs: a short-lived JWT, signed by the active key, that says which run (and which org, project
and task) is calling. A cloud or Vault trusts Canopy's issuer and decides on the claims (README "Workload identity").

Who gets one: only the agent whose runtime holds the run's current lease, presenting that lease, while the run is
claimed or running (the same fence as every agent call about a run: 404 for a run of another runtime, whatever its
tenant, 409 ``lease_lost`` for a lease that is no longer the run's). The audience must be one the run's own steps
declare (``"identity": {"audience": …}`` on an http step, checked when the task was saved): a compromised agent
cannot mint tokens for other audiences than the ones the task's editor chose. At most
WORKLOAD_IDENTITY_TOKENS_PER_RUN tokens per run (429 ``identity_token_limit``), counted under the run's lock.

The claims are read at issuance: a moved org's next token carries its new ancestors, while ``sub`` (ids only) stays.
Each issuance is recorded (workload.models.IssuedToken: jti, audience, kid, expiry; never the token) and logged on
``canopy.workload``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from joserfc import jwt

from config.errors import Conflict, DomainError, NotFound
from orgs.models import Organization
from resources.models import Run
from resources.services.tasks import audience_error
from runtimes import queue
from workload import keys
from workload.models import IssuedToken, SigningKey

logger = logging.getLogger("canopy.workload")

MAX_TTL_S = 900
ISSUABLE = (Run.Status.CLAIMED, Run.Status.RUNNING)


class TokenLimit(DomainError):
    status = 429
    default_code = "identity_token_limit"


class NotConfigured(DomainError):
    """No active signing key: the operator has not run rotate_workload_keys yet (503, the agent's step fails)."""

    status = 503
    default_code = "identity_not_configured"


class AudienceRefused(DomainError):
    status = 403
    default_code = "audience_not_declared"


@dataclass(frozen=True)
class Issued:
    token: str
    expires_at: datetime
    jti: uuid.UUID
    kid: str


def declared_audiences(steps: list[Any]) -> set[str]:
    """The audiences a run's steps ask tokens for."""
    found = set()
    for step in steps or []:
        identity = step.get("identity") if isinstance(step, dict) else None
        if isinstance(identity, dict) and isinstance(identity.get("audience"), str):
            found.add(identity["audience"])
    return found


def ttl() -> timedelta:
    """The lifetime of a token: never more than 15 minutes, whatever the settings say (settings.py refuses to start
    with more; this holds for settings changed at run time too)."""
    seconds = settings.WORKLOAD_IDENTITY_TTL_S
    if not isinstance(seconds, int) or not 60 <= seconds <= MAX_TTL_S:
        raise ImproperlyConfigured("WORKLOAD_IDENTITY_TTL_S must be from 60 to 900 seconds (15 minutes at most).")
    return timedelta(seconds=seconds)


def subject(org_id: Any, project_id: Any, task_id: Any) -> str:
    return f"org:{org_id}:project:{project_id}:task:{task_id}"


def _fenced_run(runtime_id: Any, run_id: uuid.UUID, lease: str) -> Run:
    """The run, locked, with its task, project, org and runtime, when the caller's runtime holds ``lease`` on it
    (runtimes.queue.fenced_run, as every agent call) and it may still ask for tokens."""
    run = queue.fenced_run(runtime_id, run_id, lease, related=("task__project__org", "runtime"))
    if run.status not in ISSUABLE:
        raise Conflict("The run is stopping: no new identity token.", code="run_stopping")
    if run.task.project.org.deleted_at is not None:
        raise NotFound("No such run on this runtime.")
    return run


def _signing_key(exp: datetime) -> SigningKey:
    """The active key, its ``signed_until`` pushed to ``exp`` BEFORE it signs: a rotation that retires it keeps it
    published until this token expires. A rotation between reading and recording shows as no row updated: read
    again (the new active key was published one rotation ago)."""
    until = Value(exp, output_field=DateTimeField())
    for _ in range(3):
        key = keys.active_key()
        if key is None:
            raise NotConfigured("Canopy has no workload identity signing key yet: run manage.py rotate_workload_keys.")
        recorded = SigningKey.objects.filter(pk=key.pk, state=SigningKey.State.ACTIVE).update(
            signed_until=Greatest(Coalesce(F("signed_until"), until), until)
        )
        if recorded:
            return key
    raise Conflict("The signing keys are being rotated: try again.", code="rotating")


def issue_token(*, runtime_id: Any, run_id: uuid.UUID, lease: str, audience: str) -> Issued:
    """A token for run ``run_id``, asked by an agent of runtime ``runtime_id`` (its authenticated principal's:
    runtimes.agent_api) with the run's ``lease``."""
    if (problem := audience_error(audience)) is not None:
        raise DomainError(f"The audience {problem}", code="audience_invalid")
    lifetime = ttl()
    with transaction.atomic():
        run = _fenced_run(runtime_id, run_id, lease)
        if audience not in declared_audiences(run.steps):
            raise AudienceRefused("No step of this run declares this audience (\u201cidentity\u201d of an http step).")
        if IssuedToken.objects.filter(run=run).count() >= settings.WORKLOAD_IDENTITY_TOKENS_PER_RUN:
            raise TokenLimit(
                f"This run has had {settings.WORKLOAD_IDENTITY_TOKENS_PER_RUN} identity tokens: no more.",
            )
        task, project = run.task, run.task.project
        org = project.org
        ancestors = [
            str(pk)
            for pk in Organization.objects.filter(org.ancestors_q(include_self=False))
            .order_by("lft")
            .values_list("pk", flat=True)
        ]
        now = timezone.now().replace(microsecond=0)
        exp = now + lifetime
        jti = uuid.uuid4()
        key = _signing_key(exp)
        runtime = run.runtime
        claims = {
            "iss": settings.WORKLOAD_IDENTITY_ISSUER,
            "sub": subject(org.pk, project.pk, task.pk),
            "aud": audience,
            "exp": int(exp.timestamp()),
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "jti": str(jti),
            "tenant_id": str(org.tenant_id),
            "org_id": str(org.pk),
            "org_ancestor_ids": ancestors,
            "project_id": str(project.pk),
            "task_id": str(task.pk),
            "run_id": str(run.pk),
            "runtime_id": str(runtime.pk) if runtime else "",
            "runtime_kind": runtime.kind if runtime else "",
        }
        header = {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
        token = jwt.encode(header, claims, keys.private_key(key), algorithms=[key.alg])
        IssuedToken.objects.create(jti=jti, run=run, audience=audience, kid=key.kid, issued_at=now, expires_at=exp)
    logger.info("workload.token_issued run %s aud %s jti %s kid %s exp %s", run.pk, audience, jti, key.kid, exp)
    return Issued(token=token, expires_at=exp, jti=jti, kid=key.kid)
