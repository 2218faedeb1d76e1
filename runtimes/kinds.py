"""The runtimes app's kind in the registry (config/kinds.py): a runtime is a declaration (inherited, hidden and
locked like the others); a global one belongs to no org and is offered to tenants by a superuser."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q

from config.kinds import Kind, Rule, Unowned, registry
from runtimes.models import Runtime


def _offered_to(runtime: Runtime) -> Iterable[Any] | None:
    if runtime.all_tenants:
        return None
    return runtime.tenants.values_list("pk", flat=True)


def _offered_condition(tenant_ids: Iterable[Any]) -> Q:
    offers = Runtime.tenants.through.objects.filter(tenant_id__in=list(tenant_ids)).values("runtime_id")
    return Q(kind=Runtime.Kind.GLOBAL) & (Q(all_tenants=True) | Q(pk__in=offers))


RUNTIME = Kind(
    model=Runtime, rule=Rule.DECLARED, view="runtime.view", manage="runtime.manage", within="org", label="runtime",
    label_plural="runtimes", console_list="runtimes", console_detail="runtime", api_list="api-org-runtimes",
    api_detail="api-runtime",
    unowned=Unowned(offered_to=_offered_to, condition=_offered_condition, grants=frozenset({"runtime.view"})),
)  # fmt: skip

registry.register_all([RUNTIME])
