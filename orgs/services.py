"""Every write to tenants, organizations and projects.

Each service is atomic, takes a keyword-only ``actor`` (a user, or ``config.actors.SYSTEM`` for commands and
bootstrap; None is a TypeError), checks the actor through access.policy, and records its audit event in the same
transaction.

No lost updates (docs/DESIGN.md §4.9): every update and delete re-reads its row under a lock inside the transaction
(after the tenant lock where it takes one), applies only the fields that change (``config.concurrency.
save_changes``, which also raises the row's version) and returns the fresh row. ``version=`` is the version the
caller read (the API's If-Match, the console's and the admin's hidden field): a row changed since is refused with
Stale, naming who changed it and when.

Tree writes lock the tenant row first (SELECT … FOR UPDATE) and re-read the nodes they touch under that lock:
django-mptt computes lft/rght from the instances it is given, so stale instances or two concurrent writers would
corrupt the tree. New roots take mptt's max(tree_id) + 1, so root creation is serialized across tenants too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from access import audit, policy, selectors
from access.models import TenantMembership
from access.services import accounts
from access.services.backing import revoke_unbacked_invitations
from access.services.grants import grant_role
from config.actors import SYSTEM, is_system, require_actor
from config.concurrency import Versions, check_version, lock_for_update, save_changes
from config.errors import Conflict, Forbidden, NotFound, PlanLimit
from orgs.locks import lock_tenant
from orgs.models import Organization, Project, Tenant

NAME_MAX = 100
_ROOT_LOCK_KEY = 0x63616E6F  # any constant: the advisory lock that serializes root creation on PostgreSQL

UPGRADE_HINT = (
    "The Free plan has the root organization only. Upgrade the tenant to the Paid plan to create child "
    "organizations (a superuser sets the plan in the admin, or PATCH /api/v1/tenants/{id} with "
    '{"plan": "paid"}).'
)


def _require(actor: Any, capability: str, obj: Any) -> None:
    policy.authorize(actor, capability, obj)


def _clean_name(value: Any, field: str = "name", max_length: int = NAME_MAX) -> str:
    name = (value or "").strip() if isinstance(value, str) or value is None else None
    if name is None:
        raise ValidationError({field: ["Must be a string."]})
    if not name:
        raise ValidationError({field: ["This field may not be blank."]})
    if len(name) > max_length:
        raise ValidationError({field: [f"Ensure this field has no more than {max_length} characters."]})
    if "/" in name or any(ord(c) < 32 for c in name):
        raise ValidationError({field: ["Names may not contain '/' or control characters."]})
    return name


def _clean_description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError({"description": ["Must be a string."]})
    if len(value) > 2000:
        raise ValidationError({"description": ["Ensure this field has no more than 2000 characters."]})
    return value.strip()


def _serialize_root_creation() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ROOT_LOCK_KEY])
    # SQLite serializes writers itself; the unique constraint on root tree_ids backs both up.


def _sibling_taken(parent: Organization, name: str, exclude: Any = None) -> bool:
    siblings = Organization.objects.alive().filter(parent=parent, name__iexact=name)
    if exclude is not None:
        siblings = siblings.exclude(pk=exclude)
    return siblings.exists()


# --------------------------------------------------------------------------------------------------------------
# Tenants and sign-up


@dataclass(frozen=True)
class SignUp:
    user: Any
    tenant: Tenant
    org: Organization


def create_tenant(*, actor: Any, name: str, admin: Any, plan: str = Tenant.Plan.FREE) -> Tenant:
    """A tenant with its root organization; ``admin`` becomes its tenant administrator."""
    if not policy.access_for(actor).is_superuser:
        raise Forbidden("Only superusers create tenants directly; sign up to create your own.")
    name = _clean_name(name, "tenant_name", 200)
    if plan not in Tenant.Plan.values:
        raise ValidationError({"plan": [f"Choose one of: {', '.join(Tenant.Plan.values)}."]})
    with transaction.atomic():
        _serialize_root_creation()
        tenant = Tenant.objects.create(name=name, plan=plan)
        # A new tenant's tree always goes last (insert_node with no target), touching no other tenant's tree_id
        # (mptt's order_insertion_by, if ever set again, would otherwise sort root trees by name).
        root = Organization(tenant=tenant, parent=None, name=name)
        Organization._tree_manager.insert_node(root, None, save=True)
        # Tenant administrators use the Django admin (scoped to their tenants) without any staff bit: an account's
        # staff and superuser flags are the account's own business and a superuser's (config.admin).
        TenantMembership.objects.create(tenant=tenant, user=admin, is_admin=True)
        audit.record(
            actor=admin if is_system(actor) else actor,
            action="tenant.create",
            tenant=tenant,
            org=root,
            target=tenant,
            changes={"name": name, "plan": plan, "admin": admin.get_username()},
        )
        _after_tenant_created(tenant=tenant, root=root, admin=admin)
    return tenant


def _after_tenant_created(*, tenant: Tenant, root: Organization, admin: Any) -> None:
    """The tenant administrator is also Admin of the root, so they appear as its member like anyone else."""
    grant_role(actor=SYSTEM, target=root, role="admin", user=admin)


def sign_up(*, tenant_name: str, username: str, email: str, password: str) -> SignUp:
    """User + tenant + root organization in one transaction; the user administers the new tenant."""
    if not getattr(settings, "SIGNUP_ENABLED", True):
        raise Forbidden("Sign-up is disabled on this server.", code="signup_disabled")
    errors: dict[str, list[str]] = {}
    try:
        tenant_name = _clean_name(tenant_name, "tenant_name", 200)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    email = (email or "").strip() if isinstance(email, str) else ""
    try:
        validate_email(email)
    except ValidationError:
        errors["email"] = ["Enter a valid email address."]
    username, account_errors = accounts.new_account_problems(username=username, email=email, password=password)
    errors.update(account_errors)
    if "email" not in errors and accounts.verified_owner(email) is not None:
        # A verified address belongs to one account (the owner resets its password, it is not taken over).
        errors["email"] = ["An account already uses this e-mail address: log in, or reset its password."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        user = accounts.create_account(username=username, email=email, password=password)
        tenant = create_tenant(actor=SYSTEM, name=tenant_name, admin=user)
        root = Organization.objects.get(tenant=tenant, parent__isnull=True)
        audit.record(actor=user, action="user.sign_up", tenant=tenant, org=root, target=user)
        transaction.on_commit(lambda: accounts.send_email_verification(user=user))
    return SignUp(user=user, tenant=tenant, org=root)


def update_tenant(
    *, actor: Any, tenant: Tenant, name: str | None = None, plan: str | None = None, version: Versions = None
) -> Tenant:
    """Rename a tenant (its administrators) or change its plan (superusers); returns the fresh row."""
    _require(actor, policy.TENANT_ADMIN, tenant)
    with transaction.atomic():
        tenant = lock_tenant(tenant.pk)  # the tenant's own row: the lock every tenant writer takes
        check_version(tenant, version)
        fields: dict[str, Any] = {}
        if name is not None:
            fields["name"] = _clean_name(name, "name", 200)
        if plan is not None and plan != tenant.plan:
            if not policy.can(actor, policy.TENANT_PLAN, tenant):
                raise Forbidden("Only a superuser changes a tenant's plan.", code="plan_change_forbidden")
            if plan not in Tenant.Plan.values:
                raise ValidationError({"plan": [f"Choose one of: {', '.join(Tenant.Plan.values)}."]})
            if plan == Tenant.Plan.FREE and tenant.organizations.alive().filter(parent__isnull=False).exists():
                raise Conflict(
                    "The Free plan allows the root organization only: delete the child organizations first.",
                    code="plan_downgrade_blocked",
                )
            fields["plan"] = plan
        changes = save_changes(tenant, fields)
        if changes:
            root = tenant.organizations.filter(parent__isnull=True).first()
            audit.record(actor=actor, action="tenant.update", tenant=tenant, org=root, target=tenant, changes=changes)
    return tenant


# --------------------------------------------------------------------------------------------------------------
# Organizations


def create_org(*, actor: Any, parent: Organization, name: str, description: str = "") -> Organization:
    name = _clean_name(name)
    description = _clean_description(description)
    with transaction.atomic():
        tenant = lock_tenant(parent.tenant_id)
        parent = Organization.objects.filter(pk=parent.pk).first()
        if parent is None or parent.is_deleted:
            raise NotFound()
        _require(actor, "org.create_child", parent)
        if not tenant.allows_child_orgs:
            raise PlanLimit(UPGRADE_HINT)
        if _sibling_taken(parent, name):
            raise Conflict(f"An organization named “{name}” already exists in {parent.name}.", code="name_taken")
        org = Organization(tenant=tenant, parent=parent, name=name, description=description)
        org.save()
        audit.record(
            actor=actor,
            action="org.create",
            tenant=tenant,
            org=org,
            target=org,
            changes={"name": name, "parent": str(parent.pk)},
        )
    return org


def update_org(
    *,
    actor: Any,
    org: Organization,
    name: str | None = None,
    description: str | None = None,
    access_inheritance: str | None = None,
    version: Versions = None,
) -> Organization:
    """Change an org's name, description or access inheritance: only the fields given that differ are written."""
    require_actor(actor)
    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = _clean_name(name)
    if description is not None:
        fields["description"] = _clean_description(description)
    if access_inheritance is not None:
        if access_inheritance not in Organization.AccessInheritance.values:
            raise ValidationError(
                {"access_inheritance": [f"Choose one of: {', '.join(Organization.AccessInheritance.values)}."]}
            )
        fields["access_inheritance"] = access_inheritance
    with transaction.atomic():
        tenant = lock_tenant(org.tenant_id)
        org = _lock_org(org)
        _require(actor, "org.manage", org)
        check_version(org, version)  # after the capability: who changed it is for those who may change it
        if "access_inheritance" in fields and org.is_root and fields["access_inheritance"] != org.access_inheritance:
            raise Conflict("The root organization has nothing above it to inherit from.", code="root")
        if "name" in fields and org.parent_id and _sibling_taken(org.parent, fields["name"], exclude=org.pk):
            raise Conflict(f"An organization named “{fields['name']}” already exists there.", code="name_taken")
        if "access_inheritance" in fields and fields["access_inheritance"] != org.access_inheritance:
            # A cut takes inherited rights away below, lifting it lets them in: the delegation rule applies to
            # every capability whose flow into this org changes.
            crossing = selectors.capabilities_crossing(org, fields["access_inheritance"])
            policy.authorize_delegation(actor, crossing, org, action="change how access is inherited here")
        # Only changed columns: nothing here touches the tree, so mptt has nothing to do.
        changes = save_changes(org, fields)
        if not changes:
            return org
        audit.record(actor=actor, action="org.update", tenant=tenant, org=org, target=org, changes=changes)
        if "access_inheritance" in changes:
            revoke_unbacked_invitations(actor=actor, tenant_id=org.tenant_id)
    return org


