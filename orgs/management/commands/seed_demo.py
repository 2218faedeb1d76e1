"""Demo data: Acme (paid, five levels) and Globex (free), with a persona for every role; the platform's global
runtime and a sovereign local runtime for Logistics (runtimes.demo). Idempotent."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from access.models import OrgUserGrant, ProjectUserGrant, Role, TenantMembership
from access.services.custom_roles import create_role
from access.services.grants import add_tenant_member, grant_role
from config.actors import SYSTEM
from orgs import services
from orgs.demo_history import seed_history
from orgs.models import Organization, Project, Tenant
from resources import services as rs
from resources.models import Credential, Hidden
from runtimes import demo
from workload import keys as workload_keys
from workload.models import SigningKey

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
    ("carla", "Acme", None, "", "Contractor: on the Parser component's development team, nothing else"),
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
            demo.platform_runtime(superuser)  # before the resources: their demo runs are placed on it
            if not SigningKey.objects.filter(state=SigningKey.State.ACTIVE).exists():
                workload_keys.rotate(actor=superuser)  # runs can ask for workload identity tokens at once
            self._resources(acme_orgs, users)
            runtimes = demo.seed_runtimes(
                superuser=superuser, admin=users["acme-admin"], orgs=acme_orgs, site_url=settings.SITE_URL
            )
            seed_history(acme)  # after the runtimes: the history runs where each task runs today
        self._print(superuser)
        self._print_runtimes(runtimes)

    def _resources(self, orgs: dict[str, Organization], users: dict[str, Any]) -> None:
        """Shared resources that show inheritance at work: declared at the root, overridden, hidden, locked."""
        admin, root = users["acme-admin"], orgs[""]
        if Credential.objects.filter(org=root, name="CRM").exists():
            return  # seeded already
        rs.create_credential(
            actor=admin, org=root, name="CRM", kind="api_key", fields={"header": "X-Api-Key"},
            secret={"key": "demo-not-a-real-key"}, locked=True, description="The company CRM; locked for everyone.",
        )  # fmt: skip
        rs.create_credential(
            actor=admin, org=orgs["Logistics"], name="Carrier portal", kind="http_basic",
            fields={"username": "acme-shipping"}, secret={"password": "demo-password"},
        )  # fmt: skip
        countries = [{"key": "fr", "value": "France"}, {"key": "de", "value": "Germany"}]
        rs.create_lookup_table(actor=admin, org=root, name="Countries", rows=countries)
        rs.create_lookup_table(
            actor=admin, org=orgs["Marketing"], name="Countries", rows=[*countries, {"key": "br", "value": "Brazil"}]
        )
        rs.hide(actor=admin, org=orgs["Customer Success"], kind=Hidden.Kind.LOOKUP_TABLE, name="Countries")
        rs.create_env_var(actor=admin, org=root, key="REGION", value="eu-west")
        rs.create_env_var(actor=admin, org=orgs["Marketing"], key="TRACKING_KEY", value="demo-secret", secret=True)
        rs.set_setting(actor=admin, org=root, key="run_log_retention_days", value=90)
        rs.set_setting(actor=admin, org=orgs["Engineering"], key="allow_task_sharing", value=False, locked=True)
        parser = rs.create_component(
            actor=admin, org=orgs["Engineering/Platform"], name="Parser",
            description="Parses partner files.", repository_url="https://git.example.com/acme/parser",
        )  # fmt: skip
        rs.add_component_member(actor=admin, component=parser, user=users["carla"])
        rs.publish_version(actor=users["carla"], component=parser, version="1.0.0", source="def parse(data): ...")
        website = Project.objects.get(org=orgs["Marketing"], name="Website")
        task = rs.create_task(
            actor=admin, project=website, name="Publish newsletter", description="Every Monday.",
            steps=[{"type": "lookup", "table": "Countries", "key": "fr", "into": "country"},
                   {"type": "http", "method": "POST", "url": "https://mail.example.com/send", "credential": "CRM"},
                   {"type": "log", "message": "sent"}],
        )  # fmt: skip
        rs.stop_run(actor=admin, run=rs.run_task(actor=admin, task=task))
        rs.run_task(actor=admin, task=task)
        rs.share_task(actor=admin, task=task, user=users["bob"], permission="view")

    # -- one concern each; all of them find what exists before creating ------------------------------------------
    def _user(self, username: str, superuser: bool = False) -> Any:
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(username=username, email=f"{username}@example.com", password=PASSWORD)
        if user.email_verified_at is None:  # demo addresses count as proved, so invitations to them can be accepted
            User.objects.filter(pk=user.pk).update(email_verified_at=timezone.now())
        if superuser and not user.is_superuser:
            user.is_superuser = user.is_staff = True
            user.save(update_fields=["is_superuser", "is_staff"])
        return user

    def _tenant(self, name: str, plan: str, admin: Any) -> Tenant:
        tenant = Tenant.objects.filter(name=name, memberships__user=admin).first()
        return tenant or services.create_tenant(actor=SYSTEM, name=name, admin=admin, plan=plan)

    def _tree(self, tenant: Tenant) -> dict[str, Organization]:
        orgs = {"": Organization.objects.get(tenant=tenant, parent__isnull=True)}
        for path, description, projects in ACME_TREE:
            parent_path, _, name = path.rpartition("/")
            parent = orgs[parent_path]
            org = Organization.objects.alive().filter(parent=parent, name=name).first()
            if org is None:
                org = services.create_org(actor=SYSTEM, parent=parent, name=name, description=description)
            if path in ADMINS_ONLY and org.access_inheritance != Organization.AccessInheritance.ADMINS_ONLY:
                org = services.update_org(actor=SYSTEM, org=org, access_inheritance="admins_only")
            orgs[path] = org
            for project in projects:
                self._project(org, project)
        return orgs

    def _project(self, org: Organization, name: str) -> Project:
        return Project.objects.filter(org=org, name=name).first() or services.create_project(
            actor=SYSTEM, org=org, name=name
        )

    def _custom_role(self, root: Organization, name: str, capabilities: list[str]) -> Role:
        role = Role.objects.filter(tenant_id=root.tenant_id, name=name).first()
        return role or create_role(
            actor=SYSTEM,
            org=root,
            name=name,
            capabilities=capabilities,
            description="Sees everything, the audit log included; changes nothing.",
        )

    def _place(self, user: Any, tenant: Tenant, orgs: dict[str, Organization], where: str | None, role: Any) -> None:
        if role == "tenant-admin":
            return  # create_tenant made them tenant administrator and Admin of the root
        if not TenantMembership.objects.filter(tenant=tenant, user=user).exists():
            add_tenant_member(actor=SYSTEM, tenant=tenant, user=user)
        if where is None:
            return
        if where.startswith("project:"):
            _, org_path, project_name = where.split(":")
            project = Project.objects.get(org=orgs[org_path], name=project_name)
            if not ProjectUserGrant.objects.filter(user=user, content_object=project).exists():
                grant_role(actor=SYSTEM, target=project, role=role, user=user)
            return
        org = orgs[where]
        if not OrgUserGrant.objects.filter(user=user, content_object=org).exists():
            grant_role(actor=SYSTEM, target=org, role=role, user=user)

    def _print(self, superuser: Any) -> None:
        self.stdout.write(self.style.SUCCESS("Demo data is ready. Log in at http://127.0.0.1:8000/ with:"))
        self.stdout.write(f"  {'username':<14} {'password':<18} what they can do")
        for username, *_, summary in PEOPLE:
            self.stdout.write(f"  {username:<14} {PASSWORD:<18} {summary}")
        self.stdout.write(f"  {superuser.username:<14} {PASSWORD:<18} Superuser: every tenant, plans, /admin/")

    def _print_runtimes(self, runtimes: demo.DemoRuntimes) -> None:
        self.stdout.write(
            f"Runtimes: “{runtimes.platform.name}” (global, platform default: `make run` starts its agent) and "
            f"“{runtimes.local.name}” (local, sovereign, Logistics is locked to it)."
        )
        for name, command in runtimes.commands.items():
            self.stdout.write(f"  Start an agent for {name} (the enrollment token works once, for an hour):")
            self.stdout.write(f"    {command}")
