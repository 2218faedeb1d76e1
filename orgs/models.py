"""Tenants, the organization tree and projects.

Writes go through orgs.services (locking, plan rules, audit); reads that need access go through access.policy.
"""

import uuid

from django.db import connection, models
from django.db.models.functions import Lower
from mptt.models import MPTTModel, TreeForeignKey
from mptt.querysets import TreeQuerySet

from config import hotpath
from config.concurrency import Versioned
from orgs.tree import OrgTreeManager


class Tenant(Versioned):
    class Plan(models.TextChoices):
        FREE = "free", "Free (root organization only)"
        PAID = "paid", "Paid (unlimited child organizations)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    plan = models.CharField(max_length=10, choices=Plan.choices, default=Plan.FREE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def allows_child_orgs(self) -> bool:
        return self.plan == self.Plan.PAID


class OrganizationQuerySet(TreeQuerySet):
    def alive(self) -> "OrganizationQuerySet":
        return self.filter(deleted_at__isnull=True)

    def deleted(self) -> "OrganizationQuerySet":
        return self.filter(deleted_at__isnull=False)


class OrganizationManager(models.Manager.from_queryset(OrganizationQuerySet)):
    def alive_by_pk(self, pk: uuid.UUID) -> "Organization | None":
        """``alive().filter(pk=pk).first()`` as hand-written SQL: every API request on an org starts here, and the
        ORM's compilation of that queryset cost more CPU than the query."""
        table = connection.ops.quote_name(self.model._meta.db_table)
        sql = f"SELECT {hotpath.select_list(self.model, 'o')} FROM {table} o WHERE o.id = %s AND o.deleted_at IS NULL"  # noqa: S608
        param = self.model._meta.pk.get_db_prep_value(pk, connection)
        return hotpath.fetch_one(sql, [param], lambda row: hotpath.build(self.model, row))