def _lock_org(org: Organization) -> Organization:
    """``org``'s live row again, FOR UPDATE (after the tenant lock); a deleted one answers 404 like a missing one.
    The caller checks the version once it has authorized the actor."""
    node = lock_for_update(org)
    if node.is_deleted:
        raise NotFound()
    return node


def move_org(*, actor: Any, org: Organization, parent: Organization, version: Versions = None) -> Organization:
    """Re-parent ``org`` (and its subtree) under ``parent`` in the same tenant. ``version`` is the moved org's:
    whoever decided the move on a stale view of it (renamed, cut, moved meanwhile) is told so."""
    require_actor(actor)
    with transaction.atomic():
        tenant = lock_tenant(org.tenant_id)
        node = _lock_org(org)
        _require(actor, "org.view", node)
        _require(actor, policy.TENANT_ADMIN, node)
        check_version(node, version)
        if parent.tenant_id != node.tenant_id:
            raise Conflict("Organizations move inside their own tenant only.", code="cross_tenant")
        target = Organization.objects.filter(pk=parent.pk).first()
        if target is None or target.is_deleted:
            raise Conflict("The new parent does not exist or is deleted.", code="parent_deleted")
        if node.is_root:
            raise Conflict("The root organization cannot be moved.", code="root")
        if target.tree_id == node.tree_id and node.lft <= target.lft and target.rght <= node.rght:
            raise Conflict("An organization cannot move into its own subtree.", code="cycle")
        if target.pk == node.parent_id:
            return node
        if not tenant.allows_child_orgs:
            raise PlanLimit(UPGRADE_HINT)
        if _sibling_taken(target, node.name, exclude=node.pk):
            raise Conflict(f"An organization named “{node.name}” already exists in {target.name}.", code="name_taken")
        old_parent_id = node.parent_id
        node.parent = target
        node.version += 1
        # mptt moves the subtree, as the new parent's last child, and saves the node: every column of a row read
        # under the tenant lock and its own row lock, so nothing written by another writer is undone.
        node.save()
        audit.record(
            actor=actor,
            action="org.move",
            tenant=tenant,
            org=node,
            target=node,
            changes={"parent": [str(old_parent_id), str(target.pk)]},
        )
        # Inherited rights change with the new ancestors: invitations their inviter no longer backs end now.
        revoke_unbacked_invitations(actor=actor, tenant_id=tenant.pk)
    node.refresh_from_db()
    return node


