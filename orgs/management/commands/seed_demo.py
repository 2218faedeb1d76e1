"""Demo data: Acme (paid, five levels) and Globex (free), with a persona for every role. Idempotent."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from access.models import OrgUserGrant, ProjectUserGrant, Role, TenantMembership
from access.services.custom_roles import create_role
from access.services.grants import add_tenant_member, grant_role
from orgs import services
from orgs.models import Organization, Project, Tenant

PASSWORD = "canopy-demo-2026"

# The Acme tree: (path below the root, description, projects).
ACME_TREE: list[tuple[str, str, list[str]]] = [
    ("Marketing", "Brand, web and campaigns.", ["Website"]),
    ("Marketing/EMEA", "Europe, Middle East and Africa.", []),
    ("Marketing/EMEA/Campaigns", "Seasonal campaigns.", ["Newsletter"]),
    ("Marketing/Americas", "North and South America.", []),
    ("Logistics", "Shipping and stock.", ["Shipment sync"]),
    ("Logistics/Warehousing", "The warehouses.", ["Stock levels"]),
    ("Customer Success", "Support and onboarding.", ["CRM sync"]),
    ("Engineering", "The platform team.", []),
    ("Engineering/Platform", "Shared runtimes and components; only Admin grants flow in.", ["Build pipeline"]),
]
ADMINS_ONLY = ["Engineering/Platform"]

SECURITY_OFFICER = [
    "org.view", "member.view", "project.view", "task.view", "credential.view", "lookup.view",
    "envvar.view", "component.view", "runtime.view", "audit.view",
]  # fmt: skip

# username: (tenant, where, role, what they can do) — where is an org path or "project:<org path>:<project>".
PEOPLE: list[tuple[str, str, str, str, str]] = [
    ("acme-admin", "Acme", "", "tenant-admin", "Tenant administrator of Acme: everything, admin site included"),
    ("maria", "Acme", "Marketing", "admin", "Admin of Marketing and below"),
    ("ivan", "Acme", "Logistics", "integrator", "Integrator in Logistics and below"),
    ("gwen", "Acme", "Customer Success", "guest", "Guest in Customer Success"),
    ("sam", "Acme", "", "security-officer", "Security officer: sees all of Acme and its audit log, changes nothing"),
    ("paula", "Acme", "project:Marketing:Website", "integrator", "Integrator on the Website project only"),
    ("bob", "Acme", None, "", "In Acme without any role: sees nothing yet"),
    ("globex-admin", "Globex", "", "tenant-admin", "Tenant administrator of Globex (Free plan)"),
]


class Command(BaseCommand):
    help = "Create demo tenants, organizations, projects and users (idempotent). Prints the logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Run even with DEBUG off. The demo users have a published password: never on a real server.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["allow_production"]:
            raise CommandError("seed_demo creates users with a known password: it runs only with DEBUG=True.")
        with transaction.atomic():
            users = {name: self._user(name) for name, *_ in PEOPLE}
            acme = self._tenant("Acme", Tenant.Plan.PAID, users["acme-admin"])
            globex = self._tenant("Globex", Tenant.Plan.FREE, users["globex-admin"])
            acme_orgs = self._tree(acme)
            globex_root = Organization.objects.get(tenant=globex, parent__isnull=True)
            self._project(globex_root, "Secret plans")
            officer = self._custom_role(acme_orgs[""], "Security officer", SECURITY_OFFICER)
            tenants = {"Acme": (acme, acme_orgs), "Globex": (globex, {"": globex_root})}
            for username, tenant_name, where, role, _ in PEOPLE:
                tenant, orgs = tenants[tenant_name]
                self._place(users[username], tenant, orgs, where, officer if role == "security-officer" else role)
            superuser = self._user("root", superuser=True)
        self._print(superuser)

    # -- one concern each; all of them find what exists before creating ------------------------------------------
    def _user(self, username: str, superuser: bool = False) -> Any:
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(username=username, email=f"{username}@example.com", password=PASSWORD)
        if superuser and not user.is_superuser:
            user.is_superuser = user.is_staff = True
            user.save(update_fields=["is_superuser", "is_staff"])
        return user

    def _tenant(self, name: str, plan: str, admin: Any) -> Tenant:
        tenant = Tenant.objects.filter(name=name, memberships__user=admin).first()
        return tenant or services.create_tenant(actor=None, name=name, admin=admin, plan=plan)

    def _tree(self, tenant: Tenant) -> dict[str, Organization]:
        orgs = {"": Organization.objects.get(tenant=tenant, parent__isnull=True)}
        for path, description, projects in ACME_TREE:
            parent_path, _, name = path.rpartition("/")
            parent = orgs[parent_path]
            org = Organization.objects.alive().filter(parent=parent, name=name).first()
            if org is None:
                org = services.create_org(actor=None, parent=parent, name=name, description=description)
            if path in ADMINS_ONLY and org.access_inheritance != Organization.AccessInheritance.ADMINS_ONLY:
                org = services.update_org(actor=None, org=org, access_inheritance="admins_only")
            orgs[path] = org
            for project in projects:
                self._project(org, project)
        return orgs

    def _project(self, org: Organization, name: str) -> Project:
        return Project.objects.filter(org=org, name=name).first() or services.create_project(
            actor=None, org=org, name=name
        )

    def _custom_role(self, root: Organization, name: str, capabilities: list[str]) -> Role:
        role = Role.objects.filter(tenant_id=root.tenant_id, name=name).first()
        return role or create_role(
            actor=None,
            org=root,
            name=name,
            capabilities=capabilities,
            description="Sees everything, the audit log included; changes nothing.",
        )

    def _place(self, user: Any, tenant: Tenant, orgs: dict[str, Organization], where: str | None, role: Any) -> None:
        if role == "tenant-admin":
            return  # create_tenant made them tenant administrator and Admin of the root
        if not TenantMembership.objects.filter(tenant=tenant, user=user).exists():
            add_tenant_member(actor=None, tenant=tenant, user=user)
        if where is None:
            return
        if where.startswith("project:"):
            _, org_path, project_name = where.split(":")
            project = Project.objects.get(org=orgs[org_path], name=project_name)
            if not ProjectUserGrant.objects.filter(user=user, content_object=project).exists():
                grant_role(actor=None, target=project, role=role, user=user)
            return
        org = orgs[where]
        if not OrgUserGrant.objects.filter(user=user, content_object=org).exists():
            grant_role(actor=None, target=org, role=role, user=user)

    def _print(self, superuser: Any) -> None:
        self.stdout.write(self.style.SUCCESS("Demo data is ready. Log in at http://127.0.0.1:8000/ with:"))
        self.stdout.write(f"  {'username':<14} {'password':<18} what they can do")
        for username, *_, summary in PEOPLE:
            self.stdout.write(f"  {username:<14} {PASSWORD:<18} {summary}")
        self.stdout.write(f"  {superuser.username:<14} {PASSWORD:<18} Superuser: every tenant, plans, /admin/")
