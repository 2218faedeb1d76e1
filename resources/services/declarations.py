"""Writes shared by every declaration: the checks that keep inheritance consistent, hides and settings.

Rules enforced here, whatever face calls:
- a name is declared once per org (409 ``name_taken``);
- a name locked above cannot be declared, renamed to, or hidden below (409 ``locked``);
- locking a declaration that descendants override or hide is refused until they are removed (409 ``overridden_below``);
- only an inherited name can be hidden, and only once per org;
- each write takes the tenant's row lock first (orgs.locks.lock_tenant), or two concurrent writes could both
  pass these checks;
- no lost updates (docs/DESIGN.md §4.9): a change re-reads its row ``FOR UPDATE`` (``fresh_for_change``), decides
  authorization on that fresh row, refuses a stale ``version`` (the API's If-Match, a form's opened version) with
  Stale, and saves only the columns that changed (config.concurrency.save_changes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction

from access import audit, fences, policy
from access.models import AuditEvent
from config import kinds
from config.actors import require_actor, user_or_none
from config.concurrency import Versions, check_version, lock_for_update, save_changes
from config.errors import Conflict, NotFound, Stale
from orgs.locks import lock_tenant
from orgs.models import Organization
from resources import inheritance
from resources.models import Declaration, Hidden, OrgSetting
from resources.settings_registry import REGISTRY, clean_value

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
NAME_HELP = "Use 1 to 100 letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit."


def fresh_for_change(
    item: Any, *, actor: Any, capability: str, version: Versions, on: Callable[[Any], models.Model] | None = None
) -> Any:
    """``item``'s row read again ``FOR UPDATE`` (inside ``transaction.atomic``, after the tenant lock where the write
    takes one), authorized on that fresh row (``on`` picks the object the capability is checked on, e.g. the org),
    then Stale unless it is at ``version``. The capability is checked before the version, so a caller who may not
    change the object learns nothing (not even its version or who changed it) from a stale write."""
    fresh = lock_for_update(item)
    policy.authorize(actor, capability, on(fresh) if on is not None else fresh)
    check_version(fresh, version)
    return fresh


def locked_for_change(
    item: Any, *, actor: Any, capability: str, version: Versions, on: Callable[[Any], models.Model] | None = None
) -> Any:
    """The tenant's lock, then ``item``'s fresh row under its own lock, authorized and at ``version`` (Stale if
    not): what every change and delete of a declaration starts with, inside its transaction."""
    lock_tenant(item.org.tenant_id)
    return fresh_for_change(item, actor=actor, capability=capability, version=version, on=on)


def create_declaration(
    model: type[Declaration], *, actor: Any, org: Organization, capability: str, **fields: Any
) -> Any:
    """Authorize, then under the tenant's lock check the inheritance rules and create the row (the caller audits,
    in its own transaction around this one)."""
    policy.authorize(actor, capability, org)
    with transaction.atomic():
        lock_tenant(org.tenant_id)
        check_declare(model, org, fields[model.NAME_FIELD], bool(fields.get("locked", False)), actor=actor)
        return model._default_manager.create(org=org, created_by=user_or_none(actor), **fields)


def delete_declaration(
    item: Any, *, actor: Any, capability: str, action: str, version: Versions, on: Callable[[Any], Any] | None = None
) -> None:
    """Authorize, lock, re-read (Stale when not at ``version``), audit ``action`` with the name, delete."""
    policy.authorize(actor, capability, on(item) if on is not None else item)
    with transaction.atomic():
        item = locked_for_change(item, actor=actor, capability=capability, version=version, on=on)
        audit.record(
            actor=actor, action=action, tenant=item.org.tenant_id, org=item.org, target=item,
            changes={item.NAME_FIELD: item.declared_name},
        )  # fmt: skip
        item.delete()


def clean_name(value: Any, field: str = "name") -> str:
    name = str(value or "").strip()
    if not NAME_RE.match(name):
        raise ValidationError({field: [NAME_HELP if name else "This field is required."]})
    return name


def org_scope(model: type[Declaration]) -> Any:
    """The declarations that take part in org inheritance (a component's own variables do not): the registry's
    inheritable queryset of the kind."""
    return kinds.of(model).inheritable_queryset()


def check_declare(
    model: type[Declaration], org: Organization, name: str, locked: bool, *, actor: Any, instance: Any = None
) -> None:
    """Refuse a declaration (or a change of one) that would break the inheritance rules. Raises Conflict (naming
    below only the orgs ``actor`` may see)."""
    scope = org_scope(model)
    label = model._meta.verbose_name
    taken = scope.filter(org=org, **{f"{model.NAME_FIELD}__iexact": name})
    if instance is not None:
        taken = taken.exclude(pk=instance.pk)
    if taken.exists():
        raise Conflict(f"A {label} named “{name}” is already declared in {org.name}.", code="name_taken")
    lock = inheritance.locked_above(model, org, name, scope)
    if lock is not None:
        raise Conflict(f"“{name}” is locked by {lock.org.name}: it cannot be overridden in {org.name}.", code="locked")
    if locked:
        check_lockable(model, org, name, actor=actor)


def check_lockable(model: type[Declaration], org: Organization, name: str, *, actor: Any) -> None:
    """Refuse locking ``name`` at ``org`` while orgs below override or hide it (409 ``overridden_below``). The
    message names the ones ``actor`` may see and counts the others (a subtree below a cut of access inheritance is
    not theirs to see, nor its names)."""
    overriding = inheritance.below(model, org, name, org_scope(model))
    hides = inheritance.hidden_below(model.KIND, org, name) if model.KIND else []
    if not overriding and not hides:
        return
    orgs = {d.org.pk: d.org.name for d in overriding} | {h.org.pk: h.org.name for h in hides}
    visible = policy.visible(actor, "org.view", Organization.objects.filter(pk__in=list(orgs)))
    seen = set(visible.values_list("pk", flat=True))
    where = sorted(orgs[pk] for pk in seen)
    unseen = len(orgs) - len(seen)
    if unseen:
        where.append(f"{unseen} organization{'s' if unseen != 1 else ''} you cannot see")
    raise Conflict(
        f"“{name}” is overridden or hidden below (in {', '.join(where)}): remove those before locking it.",
        code="overridden_below",
    )


# -- the writes of a declared kind ------------------------------------------------------------------------------


def apply_changes(item: Any, fields: dict[str, Any], *, actor: Any, also: tuple[str, ...] = ()) -> dict[str, list[Any]]:
    """Apply ``fields`` to ``item`` (a row read under its lock; inheritance checks when the name or the lock
    changes, their refusals worded for ``actor``) and save only what changed, the version raised: the diff for the
    audit event. ``also`` names columns the caller set beside them (secrets, which never appear in the diff)."""
    name_field = item.NAME_FIELD
    if name_field in fields and str(fields[name_field]).lower() != item.declared_name.lower():
        locked = fields.get("locked", item.locked)
        check_declare(type(item), item.org, fields[name_field], locked, actor=actor, instance=item)
    elif fields.get("locked") and not item.locked:
        check_lockable(type(item), item.org, fields.get(name_field, item.declared_name), actor=actor)
    return save_changes(item, fields, also=also)


def declaration_model(model: type[models.Model]) -> type[Declaration]:
    """``model`` as a declaration (TypeError if it is not one: only declarations take part in org inheritance)."""
    if not issubclass(model, Declaration):
        raise TypeError(f"{model._meta.label} is not a declaration.")
    return model


class DeclarationServices:
    """The writes of a plain declared kind (config.kinds.KindServices): what a kind gets when its faces.py names no
    services, and the base of the kinds whose writes are not plain (resources/services/resources.py).

    Each write: the actor is required (SYSTEM may do everything, ``None`` is a programming error); the kind's manage
    capability is decided by the policy (404 when the org or item is not visible, 403 without it); then, in one
    transaction, the tenant's lock, the inheritance checks (a name once per org, nothing under a lock above, no lock
    over overrides or hides below), the row re-read ``FOR UPDATE`` and refused when stale (``version``), only the
    changed columns saved with the version raised, and an audit event ``<kind>.create|update|delete`` (``<kind>``:
    the hide kind, e.g. ``runtime``, else the label with underscores) holding the diff. Hooks for subclasses:
    ``clean`` (field values, raising ValidationError) and ``audited`` (what of the fields the audit log may hold)."""

    model: type[Declaration] | None = None  # a subclass names its kind's model; the defaults get it per instance

    def __init__(self, model: type[models.Model] | None = None) -> None:
        if model is not None:
            self.model = declaration_model(model)

    @property
    def declared(self) -> type[Declaration]:
        assert self.model is not None, f"{type(self).__name__} names no model"
        return self.model

    @property
    def kind(self) -> kinds.Kind:
        return kinds.of(self.declared)

    @property
    def action(self) -> str:
        """The prefix of the audit events: ``credential``, ``lookup_table``, ``runtime``."""
        kind = self.kind
        return kind.hidden_kind or kind.label.replace(" ", "_")

    # -- hooks --

    def clean(self, fields: dict[str, Any], *, org: Organization, item: Any = None) -> dict[str, Any]:
        """The field values to write (``item`` is None on create): the name is checked like every declaration's."""
        name_field = self.kind.name_field
        if name_field in fields or item is None:
            fields[name_field] = clean_name(fields.get(name_field), name_field)
        return fields

    def audited(self, fields: dict[str, Any]) -> dict[str, Any]:
        """What of the created fields the audit event holds (override to leave out anything sensitive)."""
        return dict(fields)

    # -- writes --

    def create(self, *, actor: Any, org: Organization, **fields: Any) -> Any:
        kind = self.kind
        require_actor(actor)
        policy.authorize(actor, kind.manage, org)
        fields = self.clean(dict(fields), org=org)
        with transaction.atomic():
            item = create_declaration(self.declared, actor=actor, org=org, capability=kind.manage, **fields)
            audit.record(
                actor=actor, action=f"{self.action}.create", tenant=org.tenant_id, org=org, target=item,
                changes=self.audited(fields),
            )  # fmt: skip
        return item

    def update(self, *, actor: Any, item: Any, version: Versions = None, **fields: Any) -> Any:
        kind = self.kind
        require_actor(actor)
        policy.authorize(actor, kind.manage, item)
        fields = self.clean(dict(fields), org=item.org, item=item)
        with transaction.atomic():
            item = locked_for_change(item, actor=actor, capability=kind.manage, version=version)
            changes = apply_changes(item, fields, actor=actor)
            audit.record(
                actor=actor, action=f"{self.action}.update", tenant=item.org.tenant_id, org=item.org, target=item,
                changes=changes,
            )  # fmt: skip
        return item

    def delete(self, *, actor: Any, item: Any, version: Versions = None) -> None:
        require_actor(actor)
        delete_declaration(
            item, actor=actor, capability=self.kind.manage, action=f"{self.action}.delete", version=version
        )