def delete_org(*, actor: Any, org: Organization, version: Versions = None) -> Organization:
    """Soft-delete ``org`` and its live subtree; restore_org brings them back within the restore window. Every
    row deleted gets a new version (its deleted_at changed)."""
    require_actor(actor)
    with transaction.atomic():
        tenant = lock_tenant(org.tenant_id)
        node = _lock_org(org)
        _require(actor, policy.TENANT_ADMIN, node)
        check_version(node, version)
        if node.is_root:
            raise Conflict("The root organization cannot be deleted.", code="root")
        now = timezone.now()
        count = (
            Organization.objects.alive()
            .filter(node.descendants_q())
            .update(deleted_at=now, deleted_with=node, version=F("version") + 1)
        )
        audit.record(
            actor=actor, action="org.delete", tenant=tenant, org=node, target=node, changes={"organizations": count}
        )
        node.deleted_at, node.deleted_with_id, node.version = now, node.pk, node.version + 1
    return node


def restore_org(*, actor: Any, org: Organization, version: Versions = None) -> Organization:
    """Bring back a subtree deleted with ``org`` (within the restore window); returns the fresh row."""
    require_actor(actor)
    with transaction.atomic():
        tenant = lock_tenant(org.tenant_id)
        node = lock_for_update(org)
        _require(actor, policy.TENANT_ADMIN, tenant)
        check_version(node, version)
        if not node.is_deleted:
            raise Conflict("This organization is not deleted.", code="not_deleted")
        if node.deleted_with_id != node.pk:
            raise Conflict(
                "This organization was deleted with a parent organization: restore that one instead.",
                code="deleted_with_parent",
            )
        if node.deleted_at is not None and node.deleted_at < timezone.now() - settings.ORG_RESTORE_WINDOW:
            raise Conflict("The restore window for this organization has passed.", code="restore_window")
        parent = node.parent
        if parent is not None and parent.is_deleted:
            raise Conflict(f"Its parent {parent.name} is deleted: restore that first.", code="parent_deleted")
        if parent is not None and _sibling_taken(parent, node.name, exclude=node.pk):
            raise Conflict(
                f"An organization named “{node.name}” now exists in {parent.name}: rename it first.",
                code="name_taken",
            )
        count = Organization.objects.filter(deleted_with=node).update(
            deleted_at=None, deleted_with=None, version=F("version") + 1
        )
        audit.record(
            actor=actor, action="org.restore", tenant=tenant, org=node, target=node, changes={"organizations": count}
        )
    node.refresh_from_db()
    return node


