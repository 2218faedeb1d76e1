"""System check, deploy only: PostgreSQL's autovacuum must run, above all on the organization table (canopy.W001).

The org tree is a nested set: every create, move or restore renumbers lft/rght of the nodes to the right of the
change, and both columns are indexed (org_tree_range), so each tree write leaves one dead row version and new index
entries for every node it shifted, none of them HOT. Without autovacuum nothing reclaims them: the table and its
indexes grow with every write, range scans of the policy read ever more dead entries, and the statistics the planner
relies on go stale. README.md, "PostgreSQL in production", gives the settings.

Unlike Django's own database checks, this one reads the default database even when ``check`` is given no
``--database``: ``check --deploy`` is where an operator looks. It does nothing on SQLite, and nothing when the
database cannot be reached or read (the deploy check of a build machine without a database must not fail on it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.checks import Tags, Warning, register
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from orgs.models import Organization

ID = "canopy.W001"
README = "see README.md, PostgreSQL in production"

# PostgreSQL's parse_bool: a boolean option may be given as any unique prefix of these words, or 1/0.
_TRUE_WORDS = ("true", "yes", "on")
_FALSE_WORDS = ("false", "no", "off")


def pg_bool(value: str) -> bool | None:
    """What PostgreSQL reads in a boolean setting or storage option (None when it is not a boolean)."""
    text = value.strip().lower()
    if text in ("1", "0"):
        return text == "1"
    # "o" alone is ambiguous (on/off): PostgreSQL refuses it, so it is never stored.
    if not text or text == "o":
        return None
    if any(word.startswith(text) for word in _TRUE_WORDS):
        return True
    if any(word.startswith(text) for word in _FALSE_WORDS):
        return False
    return None


def reloption(options: Iterable[str] | None, name: str) -> str | None:
    """The value of one storage parameter in pg_class.reloptions (a list of "name=value" strings)."""
    for option in options or ():
        key, _, value = option.partition("=")
        if key.strip().lower() == name:
            return value
    return None


def autovacuum_problems(
    server: Mapping[str, str], table: str, reloptions: Iterable[str] | None, alias: str = DEFAULT_DB_ALIAS
) -> list[Warning]:
    """The warnings for what was read: ``server`` maps pg_settings names to values, ``reloptions`` is the org
    table's pg_class.reloptions (None when the table does not exist yet)."""
    where = f"database '{alias}'" if alias != DEFAULT_DB_ALIAS else "the database"
    problems = []
    if pg_bool(server.get("autovacuum", "on")) is False:
        problems.append(
            Warning(
                f"PostgreSQL's autovacuum is off on the server of {where}: nothing reclaims the dead rows every "
                f"tree write leaves in {table} (a nested set: each write renumbers many rows), so the table, its "
                "indexes and the policy's range scans grow with every write, and the planner's statistics go stale.",
                hint=f"Set autovacuum = on in postgresql.conf, or ALTER SYSTEM SET autovacuum = on; SELECT "
                f"pg_reload_conf(); ({README}).",
                id=ID,
            )
        )
    if pg_bool(server.get("track_counts", "on")) is False:
        problems.append(
            Warning(
                f"PostgreSQL's track_counts is off on the server of {where}: autovacuum cannot see which tables "
                f"need vacuuming, so {table} is never vacuumed or analyzed automatically.",
                hint=f"Set track_counts = on (the default) in postgresql.conf ({README}).",
                id=ID,
            )
        )
    table_setting = reloption(reloptions, "autovacuum_enabled")
    if table_setting is not None and pg_bool(table_setting) is False:
        problems.append(
            Warning(
                f"Autovacuum is disabled for the organization table {table} in {where} (storage parameter "
                f"autovacuum_enabled={table_setting}), the table that every tree write renumbers.",
                hint=f"ALTER TABLE {table} RESET (autovacuum_enabled); ({README}).",
                id=ID,
            )
        )
    return problems


def read_autovacuum_state(alias: str, table: str) -> tuple[dict[str, str], list[str] | None] | None:
    """(server settings, the table's reloptions) read from ``alias``; None if it cannot be reached or read."""
    connection = connections[alias]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT name, setting FROM pg_settings WHERE name IN ('autovacuum', 'track_counts')")
            server = {name: setting for name, setting in cursor.fetchall()}
            cursor.execute(
                "SELECT c.reloptions FROM pg_class c WHERE c.oid = to_regclass(%s)",
                [connection.ops.quote_name(table)],
            )
            row = cursor.fetchone()
    except DatabaseError:
        return None
    if row is None:
        return server, None
    return server, list(row[0] or [])


@register(Tags.database, deploy=True)
def autovacuum_enabled(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Warning]:
    table = Organization._meta.db_table
    problems: list[Warning] = []
    for alias in databases if databases is not None else [DEFAULT_DB_ALIAS]:
        if connections[alias].vendor != "postgresql":
            continue
        state = read_autovacuum_state(alias, table)
        if state is not None:
            problems.extend(autovacuum_problems(state[0], table, state[1], alias))
    return problems
