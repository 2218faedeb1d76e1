"""Credentials, lookup tables, environment variables and private components: create, change, delete.

Every write checks the capability through the policy, keeps the inheritance rules (declarations.check_declare),
runs in one transaction and records an audit event that never holds a secret value.

Changes never lose a concurrent one (docs/DESIGN.md §4.9): each takes the tenant lock, re-reads its row ``FOR UPDATE``
(``declarations.locked_for_change``), decides everything — authorization, validation against the current kind or
secret flag, the merge of secret fields — on that fresh row, and saves only the changed columns with the version raised
(``declarations.apply_changes``).
``version=`` (the API's If-Match, the version a form was opened at) makes a stale change a Stale (412) instead.
A stored secret is decrypted only under the lock, so a merge always starts from the secret as it is now.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from access import audit, policy
from access.models import TenantMembership
from config import hostile, kinds
from config.actors import user_or_none
from config.concurrency import Versions, check_version, save_changes, touch
from config.errors import Conflict, Forbidden, NotFound
from orgs.models import Organization
from resources import crypto
from resources.models import (
    Component,
    ComponentMember,
    ComponentVersion,
    Credential,
    EnvVar,
    LookupRow,
    LookupTable,
)
from resources.services.declarations import (
    DeclarationServices,
    apply_changes,
    clean_name,
    create_declaration,
    delete_declaration,
    fresh_for_change,
    locked_for_change,
)
from resources.settings_registry import setting_value

# -- credentials ---------------------------------------------------------------------------------------------------

# kind → (required non-secret fields, optional non-secret fields, required secret fields, optional secret fields);
# ``generic`` takes any field names.
CREDENTIAL_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "http_basic": (("username",), (), ("password",), ()),
    "api_key": ((), ("header", "prefix"), ("key",), ()),
    "oauth2_client": (("client_id", "token_url"), ("scopes", "audience"), ("client_secret",), ()),
    "generic": ((), (), (), ()),
}
FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,49}$")
MAX_FIELDS = 20


def _clean_source(source: Any) -> str:
    if source not in Credential.Source.values:
        raise ValidationError({"source": [f"Give one of: {', '.join(Credential.Source.values)}."]})
    return str(source)


def _refuse_runtime_secret(secret: Any) -> None:
    """A credential whose secret lives on the runtime takes none here: a given one is refused, never stored."""
    if secret:
        raise ValidationError(
            {"secret": ["This credential's secret is kept on the runtime: Canopy accepts no secret value for it. "
                        "Set it in the agent's environment (CANOPY_SECRET_<NAME>_<FIELD>) or its secrets file."]}
        )  # fmt: skip


def _clean_credential(
    kind: str, fields: Any, secret: Any, *, stored_secret: list[str] | None = None, on_runtime: bool = False
) -> None:
    """``on_runtime``: the secret fields live on the runtime, so none is required (or accepted) here."""
    if kind not in CREDENTIAL_KINDS:
        raise ValidationError({"kind": [f"Give one of: {', '.join(CREDENTIAL_KINDS)}."]})
    required, optional, secret_required, secret_optional = CREDENTIAL_KINDS[kind]
    errors: dict[str, list[str]] = {}
    if not isinstance(fields, dict):
        errors["fields"] = ["Give an object of field names to text values."]
    if secret is not None and not isinstance(secret, dict):
        errors["secret"] = ["Give an object of secret field names to text values."]
    if errors:
        raise ValidationError(errors)
    for label, given, needed, allowed in (
        ("fields", fields, required, optional),
        ("secret", secret or {}, secret_required, secret_optional),
    ):
        names = set(given)
        if kind != "generic" and (unknown := names - set(needed) - set(allowed)):
            errors.setdefault(label, []).append(
                f"Unknown field(s) for {kind}: {', '.join(sorted(unknown))}. "
                f"Allowed: {', '.join(needed + allowed) or 'none'}."
            )
        if len(names) > MAX_FIELDS:
            errors.setdefault(label, []).append(f"At most {MAX_FIELDS} fields.")
        for name, value in given.items():
            if not FIELD_NAME_RE.match(str(name)):
                errors.setdefault(label, []).append(f"“{str(name)[:50]}” is not a valid field name.")
            if not isinstance(value, str) or not value.strip() or len(value) > 10_000:
                # Never echo a value: it may be a secret.
                errors.setdefault(label, []).append(f"{name}: give a non-empty text of at most 10,000 characters.")
        present = names | (set(stored_secret or ()) if label == "secret" else set())
        if label == "secret" and on_runtime:
            continue
        if missing := [n for n in needed if n not in present]:
            errors.setdefault(label, []).append(f"Required for {kind}: {', '.join(missing)}.")
    if errors:
        raise ValidationError(errors)


def create_credential(
    *,
    actor: Any,
    org: Organization,
    name: str,
    kind: str,
    fields: dict[str, str] | None = None,
    secret: dict[str, str] | None = None,
    description: str = "",
    locked: bool = False,
    source: str = Credential.Source.CANOPY,
) -> Credential:
    """``source="runtime"``: the secret lives on the runtime that runs the task; Canopy accepts none (400) and
    stores none — the non-secret fields are still checked against the kind."""
    name = clean_name(name)
    fields = fields or {}
    source = _clean_source(source)
    on_runtime = source == Credential.Source.RUNTIME
    if on_runtime:
        _refuse_runtime_secret(secret)
    _clean_credential(kind, fields, secret or {}, on_runtime=on_runtime)
    with transaction.atomic():
        credential = create_declaration(
            Credential, actor=actor, org=org, capability="credential.manage", name=name, kind=kind, fields=fields,
            description=description, locked=locked, source=source, secret_names=sorted(secret or {}),
            secret_ciphertext=crypto.encrypt(secret) if secret else "",
        )  # fmt: skip
        audit.record(
            actor=actor, action="credential.create", tenant=org.tenant_id, org=org, target=credential,
            changes={"name": name, "kind": kind, "source": source, "fields": sorted(fields),
                     "secret_fields": sorted(secret or {}), "locked": locked},
        )  # fmt: skip
    return credential


def update_credential(
    *,
    actor: Any,
    credential: Credential,
    secret: dict[str, Any] | None = None,
    version: Versions = None,
    **fields: Any,
) -> Credential:
    """Change name, description, fields or lock; ``secret`` sets the given secret fields (a null value removes
    one), keeping the others. The kind cannot change: delete and re-create instead. Returns the fresh credential.

    ``source``: "runtime" moves the secret to the runtime — the stored secret is erased (the audit event names the
    erased fields, never a value) and no secret is accepted while it stays there; back to "canopy", the kind's
    secret fields must be given again (nothing was kept).

    The secret is merged into the one stored in the row as it is under the lock, never into the copy the caller
    loaded: decrypting before the lock would write back a secret someone else replaced in between."""
    policy.authorize(actor, "credential.manage", credential)
    if "name" in fields:
        fields["name"] = clean_name(fields["name"])
    if secret is not None and not isinstance(secret, dict):
        raise ValidationError({"secret": ["Give an object of secret field names to text values."]})
    with transaction.atomic():
        credential = locked_for_change(credential, actor=actor, capability="credential.manage", version=version)
        if fields.pop("kind", credential.kind) != credential.kind:
            raise ValidationError({"kind": ["The kind of a credential cannot change: create a new credential."]})
        also: tuple[str, ...] = ()
        source = _clean_source(fields.get("source", credential.source))
        if "source" in fields:
            fields["source"] = source
        erased: list[str] | None = None
        if source == Credential.Source.RUNTIME:
            _refuse_runtime_secret(secret)
            _clean_credential(credential.kind, fields.get("fields", credential.fields), {}, on_runtime=True)
            if credential.secret_ciphertext or credential.secret_names:
                erased = list(credential.secret_names)
                credential.secret_ciphertext, credential.secret_names = "", []
                also = ("secret_ciphertext", "secret_names")
            secret = None
        elif secret is not None:
            merged = {**(crypto.decrypt(credential.secret_ciphertext) or {}), **secret}
            merged = {k: v for k, v in merged.items() if v is not None}
            _clean_credential(credential.kind, fields.get("fields", credential.fields), merged)
            credential.secret_ciphertext = crypto.encrypt(merged) if merged else ""
            credential.secret_names = sorted(merged)
            also = ("secret_ciphertext", "secret_names")
        else:
            _clean_credential(
                credential.kind, fields.get("fields", credential.fields), {}, stored_secret=credential.secret_names
            )
        changes = apply_changes(credential, fields, actor=actor, also=also)
        if "fields" in changes:  # names only: a non-secret value may still be sensitive
            changes["fields"] = [sorted(changes["fields"][0]), sorted(changes["fields"][1])]
        if erased is not None:  # the names of what was erased, never a value
            changes["secret_erased"] = sorted(erased)
        if secret is not None:
            changes["secret_fields_set"] = sorted(k for k, v in secret.items() if v is not None)
            changes["secret_fields_removed"] = sorted(k for k, v in secret.items() if v is None)
        audit.record(
            actor=actor, action="credential.update", tenant=credential.org.tenant_id, org=credential.org,
            target=credential, changes=changes,
        )  # fmt: skip
    return credential


def delete_credential(*, actor: Any, credential: Credential, version: Versions = None) -> None:
    delete_declaration(
        credential, actor=actor, capability="credential.manage", action="credential.delete", version=version
    )


# -- lookup tables -------------------------------------------------------------------------------------------------

MAX_KEY = 255
MAX_VALUE = 4_096
MAX_CSV_BYTES = 2 * 1024 * 1024


def _clean_rows(rows: Any, org: Organization) -> list[tuple[str, str]]:
    if not isinstance(rows, list):
        raise ValidationError({"rows": ["Give a list of {“key”, “value”} objects."]})
    limit = setting_value(org, "max_lookup_table_rows")
    if len(rows) > limit:
        raise ValidationError(
            {"rows": [f"{len(rows):,} rows is more than this organization's limit of {limit:,} rows per table."]}
        )
    cleaned, seen, errors = [], set(), []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or set(row) - {"key", "value"} or "key" not in row:
            errors.append(f"Row {number}: give an object with “key” and “value”.")
            continue
        key, value = row.get("key"), row.get("value", "")
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY:
            errors.append(f"Row {number}: the key must be a non-empty text of at most {MAX_KEY} characters.")
            continue
        if value is None:
            value = ""
        if not isinstance(value, str) or len(value) > MAX_VALUE:
            errors.append(f"Row {number}: the value must be a text of at most {MAX_VALUE:,} characters.")
            continue
        key = key.strip()
        if key in seen:
            errors.append(f"Row {number}: the key “{key[:50]}” appears twice.")
            continue
        seen.add(key)
        cleaned.append((key, value))
        if len(errors) >= 20:
            break
    if errors:
        raise ValidationError({"rows": errors})
    return cleaned


def _replace_rows(table: LookupTable, rows: list[tuple[str, str]]) -> None:
    LookupRow.objects.filter(table=table).delete()
    LookupRow.objects.bulk_create([LookupRow(table=table, key=k, value=v) for k, v in rows], batch_size=1000)


def create_lookup_table(
    *,
    actor: Any,
    org: Organization,
    name: str,
    description: str = "",
    rows: list[dict[str, str]] | None = None,
    locked: bool = False,
) -> LookupTable:
    name = clean_name(name)
    cleaned = _clean_rows(rows or [], org)
    with transaction.atomic():
        table = create_declaration(
            LookupTable, actor=actor, org=org, capability="lookup.manage", name=name, description=description,
            locked=locked,
        )  # fmt: skip
        _replace_rows(table, cleaned)
        audit.record(
            actor=actor, action="lookup_table.create", tenant=org.tenant_id, org=org, target=table,
            changes={"name": name, "rows": len(cleaned), "locked": locked},
        )  # fmt: skip
    return table


def update_lookup_table(
    *,
    actor: Any,
    table: LookupTable,
    rows: list[dict[str, str]] | None = None,
    version: Versions = None,
    **fields: Any,
) -> LookupTable:
    """Change name, description or lock, and replace the rows when ``rows`` is given (under the table's lock, the
    version raised: the rows are part of the table). Returns the fresh table."""
    policy.authorize(actor, "lookup.manage", table)
    if "name" in fields:
        fields["name"] = clean_name(fields["name"])
    cleaned = _clean_rows(rows, table.org) if rows is not None else None
    return _write_table(actor=actor, table=table, version=version, fields=fields, rows=cleaned)


def _write_table(
    *,
    actor: Any,
    table: LookupTable,
    version: Versions,
    fields: dict[str, Any],
    rows: list[tuple[str, str]] | None = None,
    merge: list[dict[str, str]] | None = None,
) -> LookupTable:
    """The one write of a lookup table: ``rows`` (cleaned) replace the rows; ``merge`` (raw) is merged into the
    rows the table holds under the lock (same key: new value), so a concurrent import is never undone."""
    with transaction.atomic():
        table = locked_for_change(table, actor=actor, capability="lookup.manage", version=version)
        if merge is not None:
            merged = dict(table.rows.values_list("key", "value"))
            merged.update((str(r["key"]).strip(), r["value"]) for r in merge)
            rows = _clean_rows([{"key": k, "value": v} for k, v in merged.items()], table.org)
        replace = rows is not None and sorted(rows) != sorted(table.rows.values_list("key", "value"))
        changes: dict[str, Any] = apply_changes(table, fields, actor=actor, also=("updated_at",) if replace else ())
        if rows is not None:
            if replace:
                _replace_rows(table, rows)
            changes["rows"] = len(rows)
        audit.record(
            actor=actor, action="lookup_table.update", tenant=table.org.tenant_id, org=table.org, target=table,
            changes=changes,
        )  # fmt: skip
    return table


def delete_lookup_table(*, actor: Any, table: LookupTable, version: Versions = None) -> None:
    delete_declaration(table, actor=actor, capability="lookup.manage", action="lookup_table.delete", version=version)


def _parse_lookup_csv(content: bytes | str) -> list[dict[str, str]]:
    """The rows of a CSV file (``key,value``; a first line ``key,value`` is a header), as the import reads them:
    UTF-8 text of at most MAX_CSV_BYTES, two columns a line (ValidationError on ``file`` otherwise)."""
    if isinstance(content, bytes):
        if len(content) > MAX_CSV_BYTES:
            raise ValidationError({"file": [f"The file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB."]})
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError({"file": ["The file is not UTF-8 text."]}) from None
    # NUL (PostgreSQL's text columns refuse it) or, in a text, a lone surrogate (it cannot even be encoded).
    hostile.check_text(content, "The file", field="file")
    if len(content.encode()) > MAX_CSV_BYTES:
        raise ValidationError({"file": [f"The file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB."]})
    rows: list[dict[str, str]] = []
    try:
        for number, record in enumerate(csv.reader(io.StringIO(content)), start=1):
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            if number == 1 and [c.strip().lower() for c in record] == ["key", "value"]:
                continue
            if len(record) != 2:
                raise ValidationError({"file": [f"Line {number}: give exactly two columns, key and value."]})
            rows.append({"key": record[0], "value": record[1]})
    except csv.Error as exc:
        raise ValidationError({"file": [f"The file is not valid CSV: {exc}."]}) from None
    return rows


def import_lookup_csv(
    *, actor: Any, table: LookupTable, content: bytes | str, replace: bool = True, version: Versions = None
) -> int:
    """Rows from CSV (``key,value``; a first line ``key,value`` is a header). ``replace`` drops the old rows,
    otherwise the file's rows are merged into the rows the table holds when the import runs (same key: new
    value). Returns the number of rows in the table."""
    policy.authorize(actor, "lookup.manage", table)
    rows = _parse_lookup_csv(content)
    if replace:
        table = _write_table(actor=actor, table=table, version=version, fields={}, rows=_clean_rows(rows, table.org))
    else:
        table = _write_table(actor=actor, table=table, version=version, fields={}, merge=rows)
    return table.rows.count()


@dataclass(frozen=True)
class LookupImport:
    """What a CSV import would do to a table, counted before it runs (the console's question names it): the rows
    the table has now (``version``) and in the file, and the keys the import adds, changes and removes."""

    version: int
    rows_now: int
    rows_in_file: int
    added: int
    changed: int
    removed: int


def plan_lookup_import(
    *, actor: Any, table: LookupTable, content: bytes | str, replace: bool = True, version: Versions = None
) -> LookupImport:
    """Check a CSV import exactly as ``import_lookup_csv`` would (the capability, the version, the file, the rows
    and the org's row limit) and count what it would do, writing nothing (one query of the current rows)."""
    policy.authorize(actor, "lookup.manage", table)
    check_version(table, version)
    rows = _parse_lookup_csv(content)
    now = dict(table.rows.values_list("key", "value"))
    if replace:
        incoming = dict(_clean_rows(rows, table.org))
    else:
        incoming = {str(r["key"]).strip(): r["value"] for r in rows}
        _clean_rows([{"key": k, "value": v} for k, v in (now | incoming).items()], table.org)
    return LookupImport(
        version=table.version,
        rows_now=len(now),
        rows_in_file=len(rows),
        added=sum(1 for key in incoming if key not in now),
        changed=sum(1 for key, value in incoming.items() if key in now and now[key] != value),
        removed=sum(1 for key in now if key not in incoming) if replace else 0,
    )


def export_lookup_csv(table: LookupTable) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["key", "value"])
    for key, value in table.rows.values_list("key", "value"):
        writer.writerow([_csv_safe(key), _csv_safe(value)])
    return out.getvalue()


def _csv_safe(value: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection) in exported cells."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


# -- environment variables -----------------------------------------------------------------------------------------

ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


def _clean_key(key: Any) -> str:
    key = str(key or "").strip()
    if not ENV_KEY_RE.match(key):
        raise ValidationError(
            {"key": ["Use 1 to 100 letters, digits or underscores, not starting with a digit." if key else
                     "This field is required."]}
        )  # fmt: skip
    return key


def _clean_env_value(value: Any) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > 10_000:
        raise ValidationError({"value": ["Give a text of at most 10,000 characters."]})
    return value


def create_env_var(
    *,
    actor: Any,
    org: Organization | None = None,
    component: Component | None = None,
    key: str,
    value: str = "",
    secret: bool = False,
    locked: bool = False,
) -> EnvVar:
    key, value = _clean_key(key), _clean_env_value(value)
    if secret and not value:
        raise ValidationError({"value": ["A secret variable needs a value."]})
    with transaction.atomic():
        if component is not None:
            policy.authorize(actor, "envvar.manage", component.org)
            org = component.org
            if EnvVar.objects.filter(component=component, key__iexact=key).exists():
                raise Conflict(f"{component.name} has a variable “{key}” already.", code="name_taken")
            variable = EnvVar.objects.create(
                org=org, component=component, key=key, created_by=user_or_none(actor),
                value="" if secret else value, secret=secret,
                secret_ciphertext=crypto.encrypt(value) if secret else "",
            )  # fmt: skip
        else:
            assert org is not None
            variable = create_declaration(
                EnvVar, actor=actor, org=org, capability="envvar.manage", key=key, locked=locked,
                value="" if secret else value, secret=secret,
                secret_ciphertext=crypto.encrypt(value) if secret else "",
            )  # fmt: skip
        audit.record(
            actor=actor, action="env_var.create", tenant=org.tenant_id, org=org, target=variable,
            changes={"key": key, "secret": secret, "locked": locked, "component": component.name if component else None}
            | ({} if secret else {"value": value}),
        )  # fmt: skip
    return variable


def update_env_var(*, actor: Any, variable: EnvVar, version: Versions = None, **fields: Any) -> EnvVar:
    """Change key, value, secret flag or lock. Making a variable non-secret needs a new value: the old one is
    never revealed. What the change may do is decided on the variable as it is under the lock (was it secret?),
    not on the copy the caller loaded. Returns the fresh variable."""
    policy.authorize(actor, "envvar.manage", variable.org)
    if "key" in fields:
        fields["key"] = _clean_key(fields["key"])
    value = fields.pop("value", None)
    if value is not None:
        value = _clean_env_value(value)
    with transaction.atomic():
        on = _org_of if variable.component_id is not None else None
        variable = locked_for_change(variable, actor=actor, capability="envvar.manage", version=version, on=on)
        secret = fields.pop("secret", variable.secret)
        if variable.secret and not secret and value is None:
            raise ValidationError({"value": ["Give the value: a secret one is never shown, so it cannot be kept."]})
        if secret and not variable.secret and (value is None or value == variable.value):
            # The old value was visible to every viewer and is in the audit log: it cannot become a secret.
            raise ValidationError(
                {"value": ["Give a new value: the current one was not secret, so it cannot become one."]}
            )
        if secret and value == "":
            raise ValidationError({"value": ["A secret variable needs a value."]})
        if variable.component_id is not None:
            fields.pop("locked", None)  # a component's variable is not inherited: nothing to lock
            key = fields.get("key")
            if key is not None and (
                EnvVar.objects.filter(component_id=variable.component_id, key__iexact=key)
                .exclude(pk=variable.pk)
                .exists()
            ):
                raise Conflict(f"The component has a variable “{key}” already.", code="name_taken")
        also: tuple[str, ...] = ()
        secret_changes: dict[str, Any] = {}
        if secret:
            if value is not None:  # the secret value is never compared, listed or logged: always re-encrypted
                variable.secret_ciphertext = crypto.encrypt(value)
                also = ("secret_ciphertext",)
                secret_changes["value"] = "(secret value set)"
            fields.update(secret=True, value="")
        else:
            if variable.secret:  # a secret becomes plain: the new value is shown from now on
                variable.secret_ciphertext = ""
                also = ("secret_ciphertext",)
            fields["secret"] = False
            if value is not None:
                fields["value"] = value
        if variable.component_id is not None:
            changes = save_changes(variable, fields, also=also)
        else:
            changes = apply_changes(variable, fields, actor=actor, also=also)
        if variable.secret:  # only the words "(secret value set)", never a value
            changes.pop("value", None)
        changes.update(secret_changes)
        audit.record(
            actor=actor, action="env_var.update", tenant=variable.org.tenant_id, org=variable.org, target=variable,
            changes=changes,
        )  # fmt: skip
    return variable


def delete_env_var(*, actor: Any, variable: EnvVar, version: Versions = None) -> None:
    delete_declaration(
        variable, actor=actor, capability="envvar.manage", action="env_var.delete", version=version, on=_org_of
    )


def _org_of(item: Any) -> Organization:
    """What an environment variable's capability is checked on: its org (a component's variable included)."""
    return item.org


# -- private components --------------------------------------------------------------------------------------------

VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,49}$")