def purge_deleted_orgs(*, older_than: Any = None) -> int:
    """Remove, for good, subtrees deleted before ``older_than`` (default: now − ORG_RESTORE_WINDOW)."""
    cutoff = older_than or timezone.now() - settings.ORG_RESTORE_WINDOW
    purged = 0
    roots = list(
        Organization.objects.filter(deleted_at__lt=cutoff, deleted_with_id=F("pk")).values_list("pk", "tenant_id")
    )
    for pk, tenant_id in roots:
        with transaction.atomic():
            tenant = lock_tenant(tenant_id)
            node = Organization.objects.filter(pk=pk, deleted_at__lt=cutoff).first()
            if node is None:
                continue
            size = node.get_descendant_count() + 1
            audit.record(
                actor=SYSTEM, action="org.purge", tenant=tenant, org=None, target=node, changes={"organizations": size}
            )
            node.delete()  # mptt closes the gap in lft/rght; CASCADE removes the subtree and its projects
            purged += size
    return purged


# --------------------------------------------------------------------------------------------------------------
# Projects


def create_project(*, actor: Any, org: Organization, name: str, description: str = "") -> Project:
    name = _clean_name(name)
    description = _clean_description(description)
    with transaction.atomic():
        org = Organization.objects.filter(pk=org.pk).first()
        if org is None or org.is_deleted:
            raise NotFound()
        _require(actor, "project.manage", org)
        if Project.objects.filter(org=org, name__iexact=name).exists():
            raise Conflict(f"A project named “{name}” already exists in {org.name}.", code="name_taken")
        try:
            with transaction.atomic():
                project = Project.objects.create(org=org, name=name, description=description)
        except IntegrityError:
            raise Conflict(f"A project named “{name}” already exists in {org.name}.", code="name_taken") from None
        audit.record(
            actor=actor, action="project.create", tenant=org.tenant_id, org=org, target=project, changes={"name": name}
        )
    return project


