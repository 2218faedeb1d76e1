"""Authentication fences: where a user's grants do not reach in this request, whatever the roles say.

Roles say what a user may do; how the user authenticated this request can close part of that:

- a tenant that enforces single sign-on closes itself to its domain's members when the session (or personal
  token) was not authenticated through the tenant's identity provider (``sso_required``);
- an org whose effective ``require_2fa`` setting is on, past its grace period, closes its subtree to users whose
  session (or token) was not verified with a second factor (``2fa_required``).

Each closed region is a ``Fence``: a whole tenant or one subtree (a tree range, like an inheritance cut). The
policy (access/policy.py) applies fences after the roles decided: a fenced org gives no capability, lists leave
fenced subtrees out, and ``authorize`` answers 403 with the fence's code to a user whose roles would have let them
in (anyone else still gets 404). Fences never reach past their region: a tenant's SSO enforcement does not touch
the user's other tenants, a subtree's 2FA requirement not its parents or siblings.

Providers (the identity and twofactor apps) register here. Each says which tenants enforce anything at all
(``enforcing``: cached per tenant, so a request in a tenant without rules costs no query) and computes the fences
of one user in one enforcing tenant (``fences``: at most one query, none when the request's context satisfies it).
A provider calls ``invalidate(tenant_id)`` after it changes a rule. The cache fails open to the database: a miss
or a cache outage asks the providers, so enforcement never depends on Redis.

The authentication context (``AuthContext``) travels on the user object: ``AuthContextMiddleware`` sets it from
the session, the token authentication from the token. A user object without one (a service called with a user
loaded from the database) counts as the weakest context: not through SSO, not verified.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from django.core.cache import cache
from django.db import transaction
from django.db.models import CharField, Q, Value

from config.errors import Forbidden

SESSION_KEY = "canopy_auth"
_CONTEXT_ATTR = "canopy_auth"
_CACHE_PREFIX = "canopy:fences:v1:"
_CACHE_TIMEOUT = 300  # seconds; invalidate() drops an entry at once after a change


@dataclass(frozen=True)
class AuthContext:
    """How the request's user authenticated.

    ``method``: password | sso | recovery (a break-glass code) | token | unknown. ``sso_tenants``: the tenants whose
    identity provider (or break-glass code) authenticated this session or token. ``otp_verified``: a second factor
    was checked at sign-in (or when the token was issued)."""

    method: str = "unknown"
    sso_tenants: frozenset[UUID] = field(default_factory=frozenset)
    otp_verified: bool = False

    def as_session(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "sso_tenants": sorted(str(t) for t in self.sso_tenants),
            "otp": self.otp_verified,
        }

    @classmethod
    def from_session(cls, data: Any) -> AuthContext:
        if not isinstance(data, dict):
            return UNKNOWN
        tenants: set[UUID] = set()
        for value in data.get("sso_tenants") or []:
            try:
                tenants.add(UUID(str(value)))
            except ValueError:
                continue
        return cls(str(data.get("method") or "unknown"), frozenset(tenants), bool(data.get("otp")))


UNKNOWN = AuthContext()


def context_of(user: Any) -> AuthContext:
    return getattr(user, _CONTEXT_ATTR, None) or UNKNOWN


def attach(user: Any, context: AuthContext) -> None:
    """Give ``user`` (the request's user object) its authentication context. An Access already built for the user
    sees the change at its next fence question (access/policy.py compares contexts)."""
    with contextlib.suppress(AttributeError):  # objects that refuse attributes have no grants either
        setattr(user, _CONTEXT_ATTR, context)


# -- the session --------------------------------------------------------------------------------------------------


def session_context(request: Any) -> AuthContext:
    session = getattr(request, "session", None)
    return AuthContext.from_session(session.get(SESSION_KEY) if session is not None else None)


def set_session_context(request: Any, context: AuthContext) -> None:
    """Record how this session authenticated (call after ``django.contrib.auth.login``, which starts the session
    fresh), and apply it to the request's user at once."""
    request.session[SESSION_KEY] = context.as_session()
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        attach(user, context)


def update_session_context(request: Any, **changes: Any) -> AuthContext:
    """Change part of the session's context (e.g. ``otp_verified=True`` after a second factor, or one more SSO
    tenant after signing in through another tenant's IdP in the same session)."""
    current = session_context(request)
    context = AuthContext(
        str(changes.get("method", current.method)),
        frozenset(changes.get("sso_tenants", current.sso_tenants)),
        bool(changes.get("otp_verified", current.otp_verified)),
    )
    set_session_context(request, context)
    return context


def on_user_logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Every sign-in starts as a password session (nothing proved beyond the password); the SSO callback, the
    break-glass page and the second-factor step raise it afterwards with ``update_session_context``."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = AuthContext("password").as_session()
        attach(user, AuthContext("password"))


class AuthContextMiddleware:
    """Puts the session's ``AuthContext`` on ``request.user`` (after AuthenticationMiddleware)."""

    def __init__(self, get_response: Any):
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        session = getattr(request, "session", None)
        if session is not None and SESSION_KEY in session:
            user = request.user
            if user.is_authenticated:
                attach(user, session_context(request))
        return self.get_response(request)


# -- fences -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fence:
    """A region closed to this user in this request. ``lft``/``rght`` None: the whole tenant."""

    code: str  # sso_required | 2fa_required
    detail: str  # what the user reads: why, and what to do
    tenant_id: UUID
    tree_id: int | None = None
    lft: int | None = None
    rght: int | None = None
    org_id: UUID | None = None  # where the rule is declared (None: the tenant)
    org_name: str = ""

    @property
    def whole_tenant(self) -> bool:
        return self.lft is None

    def covers(self, org: Any) -> bool:
        if org is None or org.tenant_id != self.tenant_id:
            return False
        if self.lft is None or self.rght is None:
            return True
        return bool(org.tree_id == self.tree_id and self.lft <= org.lft <= self.rght)

    def condition(self, prefix: str) -> Q:
        """The fenced orgs, as a filter on the org reached through ``prefix`` (``""`` for orgs themselves)."""
        if self.whole_tenant:
            return Q(**{f"{prefix}tenant_id": self.tenant_id})
        return Q(**{f"{prefix}tree_id": self.tree_id, f"{prefix}lft__gte": self.lft, f"{prefix}lft__lte": self.rght})


class FenceRefusal(Forbidden):
    """403 with the fence's code, to a user whose roles reach the object but whose authentication does not. The
    console sends them to the page that opens the fence (config/console.py ``FENCE_PAGES``)."""

    def __init__(self, fence: Fence):
        super().__init__(fence.detail, code=fence.code)
        self.fence = fence


class Provider(Protocol):
    name: str

    def enforcing(self, tenant_ids: Iterable[UUID]) -> set[UUID]:
        """Which of these tenants have a rule of this provider at all (one query). A provider may also offer
        ``enforcing_query(tenant_ids) -> (queryset, tenant field)``: then a cache miss asks every such provider in
        one query together."""
        ...

    def fences(self, user: Any, context: AuthContext, tenant_id: UUID) -> list[Fence]:
        """The fences of ``user`` in ``tenant_id`` (an enforcing tenant) for this context: at most one query."""
        ...


_providers: list[Provider] = []


def register(provider: Provider) -> Provider:
    if all(p.name != provider.name for p in _providers):
        _providers.append(provider)
    return provider


def providers() -> tuple[Provider, ...]:
    return tuple(_providers)


def enforcing(tenant_ids: Iterable[UUID]) -> dict[UUID, tuple[str, ...]]:
    """Each tenant with its enforcing providers' names (empty tuple: none), from the cache, asking the providers
    (one query each) for the tenants the cache does not know."""
    ids = list(dict.fromkeys(tenant_ids))
    if not ids or not _providers:
        return {t: () for t in ids}
    keys = {f"{_CACHE_PREFIX}{t}": t for t in ids}
    cached = cache.get_many(list(keys))
    result = {keys[k]: tuple(v) for k, v in cached.items() if isinstance(v, (list, tuple))}
    missing = [t for t in ids if t not in result]
    if missing:
        found: dict[UUID, list[str]] = {t: [] for t in missing}
        for tenant, name in _ask_providers(missing):
            found.setdefault(tenant, []).append(name)
        for tenant, names in found.items():
            result[tenant] = tuple(names)
        cache.set_many({f"{_CACHE_PREFIX}{t}": list(n) for t, n in found.items()}, _CACHE_TIMEOUT)
    return result


def _ask_providers(tenant_ids: list[UUID]) -> list[tuple[UUID, str]]:
    """(tenant, provider name) for each provider enforcing something in a tenant: the providers that say it with a
    queryset (``enforcing_query``) in ONE query (a UNION), the others one query each."""
    answers: list[tuple[UUID, str]] = []
    union: Any = None
    for provider in _providers:
        query = getattr(provider, "enforcing_query", None)
        if query is None:
            answers.extend((tenant, provider.name) for tenant in provider.enforcing(tenant_ids))
            continue
        queryset, tenant_field = query(tenant_ids)
        named = (
            queryset.order_by()  # a compound statement takes no ORDER BY in its parts
            .annotate(fence_provider=Value(provider.name, output_field=CharField()))
            .values_list(tenant_field, "fence_provider")
        )
        union = named if union is None else union.union(named)
    if union is not None:
        answers.extend((tenant, name) for tenant, name in union)
    return answers


def invalidate(tenant_id: UUID) -> None:
    """Forget what the cache knows of ``tenant_id``'s rules, now and again after the transaction commits (so a
    request that read the old rules in between cannot put them back for long)."""
    key = f"{_CACHE_PREFIX}{tenant_id}"
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def fences_for(user: Any, context: AuthContext, tenant_ids: Iterable[UUID]) -> dict[UUID, tuple[Fence, ...]]:
    """The user's fences in each of ``tenant_ids``."""
    result: dict[UUID, tuple[Fence, ...]] = {}
    by_name = {p.name: p for p in _providers}
    for tenant, names in enforcing(tenant_ids).items():
        found: list[Fence] = []
        for name in names:
            provider = by_name.get(name)
            if provider is not None:
                found.extend(provider.fences(user, context, tenant))
        result[tenant] = tuple(found)
    return result
