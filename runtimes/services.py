"""The writes of runtimes (docs/API.md "Runtimes"): registering, changing, pausing and deleting them, their enrollment
tokens and revoking their agents.

Rules enforced here, whatever face calls (console, API, admin):
- a *local* runtime is a declaration: ``runtime.manage`` at its org (Admin), the inheritance rules of every
  declaration (a name once per org, nothing under a lock above, no lock over overrides or hides below:
  resources.services.declarations), audited ``runtime.create|update|delete``;
- a *global* runtime (no org) is the platform's: only superusers (and SYSTEM) create, change or delete it; members
  of a tenant it is offered to see it (404 for everyone else, 403 for them on a write);
- ``allow_private_network`` and the tenants a global runtime is offered to are superusers' business;
- pausing and resuming are audited ``runtime.pause`` / ``runtime.resume``; a paused runtime claims no new run;
- a runtime with active runs (queued, claimed, running, stopping) cannot be deleted (409 ``runtime_busy``);
- creating a runtime, and ``new_enrollment_token``, answer a one-time enrollment token (1 h, single use, only its
  hash stored) and the command that starts an agent with it: shown once, never again (``runtime.enrollment_token``);
- ``revoke`` ends every agent token of the runtime at once (the next agent call is 401) and every enrollment token
  not yet used (``runtime.revoke``).

A global runtime's events are recorded in the audit log of each tenant it is offered to (the log is per tenant;
a runtime offered to nobody leaves only the superuser's admin history).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from access import audit, policy
from access.models import AuditEvent
from config import kinds
from config.actors import require_actor, user_or_none
from config.concurrency import Versions, lock_for_update, save_changes, touch
from config.errors import Conflict, Forbidden
from orgs.locks import lock_tenant
from orgs.models import Organization, Tenant
from resources import inheritance
from resources.models import Hidden, Run
from resources.services.declarations import (
    DeclarationServices,
    apply_changes,
    clean_name,
    create_declaration,
    hide_declared,
    locked_for_change,
)
from runtimes import tokens
from runtimes.models import AgentToken, EnrollmentToken, Runtime

LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,49}$")
MAX_LABELS = 20
SUPERUSER_FIELDS = ("allow_private_network", "all_tenants", "tenants", "is_platform_default")
LOCAL_FIELDS = ("name", "description", "labels", "region", "sovereign", "paused", "locked")
GLOBAL_FIELDS = ("name", "description", "labels", "region", "sovereign", "paused", *SUPERUSER_FIELDS)


@dataclass(frozen=True)
class Enrollment:
    """A runtime and a fresh one-time enrollment token for it: ``raw`` and ``command`` are shown once."""

    runtime: Runtime
    token: EnrollmentToken
    raw: str
    command: str


# -- field checks --------------------------------------------------------------------------------------------------


def clean_labels(value: Any) -> list[str]:
    """Short labels (``eu``, ``gpu``, ``zone:a``): a list, or a text separated by commas or spaces; no duplicates."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [part for part in re.split(r"[\s,]+", value) if part]
    if not isinstance(value, list | tuple) or len(value) > MAX_LABELS:
        raise ValidationError({"labels": [f"Give a list of at most {MAX_LABELS} labels."]})
    labels: list[str] = []
    for item in value:
        if not isinstance(item, str) or not LABEL_RE.match(item.strip()):
            raise ValidationError(
                {"labels": [f"“{str(item)[:60]}” is not a label: 1 to 50 letters, digits, dots, dashes, colons."]}
            )
        if item.strip() not in labels:
            labels.append(item.strip())
    return labels


def _clean_text(fields: dict[str, Any], name: str, limit: int) -> None:
    if name in fields:
        text = str(fields[name] or "").strip()
        if len(text) > limit or "\x00" in text:
            raise ValidationError({name: [f"At most {limit} characters."]})
        fields[name] = text