def update_project(
    *,
    actor: Any,
    project: Project,
    name: str | None = None,
    description: str | None = None,
    version: Versions = None,
) -> Project:
    """Rename or describe a project: only the fields given that differ are written; returns the fresh row."""
    require_actor(actor)
    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = _clean_name(name)
    if description is not None:
        fields["description"] = _clean_description(description)
    with transaction.atomic():
        project = _lock_project(project)
        _require(actor, "project.manage", project)
        check_version(project, version)
        if (
            "name" in fields
            and Project.objects.filter(org=project.org, name__iexact=fields["name"]).exclude(pk=project.pk).exists()
        ):
            raise Conflict(f"A project named “{fields['name']}” already exists here.", code="name_taken")
        changes = save_changes(project, fields)
        if changes:
            audit.record(
                actor=actor,
                action="project.update",
                tenant=project.org.tenant_id,
                org=project.org,
                target=project,
                changes=changes,
            )
    return project


def delete_project(*, actor: Any, project: Project, version: Versions = None) -> None:
    require_actor(actor)
    with transaction.atomic():
        project = _lock_project(project)
        _require(actor, "project.manage", project)
        check_version(project, version)
        if tasks := project.tasks.count():
            # Deleting would take the tasks, their runs and logs with it: make it a deliberate, separate step.
            raise Conflict(
                f"{project.name} holds {tasks} integration task(s): delete them first.", code="project_not_empty"
            )
        audit.record(
            actor=actor,
            action="project.delete",
            tenant=project.org.tenant_id,
            org=project.org,
            target=project,
            changes={"name": project.name},
        )
        project.delete()


def _lock_project(project: Project) -> Project:
    """The project's row FOR UPDATE, read with its org afresh (the policy decides from the org's
    current place in the tree, not from the caller's copy); a project of a deleted org answers 404 like a missing
    one."""
    fresh = Project.objects.select_for_update(of=("self",)).select_related("org").filter(pk=project.pk).first()
    if fresh is None or fresh.org.is_deleted:
        raise NotFound()
    return fresh
