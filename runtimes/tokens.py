"""Runtime tokens: one-time enrollment tokens (``cne_…``) and agents' own bearer tokens (``cna_…``).

Only the SHA-256 of a token is stored (access.models.hash_token); the raw value is returned once, to whoever asked
for it (the Admin registering a runtime, the agent enrolling or rotating)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from access.models import hash_token
from config.actors import user_or_none
from runtimes.models import AgentToken, EnrollmentToken, Runtime, RuntimeInstance

ENROLLMENT_PREFIX = "cne_"
AGENT_PREFIX = "cna_"


def _raw(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def issue_enrollment_token(runtime: Runtime, *, actor: Any) -> tuple[EnrollmentToken, str]:
    """A new one-time enrollment token for ``runtime`` (valid RUNTIME_ENROLLMENT_TOKEN_S, single use). The caller
    authorizes and audits; the raw token is in the answer only."""
    raw = _raw(ENROLLMENT_PREFIX)
    token = EnrollmentToken.objects.create(
        runtime=runtime,
        token_hash=hash_token(raw),
        created_by=user_or_none(actor),
        expires_at=timezone.now() + timedelta(seconds=settings.RUNTIME_ENROLLMENT_TOKEN_S),
    )
    return token, raw


def issue_agent_token(instance: RuntimeInstance) -> tuple[AgentToken, str]:
    """A new bearer token for the agent process ``instance`` (valid RUNTIME_AGENT_TOKEN_DAYS)."""
    raw = _raw(AGENT_PREFIX)
    token = AgentToken.objects.create(
        runtime_id=instance.runtime_id,
        instance=instance,
        token_hash=hash_token(raw),
        prefix=raw[:12],
        expires_at=timezone.now() + timedelta(days=settings.RUNTIME_AGENT_TOKEN_DAYS),
    )
    return token, raw


def agent_command(url: str, raw_enrollment_token: str) -> str:
    """The command line that starts an agent and enrolls it with ``raw_enrollment_token`` (shown once)."""
    return f"python -m runtimes.agent --url {url} --state-dir ./canopy-agent --enrollment-token {raw_enrollment_token}"