def services_for(model: type[models.Model]) -> Any:
    """The writes of ``model``'s kind: its registered services (config.kinds.kind_services), else the defaults."""
    return kinds.faces_of(model).services or DeclarationServices(model)


# -- hides ---------------------------------------------------------------------------------------------------------


def hide(*, actor: Any, org: Organization, kind: str, name: str) -> Hidden:
    """Hide, in ``org``'s subtree, what an org above declares as ``name`` of ``kind`` (a hideable kind of the registry:
    a new kind needs no entry here). A kind whose services have their own ``hide`` (runtimes: also the platform's
    global ones) decides there, whichever face asks."""
    hideable = kinds.registry.hideable()
    if kind not in hideable:
        raise ValidationError({"type": [f"Give one of: {', '.join(hideable)}."]})
    own = getattr(services_for(hideable[kind].model), "hide", None)
    if own is not None:
        return own(actor=actor, org=org, name=name)
    return hide_declared(actor=actor, org=org, kind=kind, name=name)


def hide_declared(*, actor: Any, org: Organization, kind: str, name: str) -> Hidden:
    """``hide`` for what orgs above declare (the inheritance rules: declared above, not locked, not declared here)."""
    hideable = kinds.registry.hideable()
    policy.authorize(actor, hideable[kind].manage, org)
    model = declaration_model(hideable[kind].model)
    name = str(name or "").strip()
    if not name:
        raise ValidationError({"name": ["This field is required."]})
    with transaction.atomic():
        lock_tenant(org.tenant_id)
        scope = org_scope(model)
        if scope.filter(org=org, **{f"{model.NAME_FIELD}__iexact": name}).exists():
            raise ValidationError({"name": [f"“{name}” is declared in {org.name} itself: delete it instead."]})
        if not inheritance.declared_above(model, org, name, scope):
            raise ValidationError({"name": [f"No {model._meta.verbose_name} named “{name}” is inherited here."]})
        lock = inheritance.locked_above(model, org, name, scope)
        if lock is not None:
            raise Conflict(f"“{name}” is locked by {lock.org.name}: it cannot be hidden.", code="locked")
        if Hidden.objects.filter(org=org, kind=kind, name=name.lower()).exists():
            raise Conflict(f"“{name}” is hidden here already.", code="already_hidden")
        hidden = Hidden.objects.create(org=org, kind=kind, name=name.lower(), created_by=user_or_none(actor))
        audit.record(
            actor=actor, action="hidden.create", tenant=org.tenant_id, org=org, target=hidden,
            changes={"type": kind, "name": name},
        )  # fmt: skip
    return hidden


