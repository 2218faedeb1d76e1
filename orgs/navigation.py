"""The breadcrumb and the org switcher shown on every org page.

Both cost a fixed number of queries whatever the size of the tenant: the path is one range query, the switcher one
filtered list (the user's grants behind ``visible()`` are loaded once per request), capped so that a 100k-org tenant
renders as fast as a small one; the search narrows it further.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from access import policy
from orgs.models import Organization

SWITCHER_LIMIT = 300


@dataclass(frozen=True)
class Switcher:
    orgs: list[Organization]
    truncated: bool
    query: str


def switcher(user: Any, query: str = "", limit: int = SWITCHER_LIMIT) -> Switcher:
    """The orgs the user may open, in tree order (``level`` indents them), optionally filtered by name."""
    queryset = policy.visible(user, "org.view", Organization.objects.alive()).select_related("tenant")
    query = (query or "").strip()[:100]
    if query:
        queryset = queryset.filter(name__icontains=query)
    orgs = list(queryset.order_by("tree_id", "lft")[: limit + 1])
    return Switcher(orgs=orgs[:limit], truncated=len(orgs) > limit, query=query)


def context_for(request: Any, org: Organization) -> dict[str, Any]:
    """What base.html needs on an org page: the path (root first) and the switcher."""
    path = org.path()
    return {
        "org": org,
        "path": path,
        "tenant": org.tenant,
        "switcher": switcher(request.user),
        "caps": policy.capabilities(request.user, org),
    }