def _clean_bools(fields: dict[str, Any], *names: str) -> None:
    for name in names:
        if name in fields and not isinstance(fields[name], bool):
            raise ValidationError({name: ["Give true or false."]})


def _is_superuser(actor: Any) -> bool:
    return policy.access_for(actor).is_superuser


def _require_superuser(actor: Any, fields: Iterable[str]) -> None:
    named = sorted(set(fields) & set(SUPERUSER_FIELDS))
    if named and not _is_superuser(actor):
        raise Forbidden(f"Only a superuser sets {', '.join(named)}.", code="superuser_only")


def _clean_tenants(value: Any) -> tuple[bool, list[Tenant]]:
    """``"all"`` or a list of tenants (objects or ids) → (all_tenants, tenants)."""
    if value == "all":
        return True, []
    if value is None:
        return False, []
    if not isinstance(value, list | tuple):
        raise ValidationError({"tenants": ["Give “all” or a list of tenant ids."]})
    found: list[Tenant] = []
    ids = [item.pk if isinstance(item, Tenant) else item for item in value]
    try:
        found = list(Tenant.objects.filter(pk__in=ids))
    except (ValueError, ValidationError):
        found = []
    if len({t.pk for t in found}) != len({str(i) for i in ids}):
        raise ValidationError({"tenants": ["Give existing tenant ids."]})
    return False, found


# -- audit ---------------------------------------------------------------------------------------------------------


def _offered_tenant_ids(runtime: Runtime) -> list[Any]:
    if runtime.all_tenants:
        return list(Tenant.objects.values_list("pk", flat=True))
    return list(runtime.tenants.values_list("pk", flat=True))


def record(
    *, actor: Any, action: str, runtime: Runtime, changes: dict[str, Any], tenant_ids: Iterable[Any] | None = None
) -> None:
    """Audit a runtime write: in its org's tenant (a local runtime), or in each tenant a global one is offered to
    (``tenant_ids``: those, when the offer itself changed)."""
    org = runtime.org
    if org is not None:
        audit.record(actor=actor, action=action, tenant=org.tenant_id, org=org, target=runtime, changes=changes)
        return
    ids = sorted(set(tenant_ids if tenant_ids is not None else _offered_tenant_ids(runtime)), key=str)
    if not ids:
        return
    first = audit.record(actor=actor, action=action, tenant=ids[0], target=runtime, changes=changes)
    # the same event in every other tenant (a runtime offered to all of them: one insert per thousand tenants)
    copied = {f.attname: getattr(first, f.attname) for f in AuditEvent._meta.concrete_fields if not f.primary_key}
    AuditEvent.objects.bulk_create(
        [AuditEvent(**{**copied, "tenant_id": tenant_id}) for tenant_id in ids[1:]], batch_size=1000
    )