def unhide(*, actor: Any, hidden: Hidden) -> None:
    policy.authorize(actor, kinds.registry.hideable()[hidden.kind].manage, hidden.org)
    with transaction.atomic():
        audit.record(
            actor=actor, action="hidden.delete", tenant=hidden.org.tenant_id, org=hidden.org, target=hidden,
            changes={"type": hidden.kind, "name": hidden.name},
        )  # fmt: skip
        hidden.delete()


def hidden_here(org: Organization) -> list[Hidden]:
    return list(Hidden.objects.filter(org=org).order_by("kind", "name"))


# -- settings ------------------------------------------------------------------------------------------------------


def set_setting(
    *, actor: Any, org: Organization, key: str, value: Any, locked: bool = False, version: Versions = None
) -> OrgSetting:
    """Set ``key`` at ``org`` (the row is created, or the existing one changed under its lock). ``version`` is the
    version of the row at ``org`` the caller read, 0 for "not set here" (``setting_version``): Stale otherwise."""
    policy.authorize(actor, "policy.manage", org)
    if key not in REGISTRY:
        raise NotFound(f"Unknown setting “{key}”.")
    cleaned = clean_value(key, value)
    with transaction.atomic():
        lock_tenant(org.tenant_id)
        current = OrgSetting.objects.filter(org=org, key=key).first()
        if current is not None:
            current = fresh_for_change(current, actor=actor, capability="policy.manage", version=version, on=_org)
        else:
            _check_absent(org, key, version)
        lock = inheritance.locked_above(OrgSetting, org, key)
        if lock is not None:
            raise Conflict(f"“{key}” is locked by {lock.org.name}: it cannot be changed in {org.name}.", code="locked")
        if locked and not (current is not None and current.locked):
            check_lockable(OrgSetting, org, key, actor=actor)
        if current is None:
            current = OrgSetting.objects.create(
                org=org, key=key, value=cleaned, locked=locked, created_by=user_or_none(actor)
            )
            changes: dict[str, Any] = {"key": key, "value": cleaned, "locked": locked}
        else:
            changes = save_changes(current, {"value": cleaned, "locked": locked})
        audit.record(actor=actor, action="setting.set", tenant=org.tenant_id, org=org, target=current, changes=changes)
        _rules_changed(org, key)
    return current