class Organization(MPTTModel, Versioned):
    """A node of a tenant's tree. Every tenant has exactly one tree (one mptt tree_id) with one root.

    The default manager returns soft-deleted nodes too: django-mptt's own updates must see every node of the
    tree, or lft/rght would drift. Readers call ``.alive()``.
    """

    class AccessInheritance(models.TextChoices):
        ALL = "all", "All grants from parent organizations apply"
        ADMINS_ONLY = "admins_only", "Only Admin grants from parent organizations apply"
        NONE = "none", "No grants from parent organizations apply"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="organizations")
    parent = TreeForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="children")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    access_inheritance = models.CharField(
        max_length=12, choices=AccessInheritance.choices, default=AccessInheritance.ALL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Not indexed: every tree write rewrites lft/rght of many rows, and each index on the table multiplies that cost.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # The root of the deleted subtree this node went away with: restore brings the whole subtree back at once.
    deleted_with = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )

    # Declared here, not by django-mptt, to drop the index mptt puts on it: org_tree_range (tree_id first) serves
    # every tree_id lookup, and each index on this table is rewritten for every node a tree write shifts.
    tree_id = models.PositiveIntegerField(editable=False)

    objects = OrganizationManager()
    # django-mptt's tree operations, with moves that rewrite only the rows they change (orgs/tree.py).
    _tree_manager = OrgTreeManager()

    class MPTTMeta:
        # No order_insertion_by: sorting siblings by name would insert in the middle of the nested set and shift
        # half the tree's lft/rght on every create (300 ms at 10k orgs on PostgreSQL). New children are appended
        # (only the nodes to their right move); pages sort siblings by name when they display them.
        pass

    class Meta:
        ordering = ["tree_id", "lft"]
        # The one guardian permission behind role grants: a grant row is (holder, hold_role, org) plus its role.
        permissions = [("hold_role", "Holds a role in the organization")]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                "parent",
                condition=models.Q(deleted_at__isnull=True),
                name="org_name_unique_among_live_siblings",
            ),
            models.UniqueConstraint(
                fields=["tenant"], condition=models.Q(parent__isnull=True), name="org_one_root_per_tenant"
            ),
            # mptt gives each new root max(tree_id) + 1; this makes two tenants sharing a tree impossible even
            # if root creation were not serialized.
            models.UniqueConstraint(
                fields=["tree_id"], condition=models.Q(parent__isnull=True), name="org_one_root_per_tree"
            ),
        ]
        indexes = [
            # (tree_id, lft) is also the index django-mptt would add on its own, so it adds none; rght rides along
            # (INCLUDE, on PostgreSQL) for the ancestor test lft <= x <= rght.
            models.Index(fields=["tree_id", "lft"], include=["rght"], name="org_tree_range"),
            # The policy looks for inheritance cuts on an org's path: a range scan over a handful of rows here
            # instead of over every node to the org's left in the full index.
            models.Index(
                fields=["tree_id", "lft", "rght"],
                condition=~models.Q(access_inheritance="all"),
                name="org_inheritance_cuts",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_root(self) -> bool:
        return self.parent_id is None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def ancestors_q(self, include_self: bool = True) -> models.Q:
        """A filter for this node's ancestors that needs no query: the tree range contains this node."""
        if include_self:
            return models.Q(tree_id=self.tree_id, lft__lte=self.lft, rght__gte=self.rght)
        return models.Q(tree_id=self.tree_id, lft__lt=self.lft, rght__gt=self.rght)

    def descendants_q(self, include_self: bool = True) -> models.Q:
        if include_self:
            return models.Q(tree_id=self.tree_id, lft__gte=self.lft, rght__lte=self.rght)
        return models.Q(tree_id=self.tree_id, lft__gt=self.lft, rght__lt=self.rght)

    def path(self) -> list["Organization"]:
        """Root first, self last, in one query."""
        return list(Organization.objects.filter(self.ancestors_q()).order_by("lft"))

    def path_refs(self) -> list[dict[str, object]]:
        """``path()`` as ids and names only: a deep org's API detail would otherwise build a model per ancestor
        (a third of the request's time at depth 50)."""
        table = connection.ops.quote_name(Organization._meta.db_table)
        with connection.cursor() as cursor:
            # Hand-written: compiling the equivalent queryset cost more CPU than running it.
            cursor.execute(
                f"SELECT id, name FROM {table} WHERE tree_id = %s AND lft <= %s AND rght >= %s ORDER BY lft",  # noqa: S608
                [self.tree_id, self.lft, self.rght],
            )
            return [{"id": str(uuid.UUID(str(pk))), "name": name} for pk, name in cursor.fetchall()]


def ancestors_of(orgs: list[Organization]) -> list[Organization]:
    """Every proper ancestor of the given orgs, in one recursive query (portable to SQLite and PostgreSQL)."""
    parents = {org.parent_id for org in orgs if org.parent_id is not None}
    if not parents:
        return []
    table = Organization._meta.db_table
    pk = Organization._meta.pk
    params = [pk.get_db_prep_value(p, connection) for p in parents]
    placeholders = ", ".join(["%s"] * len(params))
    sql = (
        f"WITH RECURSIVE anc(id) AS (SELECT id FROM {table} WHERE id IN ({placeholders})"  # noqa: S608 - bound params
        f" UNION SELECT o.parent_id FROM {table} o JOIN anc ON o.id = anc.id WHERE o.parent_id IS NOT NULL)"
        f" SELECT o.* FROM {table} o WHERE o.id IN (SELECT id FROM anc)"
    )
    return list(Organization.objects.raw(sql, params))


class Project(Versioned):
    """A workspace inside an organization; integration tasks live in projects."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [("hold_role", "Holds a role in the project")]
        constraints = [models.UniqueConstraint(Lower("name"), "org", name="project_name_unique_in_org")]

    def __str__(self) -> str:
        return self.name
