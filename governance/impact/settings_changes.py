"""Impact previews of setting a value at an org, a lock above all (issue #12 §2): which organizations below see
another value (from → to), which become locked from above, and which values set below would be shadowed.

The preview makes the change through ``resources.services.set_setting`` (its checks and refusals) inside a
rolled-back transaction. That service refuses a lock over values set below (409 ``overridden_below``: remove them
first), so a lock never shadows an override it makes; its preview is refused with the same answer, and names where
(the "shadowed" lines of the settings part appear when a move brings a subtree under a lock, governance.impact's
other previews).

The capability part is left out: no setting changes what the policy gives anyone by their roles (``require_2fa``
is an authentication fence, decided at sign-in, not a capability), so it would cost a query per person on the path
to report nothing; so is the declarations part (a setting is no credential, lookup table, component, variable or
runtime declaration: none of those is inherited differently, and resolving every kind for every org below a lock
at the root of 10k orgs cost seconds). The settings part and the runs part are consulted (an ``allowed_runtimes``
lock can displace runs).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError

from config.concurrency import Versions
from governance.impact import engine
from governance.impact.engine import Impact, Part, Scope
from governance.impact.parts import PARTS
from orgs.models import Organization
from resources import services
from resources.models import OrgSetting
from resources.settings_registry import REGISTRY, clean_value

#: The parts no setting can make a difference to.
NOT_SETTINGS = ("capabilities", "declarations")


def setting_parts() -> list[Part]:
    return [part for part in PARTS if part.key not in NOT_SETTINGS]


def is_new_lock(org: Organization, key: str, locked: bool) -> bool:
    """Whether setting ``key`` at ``org`` with ``locked`` locks it where it is not locked yet."""
    return locked and not OrgSetting.objects.filter(org=org, key=key, locked=True).exists()


def describe(org: Organization, key: str, value: Any, locked: bool) -> str:
    spec = REGISTRY.get(key)
    label = spec.label if spec is not None else key
    try:
        shown = json.dumps(clean_value(key, value), ensure_ascii=False)
    except ValidationError:  # the words only: the service refuses the value itself, with its message
        shown = json.dumps(value, ensure_ascii=False, default=str)
    return f"{'Lock' if locked else 'Set'} “{label}” in {org.name} at {shown}"


def _set(actor: Any, org: Organization, key: str, value: Any, locked: bool, version: Versions) -> Any:
    return lambda: services.set_setting(actor=actor, org=org, key=key, value=value, locked=locked, version=version)


def preview_setting(
    *, actor: Any, org: Organization, key: str, value: Any, locked: bool = False, version: Versions = None
) -> Impact:
    """What setting (or locking) ``key`` at ``org`` would do, refused as the change itself would be."""
    return engine.preview(
        _set(actor, org, key, value, locked, version),
        Scope(root=org, viewer=actor),
        describe=describe(org, key, value, locked),
        parts=setting_parts(),
    )


def apply_setting(
    *, actor: Any, org: Organization, key: str, value: Any, locked: bool = False, version: Versions = None
) -> tuple[OrgSetting, Impact]:
    """Set (or lock) ``key`` at ``org``, its preview's summary in the ``setting.set`` event."""
    return engine.apply(
        _set(actor, org, key, value, locked, version),
        Scope(root=org, viewer=actor),
        describe=describe(org, key, value, locked),
        parts=setting_parts(),
        action="setting.set",
    )
