"""The queries behind access.policy, and nothing else reads grants.

Two questions, each answered by ONE SQL statement whatever the depth of the tree:

- ``org_rows(user, org, project)``: every fact that decides the user's capabilities in ``org`` (and ``project``):
  the user's and their teams' unexpired grants on the org's ancestors (a range condition on the tree: tree_id +
  lft/rght, served by the ``org_tree_range`` index), the inheritance cuts on that path, the project's grants, and
  whether the user administers the tenant.
- ``subtree_rows(user)``: every grant the user holds anywhere (directly or through teams), the cuts inside the
  trees they touch, project grants, tenant memberships and objects shared with them: what ``visible()`` turns into
  one filter.

The statements are UNION ALLs of portable SQL (SQLite and PostgreSQL): the ORM cannot express a union over a dozen
tables without extra round trips, and this is the hottest path of the product. They are composed from a few
fragment builders, each written once (``_grant``: any grant table, held directly or through a team, on an org or
a project; ``_cuts``; ``_memberships``; ``_share``), with every table and column name taken from the models'
``_meta`` (as config/hotpath.py does), so a renamed field changes the SQL with it. tests/test_resolver_rows.py
compares every kind of row with the equivalent ORM query on both databases.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import connection, models
from django.utils import timezone

from access.models import (
    OrgTeamGrant,
    OrgUserGrant,
    ProjectTeamGrant,
    ProjectUserGrant,
    Role,
    Team,
    TeamShare,
    TenantMembership,
    User,
    UserShare,
)
from access.roles import SHARE_LEVELS, role_capabilities
from orgs.models import Organization


@dataclass(frozen=True, slots=True)
class Row:
    """One fact. ``kind`` is user | team | project_user | project_team | cut | tenant_admin | tenant_member |
    share (a task shared with the user or a team of theirs: ``object_id`` is the task, ``key`` the level)."""

    kind: str
    tree_id: int | None
    lft: int | None
    rght: int | None
    key: str  # the role key, or the access_inheritance of a cut
    builtin: bool
    capabilities: frozenset[str]
    object_id: uuid.UUID | None  # the org (or project) the row is about; the tenant for memberships
    object_name: str
    grant_id: uuid.UUID | None
    team_name: str

    @property
    def is_admin_role(self) -> bool:
        return self.builtin and self.key == "admin"


def _uuid_param(value: uuid.UUID) -> Any:
    # Django stores UUIDs as 32 hex characters on SQLite and as native uuid on PostgreSQL.
    return value if connection.vendor == "postgresql" else value.hex


def _now_param() -> Any:
    return connection.ops.adapt_datetimefield_value(timezone.now())


def _as_uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def _as_list(value: Any) -> list[str]:
    """A custom role's capabilities: the JSON column arrives decoded on PostgreSQL, as its text on SQLite (it is
    never NULL: the column defaults to an empty list)."""
    return json.loads(value) if isinstance(value, str) else list(value)


def _row(raw: Sequence[Any]) -> Row:
    kind, tree_id, lft, rght, key, role_tenant, custom, object_id, object_name, grant_id, team_name = raw
    builtin = role_tenant is None
    if kind == "share":
        caps = SHARE_LEVELS.get(key, frozenset())
    elif kind in ("cut", "tenant_admin", "tenant_member"):
        caps = frozenset()
    else:
        caps = role_capabilities(key, builtin, _as_list(custom))
    return Row(
        kind=kind,
        tree_id=tree_id,
        lft=lft,
        rght=rght,
        key=key or "",
        builtin=builtin,
        capabilities=caps,
        object_id=_as_uuid(object_id),
        object_name=object_name or "",
        grant_id=_as_uuid(grant_id),
        team_name=team_name or "",
    )


# -- composing the statements --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sql:
    """A piece of SQL with the names of its parameters, in the order their ``%s`` appear. Pieces are joined
    text-and-names together, so no parameter list is kept in step with a statement by hand; the statements are
    composed once per backend (cached) and each call only maps the names to values (``_bind``)."""

    text: str
    params: tuple[str, ...] = ()

    def __add__(self, other: Sql) -> Sql:
        return Sql(self.text + other.text, self.params + other.params)

    @staticmethod
    def join(separator: str, pieces: Sequence[Sql]) -> Sql:
        return Sql(
            separator.join(p.text for p in pieces), tuple(itertools.chain.from_iterable(p.params for p in pieces))
        )


def _table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _col(model: type[models.Model], alias: str, name: str) -> str:
    """``alias.column`` of ``model.name``, the column name read from ``_meta`` (a ForeignKey's ``…_id``)."""
    field = model._meta.get_field(name)
    column = field.column if isinstance(field, models.Field) else None
    if column is None:  # a reverse relation or a many-to-many: no column of this table
        raise TypeError(f"{model.__name__}.{name} is not a column.")
    return f"{alias}.{connection.ops.quote_name(column)}"


def _select(
    kind: str | Sql,
    *,
    place: str = "NULL, NULL, NULL",
    role: str = "NULL, NULL, NULL",
    key: str | None = None,
    object_id: str = "NULL",
    object_name: str = "NULL",
    grant_id: str = "NULL",
    team_name: str = "NULL",
) -> Sql:
    """The eleven columns every row has (``_row`` reads them in this order): kind; tree_id, lft, rght of the org;
    role key, role tenant (NULL = built in), custom capabilities; object id and name; grant id; team name. ``key``
    replaces the role key for rows that carry another word there (a cut's access_inheritance, a share's level)."""
    if key is not None:
        role = f"{key}, NULL, NULL"
    head = kind if isinstance(kind, Sql) else Sql(f"'{kind}'")
    return Sql("SELECT ") + head + Sql(f", {place}, {role}, {object_id}, {object_name}, {grant_id}, {team_name}")


def _place(alias: str) -> str:
    return ", ".join(_col(Organization, alias, f) for f in ("tree_id", "lft", "rght"))


def _holders(model: type[models.Model], alias: str, *, named: bool = True) -> tuple[Sql, Sql, str]:
    """How rows of a grant or share table ``model`` (as ``alias``) are limited to those the user holds: directly
    (its ``user`` column), or through a team they are in (its ``group``, joined to the user's groups and, when
    ``named``, to the team for its name). Returns (joins, condition, team name expression)."""
    if any(f.name == "user" for f in model._meta.get_fields()):
        return Sql(""), Sql(f"{_col(model, alias, 'user')} = %s", ("user",)), "NULL"
    group = _col(model, alias, "group")
    through: type[models.Model] = User.groups.through
    joins = Sql(
        f" JOIN {_table(through)} ug ON {_col(through, 'ug', 'group')} = {group}"
        f" AND {_col(through, 'ug', 'user')} = %s",
        ("user",),
    )
    if not named:
        return joins, Sql(""), "NULL"
    joins += Sql(f" JOIN {_table(Team)} tm ON {_col(Team, 'tm', 'group')} = {group}")
    return joins, Sql(""), _col(Team, "tm", "name")


def _where(*conditions: Sql) -> Sql:
    present = [c for c in conditions if c.text]
    return Sql(" WHERE ") + Sql.join(" AND ", present) if present else Sql("")


def _unexpired(model: type[models.Model]) -> Sql:
    expires = _col(model, "g", "expires_at")
    return Sql(f"({expires} IS NULL OR {expires} > %s)", ("now",))


_GRANT_KINDS: dict[type[models.Model], str] = {
    OrgUserGrant: "user",
    OrgTeamGrant: "team",
    ProjectUserGrant: "project_user",
    ProjectTeamGrant: "project_team",
}


def _grant(model: type[models.Model], *, joins: Sql = Sql(""), where: Sql = Sql("")) -> Sql:
    """The user's unexpired grants in one grant table, direct or through teams (the kind follows from the table).
    A grant on an org carries the org's place and name; a grant on a project only the project's id. ``joins`` and
    ``where`` narrow it to a place (they may name the org as ``o``)."""
    held_joins, held, team_name = _holders(model, "g")
    role = _col(Role, "r", "key") + ", " + _col(Role, "r", "tenant") + ", " + _col(Role, "r", "custom_capabilities")
    target = _col(model, "g", "content_object")
    on_org = model._meta.get_field("content_object").related_model is Organization
    if on_org:
        columns = _select(
            _GRANT_KINDS[model],
            place=_place("o"),
            role=role,
            object_id=_col(Organization, "o", "id"),
            object_name=_col(Organization, "o", "name"),
            grant_id=_col(model, "g", "id"),
            team_name=team_name,
        )
        org_join = Sql(f" JOIN {_table(Organization)} o ON {_col(Organization, 'o', 'id')} = {target}")
    else:
        columns = _select(
            _GRANT_KINDS[model], role=role, object_id=target, grant_id=_col(model, "g", "id"), team_name=team_name
        )
        org_join = Sql("")
    role_join = Sql(f" JOIN {_table(Role)} r ON {_col(Role, 'r', 'id')} = {_col(model, 'g', 'role')}")
    return (
        columns
        + Sql(f" FROM {_table(model)} g")
        + held_joins
        + org_join
        + role_join
        + joins
        + _where(held, where, _unexpired(model))
    )


def _cuts(*, joins: Sql = Sql(""), where: Sql) -> Sql:
    """Orgs that cut inheritance (access_inheritance other than ``all``), narrowed by ``where``. The literal
    ``<> 'all'`` stays in the text: it is the condition of the partial index ``org_inheritance_cuts``, which a
    bound parameter would keep PostgreSQL's generic plan from using."""
    mode = _col(Organization, "o", "access_inheritance")
    return (
        _select(
            "cut",
            place=_place("o"),
            key=mode,
            object_id=_col(Organization, "o", "id"),
            object_name=_col(Organization, "o", "name"),
        )
        + Sql(f" FROM {_table(Organization)} o")
        + joins
        + _where(where, Sql(f"{mode} <> '{Organization.AccessInheritance.ALL.value}'"))
    )


def _memberships(*, one_tenant: bool) -> Sql:
    """The user's tenant memberships: in the one tenant of the org asked about, admins only (``one_tenant``), or
    everywhere, each marked tenant_admin or tenant_member."""
    is_admin = _col(TenantMembership, "m", "is_admin")
    tenant = _col(TenantMembership, "m", "tenant")
    source = Sql(f" FROM {_table(TenantMembership)} m")
    mine = Sql(f"{_col(TenantMembership, 'm', 'user')} = %s", ("user",))
    if one_tenant:
        return (
            _select("tenant_admin", object_id=tenant)
            + source
            + _where(mine, Sql(f"{tenant} = %s", ("tenant",)), Sql(f"{is_admin} = %s", ("true",)))
        )
    kind = Sql(f"CASE WHEN {is_admin} = %s THEN 'tenant_admin' ELSE 'tenant_member' END", ("true",))
    return _select(kind, object_id=tenant) + source + _where(mine)


def _share_models() -> list[type[models.Model]]:
    """Every per-object share table: the concrete subclasses of access.models.UserShare and TeamShare, found in
    the app registry, so the app that owns the shared kind (resources, for tasks) need not be named here."""
    return [m for m in apps.get_models() if issubclass(m, (UserShare, TeamShare))]


def _share(model: type[models.Model]) -> Sql:
    """Objects of one share table shared with the user or a team of theirs; ``key`` is the level (the guardian
    permission's codename, see access.roles.SHARE_LEVELS)."""
    held_joins, held, team_name = _holders(model, "s")
    permission = Sql(
        f" JOIN {_table(Permission)} p ON {_col(Permission, 'p', 'id')} = {_col(model, 's', 'permission')}"
    )
    return (
        _select(
            "share",
            key=_col(Permission, "p", "codename"),
            object_id=_col(model, "s", "content_object"),
            grant_id=_col(model, "s", "id"),
            team_name=team_name,
        )
        + Sql(f" FROM {_table(model)} s")
        + held_joins
        + permission
        + _where(held)
    )


def _granted_trees() -> Sql:
    """The trees where the user holds an org grant (expired ones too: a superset is harmless, cuts only narrow)."""
    pieces = []
    for model in (OrgUserGrant, OrgTeamGrant):
        joins, held, _ = _holders(model, "g", named=False)
        target = _col(model, "g", "content_object")
        org = Sql(f" JOIN {_table(Organization)} gt ON {_col(Organization, 'gt', 'id')} = {target}")
        pieces.append(
            Sql(f"SELECT {_col(Organization, 'gt', 'tree_id')} FROM {_table(model)} g") + joins + org + _where(held)
        )
    return Sql.join(" UNION ", pieces)


# -- the two questions -----------------------------------------------------------------------------------------------


@cache
def _org_rows_statement(vendor: str, with_project: bool) -> Sql:
    """The statement of ``org_rows``, composed once per backend. Parameters: user, now, org, tenant, project."""
    # The org's place in the tree is read by its id inside the statement (see org_rows).
    here = Sql(f" JOIN {_table(Organization)} here ON {_col(Organization, 'here', 'id')} = %s", ("org",))
    tree, lft, rght = (_col(Organization, "o", f) for f in ("tree_id", "lft", "rght"))
    h_tree, h_lft, h_rght = (_col(Organization, "here", f) for f in ("tree_id", "lft", "rght"))
    on_path = Sql(f"{tree} = {h_tree} AND {lft} <= {h_lft} AND {rght} >= {h_rght}")  # ancestors-or-self
    pieces = [
        _grant(OrgUserGrant, joins=here, where=on_path),
        _grant(OrgTeamGrant, joins=here, where=on_path),
        _cuts(joins=here, where=on_path),
        _memberships(one_tenant=True),
    ]
    if with_project:
        for model in (ProjectUserGrant, ProjectTeamGrant):
            pieces.append(_grant(model, where=Sql(f"{_col(model, 'g', 'content_object')} = %s", ("project",))))
    return Sql.join(" UNION ALL ", pieces)


@cache
def _subtree_rows_statement(vendor: str) -> Sql:
    """The statement of ``subtree_rows``, composed once per backend. Parameters: user, now."""
    alive = Sql(f"{_col(Organization, 'o', 'deleted_at')} IS NULL")
    in_granted_trees = Sql(f"{_col(Organization, 'o', 'tree_id')} IN (") + _granted_trees() + Sql(")")
    pieces = [
        _grant(OrgUserGrant, where=alive),
        _grant(OrgTeamGrant, where=alive),
        _cuts(where=in_granted_trees),
        _grant(ProjectUserGrant),
        _grant(ProjectTeamGrant),
        _memberships(one_tenant=False),
        *(_share(model) for model in _share_models()),
    ]
    return Sql.join(" UNION ALL ", pieces)


def org_rows_sql(user: Any, org: Any, project: Any = None) -> tuple[str, list[Any]]:
    """The statement of ``org_rows`` and its parameters (for tests and EXPLAIN)."""
    statement = _org_rows_statement(connection.vendor, project is not None)
    values = {
        "user": _uuid_param(user.pk),
        "now": _now_param(),
        "org": _uuid_param(org.pk),
        "tenant": _uuid_param(org.tenant_id),
        "project": _uuid_param(project.pk) if project is not None else None,
        "true": True,
    }
    return statement.text, [values[name] for name in statement.params]


def org_rows(user: Any, org: Any, project: Any = None) -> list[Row]:
    """The facts that decide ``user``'s capabilities in ``org`` (and in ``project``, which must be in ``org``).

    The org's place in the tree is read by its id inside this very statement, never from the instance: under
    concurrent tree writes the caller's copy of lft/rght may be a snapshot old, and deciding with it would miss
    the grants on an org that moved meanwhile (a false 404)."""
    return [_row(r) for r in _fetch(*org_rows_sql(user, org, project))]


def subtree_rows_sql(user: Any) -> tuple[str, list[Any]]:
    """The statement of ``subtree_rows`` and its parameters (for tests and EXPLAIN)."""
    statement = _subtree_rows_statement(connection.vendor)
    values = {"user": _uuid_param(user.pk), "now": _now_param(), "true": True}
    return statement.text, [values[name] for name in statement.params]


def subtree_rows(user: Any) -> list[Row]:
    """Every grant, cut, project grant, tenant membership and share that bears on what ``user`` sees anywhere."""
    return [_row(r) for r in _fetch(*subtree_rows_sql(user))]


# Statements prepared on each PostgreSQL connection (weak keys: a closed connection takes its names with it).
_prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Run one of the statements above and return its rows: one round trip, one query in the query log.

    On PostgreSQL each statement is prepared once per connection, by a PREPARE sent in the same round trip as its
    first EXECUTE: planning the UNION took 0.7 ms of the 0.8 ms an uncached can() cost. Only these statements are
    prepared: a generic plan would hurt the visible() filters, whose best plan depends on their tree ranges."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql" or not settings.DB_PREPARED_STATEMENTS:
            cursor.execute(sql, params)
            return cursor.fetchall()
        name = "canopy_" + hashlib.blake2s(sql.encode(), digest_size=8).hexdigest()
        known = _prepared.setdefault(connection.connection, set())
        execute = f"EXECUTE {name}({', '.join(['%s'] * len(params))})"
        if name in known:
            cursor.execute(execute, params)
        else:
            counter = itertools.count(1)
            numbered = re.sub(r"%s", lambda _: f"${next(counter)}", sql)
            cursor.execute(f"PREPARE {name} AS {numbered}; {execute}", params)
            cursor.nextset()
            known.add(name)
        return cursor.fetchall()


def blocks(cut: Row, grant: Row) -> bool:
    """Does ``cut`` (an org on the path below the grant's org) stop ``grant`` from flowing into its subtree?"""
    if cut.key == "none":
        return True
    return cut.key == "admins_only" and not grant.is_admin_role