def _audited(fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    if "tenants" in out:
        out["tenants"] = [str(t.pk) for t in out["tenants"]]
    return out


# -- the services of the kind (also what the generic declaration faces call) ----------------------------------------


class RuntimeServices(DeclarationServices):
    """Runtime writes. ``create`` makes a *local* runtime at an org (use ``create_local_runtime`` for the enrollment
    token beside it); ``update`` and ``delete`` take local and global runtimes alike."""

    model = Runtime

    def clean(self, fields: dict[str, Any], *, org: Organization | None, item: Any = None) -> dict[str, Any]:
        if "name" in fields or item is None:
            fields["name"] = clean_name(fields.get("name"))
        if "labels" in fields:
            fields["labels"] = clean_labels(fields["labels"])
        _clean_text(fields, "region", 50)
        _clean_text(fields, "description", 2000)
        _clean_bools(fields, "sovereign", "paused", "locked", "allow_private_network", "is_platform_default")
        return fields

    def hide(self, *, actor: Any, org: Organization, name: str) -> Hidden:
        """Hiding through any face (the API's and console's generic hides too): also an offered global runtime."""
        return hide_runtime(actor=actor, org=org, name=name)

    def create(self, *, actor: Any, org: Organization, **fields: Any) -> Runtime:
        require_actor(actor)
        unknown = sorted(set(fields) - set(LOCAL_FIELDS) - {"allow_private_network"})
        if unknown:
            raise ValidationError({unknown[0]: ["Not a field of a local runtime."]})
        policy.authorize(actor, "runtime.manage", org)
        _require_superuser(actor, fields)
        fields = self.clean(dict(fields), org=org)
        with transaction.atomic():
            runtime = create_declaration(
                Runtime, actor=actor, org=org, capability="runtime.manage", kind=Runtime.Kind.LOCAL, **fields
            )
            record(actor=actor, action="runtime.create", runtime=runtime, changes=_audited(fields))
        return runtime

    def update(self, *, actor: Any, item: Any, version: Versions = None, **fields: Any) -> Runtime:
        require_actor(actor)
        runtime: Runtime = item
        allowed = GLOBAL_FIELDS if runtime.org_id is None else (*LOCAL_FIELDS, "allow_private_network")
        unknown = sorted(set(fields) - set(allowed))
        if unknown:
            raise ValidationError({unknown[0]: [f"Not a field of a {runtime.kind} runtime."]})
        policy.authorize(actor, "runtime.manage", runtime)
        _require_superuser(actor, fields)
        fields = self.clean(dict(fields), org=runtime.org, item=runtime)
        with transaction.atomic():
            if runtime.org_id is not None:
                fresh = locked_for_change(runtime, actor=actor, capability="runtime.manage", version=version)
                from_tenants: list[Any] = []
            else:
                fresh = lock_for_update(runtime, version)
                policy.authorize(actor, "runtime.manage", fresh)
                from_tenants = _offered_tenant_ids(fresh)
                fields = self._global_fields(fresh, fields)
            tenants = fields.pop("tenants", None)
            # a local runtime's renames and locks are checked against the tree, like every declaration's
            changes = (
                apply_changes(fresh, fields, actor=actor) if fresh.org_id is not None else save_changes(fresh, fields)
            )
            if tenants is not None:
                before = sorted(str(pk) for pk in fresh.tenants.values_list("pk", flat=True))
                fresh.tenants.set(tenants)
                after = sorted(str(t.pk) for t in tenants)
                if before != after:
                    if not changes:
                        touch(fresh)  # only the offer changed: still a new version (a stale form is refused)
                    changes["tenants"] = [before, after]
            paused = changes.pop("paused", None)
            targets = set(from_tenants) | set(_offered_tenant_ids(fresh)) if fresh.org_id is None else None
            if changes:
                record(actor=actor, action="runtime.update", runtime=fresh, changes=changes, tenant_ids=targets)
            if paused is not None:
                action = "runtime.pause" if paused[1] else "runtime.resume"
                record(actor=actor, action=action, runtime=fresh, changes={"paused": paused}, tenant_ids=targets)
        return fresh

    @staticmethod
    def _global_fields(runtime: Runtime, fields: dict[str, Any]) -> dict[str, Any]:
        """A global runtime's changes: the name unique among globals, ``tenants`` given as "all" or a list."""
        if "name" in fields and fields["name"].lower() != runtime.name.lower():
            _check_global_name(fields["name"], exclude=runtime.pk)
        if "tenants" in fields:
            all_tenants, tenants = _clean_tenants(fields["tenants"])
            fields["all_tenants"] = all_tenants
            fields["tenants"] = tenants
        if fields.get("is_platform_default") and not runtime.is_platform_default:
            _check_no_other_default(runtime.pk)
        return fields

    def delete(self, *, actor: Any, item: Any, version: Versions = None) -> None:
        require_actor(actor)
        runtime: Runtime = item
        policy.authorize(actor, "runtime.manage", runtime)
        with transaction.atomic():
            if runtime.org_id is not None:
                fresh = locked_for_change(runtime, actor=actor, capability="runtime.manage", version=version)
            else:
                fresh = lock_for_update(runtime, version)
                policy.authorize(actor, "runtime.manage", fresh)
            active = Run.objects.filter(runtime=fresh, status__in=Run.ACTIVE).count()
            if active:
                raise Conflict(
                    f"Runtime “{fresh.name}” has {active} active run(s): stop them or wait for them to finish.",
                    code="runtime_busy",
                )
            record(actor=actor, action="runtime.delete", runtime=fresh, changes={"name": fresh.name})
            fresh.delete()


RUNTIME_SERVICES = RuntimeServices()
kinds.kind_services(Runtime)(RUNTIME_SERVICES)


def _check_global_name(name: str, exclude: Any = None) -> None:
    taken = Runtime.objects.filter(org__isnull=True, name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise Conflict(f"A global runtime named “{name}” exists already.", code="name_taken")


def _check_no_other_default(exclude: Any = None) -> None:
    other = Runtime.objects.filter(is_platform_default=True)
    if exclude is not None:
        other = other.exclude(pk=exclude)
    current = other.first()
    if current is not None:
        raise Conflict(
            f"“{current.name}” is the platform's default runtime: unset it there first.", code="platform_default"
        )


# -- registering runtimes ------------------------------------------------------------------------------------------


def _enrollment(actor: Any, runtime: Runtime) -> Enrollment:
    token, raw = tokens.issue_enrollment_token(runtime, actor=actor)
    record(
        actor=actor, action="runtime.enrollment_token", runtime=runtime,
        changes={"token": str(token.pk), "expires_at": token.expires_at},
    )  # fmt: skip
    return Enrollment(runtime=runtime, token=token, raw=raw, command=tokens.agent_command(settings.SITE_URL, raw))


def create_local_runtime(*, actor: Any, org: Organization, **fields: Any) -> Enrollment:
    """Declare a local runtime at ``org`` (``runtime.manage`` there) and issue its first enrollment token."""
    with transaction.atomic():
        runtime = RUNTIME_SERVICES.create(actor=actor, org=org, **fields)
        return _enrollment(actor, runtime)


def create_global_runtime(
    *, actor: Any, name: Any, tenants: Any = None, description: str = "", labels: Any = None, region: str = "",
    sovereign: bool = False, allow_private_network: bool = False, is_platform_default: bool = False,
    paused: bool = False,
) -> Enrollment:  # fmt: skip
    """A global runtime (superusers only), offered to ``tenants`` ("all", or a list), with its first enrollment
    token."""
    require_actor(actor)
    if not _is_superuser(actor):
        raise Forbidden("Only a superuser creates global runtimes.", code="superuser_only")
    fields = RUNTIME_SERVICES.clean(
        {"name": name, "description": description, "labels": labels or [], "region": region, "sovereign": sovereign,
         "allow_private_network": allow_private_network, "is_platform_default": is_platform_default,
         "paused": paused},
        org=None,
    )  # fmt: skip
    all_tenants, offered = _clean_tenants(tenants)
    with transaction.atomic():
        _check_global_name(fields["name"])
        if is_platform_default:
            _check_no_other_default()
        runtime = Runtime.objects.create(
            org=None, kind=Runtime.Kind.GLOBAL, all_tenants=all_tenants, created_by=user_or_none(actor), **fields
        )
        runtime.tenants.set(offered)
        record(
            actor=actor, action="runtime.create", runtime=runtime,
            changes=_audited({**fields, "all_tenants": all_tenants, "tenants": offered}),
        )  # fmt: skip
        return _enrollment(actor, runtime)


def pause(*, actor: Any, runtime: Runtime, version: Versions = None) -> Runtime:
    return RUNTIME_SERVICES.update(actor=actor, item=runtime, version=version, paused=True)


def resume(*, actor: Any, runtime: Runtime, version: Versions = None) -> Runtime:
    return RUNTIME_SERVICES.update(actor=actor, item=runtime, version=version, paused=False)


def update_runtime(*, actor: Any, runtime: Runtime, version: Versions = None, **fields: Any) -> Runtime:
    return RUNTIME_SERVICES.update(actor=actor, item=runtime, version=version, **fields)


def delete_runtime(*, actor: Any, runtime: Runtime, version: Versions = None) -> None:
    RUNTIME_SERVICES.delete(actor=actor, item=runtime, version=version)


def new_enrollment_token(*, actor: Any, runtime: Runtime) -> Enrollment:
    """Another one-time enrollment token (``runtime.manage``): to start one more agent."""
    require_actor(actor)
    policy.authorize(actor, "runtime.manage", runtime)
    with transaction.atomic():
        fresh = lock_for_update(runtime)
        policy.authorize(actor, "runtime.manage", fresh)
        return _enrollment(actor, fresh)


def revoke(*, actor: Any, runtime: Runtime) -> int:
    """End every agent token of ``runtime`` now (their next call is 401) and every unused enrollment token; the
    number of agent tokens revoked. Agents must be enrolled again (a new enrollment token) to serve it."""
    require_actor(actor)
    policy.authorize(actor, "runtime.manage", runtime)
    now = timezone.now()
    with transaction.atomic():
        fresh = lock_for_update(runtime)
        policy.authorize(actor, "runtime.manage", fresh)
        revoked = AgentToken.objects.filter(runtime=fresh, revoked_at__isnull=True).update(revoked_at=now)
        expired = EnrollmentToken.objects.filter(runtime=fresh, used_at__isnull=True, expires_at__gt=now).update(
            expires_at=now
        )
        record(
            actor=actor, action="runtime.revoke", runtime=fresh,
            changes={"agent_tokens": revoked, "enrollment_tokens": expired},
        )  # fmt: skip
    return revoked


# -- hiding --------------------------------------------------------------------------------------------------------


def hide_runtime(*, actor: Any, org: Organization, name: str) -> Hidden:
    """Hide the runtime ``name`` in ``org``'s subtree: an inherited local one (the declaration rules:
    resources.services.declarations.hide), or a global one offered to the tenant."""
    policy.authorize(actor, "runtime.manage", org)
    name = str(name or "").strip()
    offered = (
        Runtime.objects.filter(kind=Runtime.Kind.GLOBAL, name__iexact=name)
        .filter(pk__in=policy.visible(actor, "runtime.view", Runtime.objects.filter(org__isnull=True)).values("pk"))
        .first()
    )
    if offered is None or not _offered_to(offered, org.tenant_id):
        return hide_declared(actor=actor, org=org, kind=Runtime.KIND, name=name)
    with transaction.atomic():
        lock_tenant(org.tenant_id)
        lock = inheritance.locked_above(Runtime, org, name)
        if lock is not None:
            raise Conflict(f"“{name}” is locked by {lock.org.name}: it cannot be hidden.", code="locked")
        if Runtime.objects.filter(org=org, name__iexact=name).exists():
            raise ValidationError({"name": [f"“{name}” is declared in {org.name} itself: delete it instead."]})
        if Hidden.objects.filter(org=org, kind=Runtime.KIND, name=name.lower()).exists():
            raise Conflict(f"“{name}” is hidden here already.", code="already_hidden")
        hidden = Hidden.objects.create(org=org, kind=Runtime.KIND, name=name.lower(), created_by=user_or_none(actor))
        audit.record(
            actor=actor, action="hidden.create", tenant=org.tenant_id, org=org, target=hidden,
            changes={"type": Runtime.KIND, "name": name},
        )  # fmt: skip
    return hidden


def _offered_to(runtime: Runtime, tenant_id: Any) -> bool:
    return runtime.all_tenants or runtime.tenants.filter(pk=tenant_id).exists()