def create_component(
    *,
    actor: Any,
    org: Organization,
    name: str,
    description: str = "",
    repository_url: str = "",
    locked: bool = False,
) -> Component:
    return COMPONENTS.create(
        actor=actor, org=org, name=name, description=description, repository_url=repository_url, locked=locked
    )


def _clean_url(url: Any) -> str:
    url = str(url or "").strip()
    if url:
        try:
            URLValidator(schemes=["https", "http", "ssh", "git"])(url)
        except ValidationError:
            raise ValidationError(
                {"repository_url": ["Enter a valid repository URL (https://, ssh:// or git://)."]}
            ) from None
    return url


def update_component(*, actor: Any, component: Component, version: Versions = None, **fields: Any) -> Component:
    """Change name, description, repository URL or lock. Returns the fresh component."""
    return COMPONENTS.update(actor=actor, item=component, version=version, **fields)


def delete_component(*, actor: Any, component: Component, version: Versions = None) -> None:
    COMPONENTS.delete(actor=actor, item=component, version=version)


def add_component_member(*, actor: Any, component: Component, user: Any, version: Versions = None) -> ComponentMember:
    """Put a user of the tenant on the development team; they need no org role (a contractor). Push rights come
    from the team only, so joining it is never self-service: another manager of the component adds you.

    The team is part of the component: the change locks the component's row and raises its version, so two
    managers editing the team (or a stale admin form) cannot undo each other."""
    policy.authorize(actor, "component.manage", component)
    if user is not None and getattr(actor, "pk", None) == user.pk:
        raise Forbidden(
            "You cannot add yourself to a development team: push rights come from the team only, so another "
            "manager of the component adds you.",
            code="self_add",
        )
    if user is None or not TenantMembership.objects.filter(tenant_id=component.org.tenant_id, user=user).exists():
        raise ValidationError({"user": ["No such user in this tenant: invite them first."]})
    with transaction.atomic():
        component = fresh_for_change(component, actor=actor, capability="component.manage", version=version)
        if ComponentMember.objects.filter(component=component, user=user).exists():
            raise Conflict(f"{user.get_username()} is on the development team already.", code="already_member")
        member = ComponentMember.objects.create(component=component, user=user, added_by=user_or_none(actor))
        touch(component)
        audit.record(
            actor=actor, action="component.member_add", tenant=component.org.tenant_id, org=component.org,
            target=component, changes={"user": user.get_username()},
        )  # fmt: skip
    policy.forget(user)
    return member


