"""The typed registry of org settings: each key has a type, a default, a validator and a description.

A value set at an org (``OrgSetting``) overrides the one inherited from above; a locked one cannot be overridden
below. ``effective_settings(org)`` gives every key with its value and source in one query.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from orgs.models import Organization
from resources.inheritance import effective
from resources.models import OrgSetting


@dataclass(frozen=True)
class Spec:
    key: str
    label: str
    help: str
    type: str  # bool | int | str | domains | runtimes | two_factor
    default: Any
    clean: Callable[[Any], Any]


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "on", "off", "1", "0"):
        return value.lower() in ("true", "on", "1")
    raise ValidationError("Give true or false.")


def _int_between(low: int, high: int) -> Callable[[Any], int]:
    def clean(value: Any) -> int:
        if isinstance(value, bool):
            raise ValidationError(f"Give a whole number from {low} to {high}.")
        try:
            number = int(str(value).strip())
        except (TypeError, ValueError):
            raise ValidationError(f"Give a whole number from {low} to {high}.") from None
        if not low <= number <= high:
            raise ValidationError(f"Give a whole number from {low} to {high}.")
        return number

    return clean


_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def clean_domains(value: Any) -> list[str]:
    """Invitation e-mail domains: lower-case host names, no duplicates; an empty list allows any domain."""
    if isinstance(value, str):
        value = [part for part in re.split(r"[\s,]+", value) if part]
    if not isinstance(value, list | tuple) or len(value) > 50:
        raise ValidationError({"value": ["Give a list of at most 50 domains."]})
    domains = []
    for item in value:
        domain = str(item).strip().lower().lstrip("@")
        if not _DOMAIN.match(domain):
            raise ValidationError({"value": [f"“{item}” is not a domain name."]})
        if domain not in domains:
            domains.append(domain)
    return domains


def _domains(value: Any) -> list[str]:
    return clean_domains(value)


def _runtime_name(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value.strip()) > 100:
        raise ValidationError("Give a runtime name of at most 100 characters, or nothing.")
    return value.strip()


def _runtime_names(value: Any) -> list[str]:
    """Runtime names (case kept, matched case-insensitively, no duplicates); an empty list allows any runtime."""
    if isinstance(value, str):
        value = [part for part in re.split(r"[\s,]+", value) if part]
    if value is None:
        return []
    if not isinstance(value, list | tuple) or len(value) > 50:
        raise ValidationError({"value": ["Give a list of at most 50 runtime names."]})
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item.strip()) > 100:
            raise ValidationError({"value": [f"“{item}” is not a runtime name (1 to 100 characters)."]})
        if item.strip().lower() not in (name.lower() for name in names):
            names.append(item.strip())
    return names


TWO_FACTOR_MAX_GRACE_HOURS = 720  # 30 days: long enough to roll out, short enough to mean it


def clean_two_factor(value: Any) -> dict[str, Any]:
    """``require_2fa``: ``{"required": bool, "grace_hours": 0..720}``. The console's one text field and the admin's
    give it as JSON or as words: ``true``, ``false``, ``true, 48`` (required, 48 hours of grace)."""
    problem = (
        f'Give {{"required": true or false, "grace_hours": 0 to {TWO_FACTOR_MAX_GRACE_HOURS}}}, or e.g. "true, 24".'
    )
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError:
                raise ValidationError(problem) from None
        else:
            parts = [part for part in re.split(r"[\s,;]+", text) if part]
            if not 1 <= len(parts) <= 2:
                raise ValidationError(problem)
            value = {"required": parts[0], "grace_hours": parts[1] if len(parts) == 2 else 0}
    if isinstance(value, bool):
        value = {"required": value}
    if not isinstance(value, dict) or not set(value) <= {"required", "grace_hours"} or "required" not in value:
        raise ValidationError(problem)
    try:
        required = _bool(value["required"])
        grace = _int_between(0, TWO_FACTOR_MAX_GRACE_HOURS)(value.get("grace_hours", 0))
    except ValidationError:
        raise ValidationError(problem) from None
    return {"required": required, "grace_hours": grace}


REGISTRY: dict[str, Spec] = {
    spec.key: spec
    for spec in (
        Spec(
            "allow_task_sharing",
            "Allow task sharing",
            "Whether integration tasks may be shared with users and teams one by one.",
            "bool",
            True,
            _bool,
        ),
        Spec(
            "run_log_retention_days",
            "Run log retention (days)",
            "Run logs older than this are removed (daily, by the purge_run_logs command).",
            "int",
            30,
            _int_between(1, 3650),
        ),
        Spec(
            "max_lookup_table_rows",
            "Lookup table size limit (rows)",
            "The most rows one lookup table may hold.",
            "int",
            10_000,
            _int_between(1, 100_000),
        ),
        Spec(
            "allowed_invite_domains",
            "Invitation e-mail domains",
            "Invitations go only to these e-mail domains (empty: any). Lock it so no organization below widens it.",
            "domains",
            [],
            _domains,
        ),
        Spec(
            "default_runtime",
            "Default runtime",
            "The runtime that runs tasks which name none (empty: the platform's).",
            "str",
            None,
            _runtime_name,
        ),
        Spec(
            "allowed_runtimes",
            "Allowed runtimes",
            "Tasks below run only on these runtimes (empty: any runtime this organization sees). Lock it to keep "
            "the subtree's data on its own runtimes.",
            "runtimes",
            [],
            _runtime_names,
        ),
        Spec(
            "require_2fa",
            "Require two-factor authentication",
            "Members must verify their sign-in with a second factor to reach this organization and everything below "
            "it; `grace_hours` after the requirement is set or changed, those without it are sent to set it up. "
            "Lock it so no organization below turns it off.",
            "two_factor",
            {"required": False, "grace_hours": 0},
            clean_two_factor,
        ),
        Spec(
            "access_review_days",
            "Access review interval (days)",
            "The access review reports grants that nobody attested in this many days.",
            "int",
            90,
            _int_between(1, 3650),
        ),
        Spec(
            "inactive_days",
            "Inactivity threshold (days)",
            "The access review reports members with no sign-in request or token use in this many days.",
            "int",
            60,
            _int_between(1, 3650),
        ),
    )
}


def clean_value(key: str, value: Any) -> Any:
    spec = REGISTRY.get(key)
    if spec is None:
        raise ValidationError({"key": [f"Unknown setting “{key}”. Known: {', '.join(sorted(REGISTRY))}."]})
    try:
        return spec.clean(value)
    except ValidationError as exc:
        raise ValidationError({"value": exc.messages}) from None


@dataclass(frozen=True)
class EffectiveSetting:
    spec: Spec
    value: Any
    declaration: Any  # the OrgSetting that decides, or None for the default
    at: Organization

    @property
    def source(self) -> str:
        return "default" if self.declaration is None else "inherited" if self.inherited else "here"

    @property
    def inherited(self) -> bool:
        return self.declaration is not None and self.declaration.org_id != self.at.pk

    @property
    def locked(self) -> bool:
        return self.declaration is not None and self.declaration.locked

    @property
    def org(self) -> Organization | None:
        return self.declaration.org if self.declaration is not None else None


def effective_settings(org: Organization) -> list[EffectiveSetting]:
    """Every registered setting at ``org``: nearest value wins, a lock above wins over anything below. One query."""

    decided = {e.item.key: e.item for e in effective(OrgSetting, org)}
    return [
        EffectiveSetting(spec, decided[key].value if key in decided else spec.default, decided.get(key), org)
        for key, spec in REGISTRY.items()
    ]


def setting_value(org: Organization, key: str) -> Any:
    return next(s.value for s in effective_settings(org) if s.spec.key == key)