def reset_setting(*, actor: Any, org: Organization, key: str, version: Versions = None) -> None:
    """Drop the value set at ``org``: the inherited one (or the default) applies again."""
    policy.authorize(actor, "policy.manage", org)
    with transaction.atomic():
        current = OrgSetting.objects.filter(org=org, key=key).first()
        if current is None:
            raise NotFound(f"“{key}” is not set in {org.name}.")
        current = fresh_for_change(current, actor=actor, capability="policy.manage", version=version, on=_org)
        audit.record(
            actor=actor, action="setting.reset", tenant=org.tenant_id, org=org, target=current,
            changes={"key": key, "value": current.value},
        )  # fmt: skip
        current.delete()
        _rules_changed(org, key)


# Settings that are authentication rules (access/fences.py): the tenant's cached "enforces something" answer goes.
_FENCE_SETTINGS = frozenset({"require_2fa"})


def _rules_changed(org: Organization, key: str) -> None:
    if key in _FENCE_SETTINGS:
        fences.invalidate(org.tenant_id)


def setting_version(org: Organization, key: str) -> int:
    """The version of ``key``'s row at ``org``, 0 when it is not set there: the ETag of the setting at ``org``."""
    return OrgSetting.objects.filter(org=org, key=key).values_list("version", flat=True).first() or 0


def _check_absent(org: Organization, key: str, version: Versions) -> None:
    """``key`` is not set at ``org``: a caller who read a version of its row (not 0) is stale; the reset that
    removed the row says who and when."""
    expected = None if version is None else ({version} if isinstance(version, int) else set(version))
    if expected is None or 0 in expected:
        return
    row = (
        AuditEvent.objects.filter(org=org, target_type=OrgSetting._meta.label_lower, target_name=key)
        .order_by("-created_at")
        .values_list("actor_name", "created_at")
        .first()
    )
    raise Stale(version=0, changed_by=row[0] if row else None, changed_at=row[1] if row else None)


def _org(setting: OrgSetting) -> Organization:
    return setting.org