def remove_component_member(*, actor: Any, component: Component, user: Any, version: Versions = None) -> Component:
    """Take a user off the development team (under the component's lock, its version raised). Returns the fresh
    component."""
    policy.authorize(actor, "component.manage", component)
    with transaction.atomic():
        component = fresh_for_change(component, actor=actor, capability="component.manage", version=version)
        member = ComponentMember.objects.filter(component=component, user=user).first()
        if member is None:
            raise NotFound("Not on the development team.")
        member.delete()
        touch(component)
        audit.record(
            actor=actor, action="component.member_remove", tenant=component.org.tenant_id, org=component.org,
            target=component, changes={"user": user.get_username()},
        )  # fmt: skip
    policy.forget(user)
    return component


def publish_version(*, actor: Any, component: Component, version: str, source: str) -> ComponentVersion:
    """Development-team members only: an org role, Admin included, never gives push rights."""
    policy.authorize(actor, "component.view", component)
    if not policy.can(actor, policy.COMPONENT_PUSH, component):
        raise Forbidden(
            "Only members of the component's development team can publish versions.", code="not_on_development_team"
        )
    version = str(version or "").strip()
    errors = {}
    if not VERSION_RE.match(version):
        errors["version"] = ["Use 1 to 50 letters, digits, dots, dashes, plus signs or underscores (e.g. 1.4.0)."]
    if not isinstance(source, str) or not source.strip() or len(source) > 200_000:
        errors["source"] = ["Give the source: a non-empty text of at most 200,000 characters."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        if ComponentVersion.objects.filter(component=component, version=version).exists():
            raise Conflict(f"Version {version} is published already: versions are immutable.", code="version_exists")
        published = ComponentVersion.objects.create(
            component=component, version=version, source=source, published_by=user_or_none(actor)
        )
        audit.record(
            actor=actor, action="component.version_publish", tenant=component.org.tenant_id, org=component.org,
            target=component, changes={"version": version, "source_bytes": len(source.encode())},
        )  # fmt: skip
    return published


# -- the kinds' services, as the generic faces call them (config.kinds.KindServices) ----------------------------
# Each kind's writes are not plain (secrets, rows, a component's variables, repository URLs), so each names its own
# over the functions above, which keep their keyword (``credential=``, ``table=``, …) for the callers that name it.


@kinds.kind_services(Credential)
class CredentialServices(DeclarationServices):
    """Secret fields are merged under the lock and never audited (update_credential)."""

    model = Credential

    def create(self, *, actor: Any, org: Organization, **fields: Any) -> Credential:
        return create_credential(actor=actor, org=org, **fields)

    def update(self, *, actor: Any, item: Any, version: Versions = None, **fields: Any) -> Credential:
        return update_credential(actor=actor, credential=item, version=version, **fields)

    def delete(self, *, actor: Any, item: Any, version: Versions = None) -> None:
        delete_credential(actor=actor, credential=item, version=version)


@kinds.kind_services(LookupTable)
class LookupTableServices(DeclarationServices):
    """The rows are part of the table: replaced under the table's lock (update_lookup_table)."""

    model = LookupTable

    def create(self, *, actor: Any, org: Organization, **fields: Any) -> LookupTable:
        return create_lookup_table(actor=actor, org=org, **fields)

    def update(self, *, actor: Any, item: Any, version: Versions = None, **fields: Any) -> LookupTable:
        return update_lookup_table(actor=actor, table=item, version=version, **fields)

    def delete(self, *, actor: Any, item: Any, version: Versions = None) -> None:
        delete_lookup_table(actor=actor, table=item, version=version)


@kinds.kind_services(EnvVar)
class EnvVarServices(DeclarationServices):
    """Secret values are encrypted and a component's own variables are decided on its org (update_env_var)."""

    model = EnvVar

    def create(self, *, actor: Any, org: Organization, **fields: Any) -> EnvVar:
        return create_env_var(actor=actor, org=org, **fields)

    def update(self, *, actor: Any, item: Any, version: Versions = None, **fields: Any) -> EnvVar:
        return update_env_var(actor=actor, variable=item, version=version, **fields)

    def delete(self, *, actor: Any, item: Any, version: Versions = None) -> None:
        delete_env_var(actor=actor, variable=item, version=version)


@kinds.kind_services(Component)
class ComponentServices(DeclarationServices):
    """The default declaration writes plus a checked repository URL (the development team and versions have their
    own services above). The audit event of a creation names the repository, not the description."""

    model = Component

    def clean(self, fields: dict[str, Any], *, org: Organization, item: Any = None) -> dict[str, Any]:
        fields = super().clean(fields, org=org, item=item)
        if "repository_url" in fields or item is None:
            fields["repository_url"] = _clean_url(fields.get("repository_url"))
        return fields

    def audited(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": fields["name"],
            "repository_url": fields["repository_url"],
            "locked": fields.get("locked", False),
        }


COMPONENTS = ComponentServices()
