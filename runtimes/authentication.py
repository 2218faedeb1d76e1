"""The agent API's authentication: ``Authorization: Bearer cna_…``, an agent's own token (runtimes.tokens), looked up
by its SHA-256. It gives an ``AgentPrincipal`` (the runtime, the agent process, the token), never a user: the agent
views use this authentication only (no session, so no CSRF either), and the users' BearerTokenAuthentication finds
no agent token in its table, so an agent token opens nothing else.

A token is usable while it is not revoked, not expired (a rotated token expires 60 s after the rotation) and its
runtime still exists in a live org (a global runtime has none). Anything else is 401 ``token_invalid``, the same
answer whatever the reason, as is a missing token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from access.models import hash_token
from runtimes.models import AgentToken, Runtime, RuntimeInstance
from runtimes.tokens import AGENT_PREFIX

# last_used_at is written at most this often per token: agents call every few seconds.
TOUCH_EVERY = timedelta(minutes=5)


class TokenInvalid(exceptions.AuthenticationFailed):
    default_detail = "Missing, unknown, expired or revoked agent token."
    default_code = "token_invalid"


@dataclass(frozen=True)
class AgentPrincipal:
    """Who calls the agent API: one agent process of one runtime, by its token. Not a user: the policy knows it not,
    and no user view accepts it."""

    runtime: Runtime
    instance: RuntimeInstance
    token: AgentToken

    is_authenticated = True  # DRF's request.user protocol; there is no user behind it
    is_anonymous = False
    is_active = True
    is_superuser = False
    pk = None

    def get_username(self) -> str:
        return f"agent {self.instance.hostname or self.instance.pk} of runtime {self.runtime.name}"


def usable_token(raw: str, now: Any = None) -> AgentToken | None:
    """The usable agent token whose raw value is ``raw``, with its runtime (and org) and instance: one query."""
    if not raw.startswith(AGENT_PREFIX) or len(raw) > 200:
        return None
    now = now or timezone.now()
    return (
        AgentToken.objects.select_related("runtime__org", "instance")
        .filter(token_hash=hash_token(raw), revoked_at__isnull=True, expires_at__gt=now)
        .filter(Q(runtime__org__isnull=True) | Q(runtime__org__deleted_at__isnull=True))
        .first()
    )


class AgentTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AgentPrincipal, AgentToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise TokenInvalid("Invalid Authorization header: expected 'Bearer <agent token>'.")
        try:
            raw = header[1].decode()
        except UnicodeError:
            raise TokenInvalid() from None
        now = timezone.now()
        token = usable_token(raw, now)
        if token is None:
            raise TokenInvalid()
        if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
            # Agent calls are writes (POST), never inside a request's read snapshot: written at once.
            AgentToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return AgentPrincipal(runtime=token.runtime, instance=token.instance, token=token), token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="canopy-agent"'


class IsAgent(permissions.BasePermission):
    """Only an agent's token: no user, however authenticated, and no anonymous caller (401 ``token_invalid``)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.user, AgentPrincipal):
            raise TokenInvalid()
        return True


def principal_of(request: Request) -> AgentPrincipal:
    principal = request.user
    if not isinstance(principal, AgentPrincipal):  # IsAgent refused it already; this keeps the type checker honest
        raise TokenInvalid()
    return principal


class AgentTokenScheme(OpenApiAuthenticationExtension):
    target_class = "runtimes.authentication.AgentTokenAuthentication"
    name = "agentToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An agent's own token (cna_…), from POST /runtime-agent/enroll or token/rotate. Not a "
            "user's token: it opens the runtime-agent operations only.",
        }
