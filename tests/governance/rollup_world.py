"""A hand-built world for the roll-up tests, every number known in advance.

On top of the shared personas (Acme › Marketing › EMEA › Campaigns, Acme › Logistics; project Website in Marketing):

    Acme (root)            project Ops: task ops-idle (no run)
    ├── Marketing          project Website: site-build (runs: succeeded then failed → failing), site-lint (succeeded)
    │   └── EMEA           local runtime emea-agent (online)
    │       └── Campaigns  project Ads: ads-sync (failed then succeeded → not failing; one run 20 days ago, failed)
    ├── Logistics          project Depot: depot-feed (lost → failing); local runtime depot-agent (offline)
    └── Vault  (access_inheritance = none: nothing from above passes)
                           project Keys: keys-rotate (failed → failing); local runtime vault-agent (never connected)

People: ``carol`` Admin on Acme (an org-level user above the cut, not a tenant administrator); ``sec`` holds a custom
read-only "Security officer" role on Acme; ``ivy`` Integrator on Logistics (expires in 10 days); ``gus`` Guest on
Marketing; ``vic`` Admin on Vault (expires in 20 days); ``pat`` Guest on project Depot only (expires in 5 days); the
team Writers (of Marketing) Guest on EMEA.
Invitations: pending on Marketing, expired on Marketing, pending on Vault.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone

from access.models import Invitation
from access.roles import ALL_CAPABILITIES
from access.services.custom_roles import create_role
from access.services.grants import grant_role, resolve_role
from access.services.teams import create_team
from orgs.models import Organization, Project
from resources.models import Run, Task
from runtimes.models import Runtime
from tests.factories import UserFactory, World, add_to_tenant, make_org, make_project

VIEW_ONLY = [*sorted(c for c in ALL_CAPABILITIES if c.endswith(".view")), "audit.view"]


@dataclass
class RollupWorld:
    base: World
    vault: Organization
    ops: Project
    ads: Project
    depot: Project
    keys: Project
    people: dict[str, Any]
    tasks: dict[str, Task]


def _task(project: Project, name: str) -> Task:
    return Task.objects.create(project=project, name=name, steps=[{"type": "log", "message": "hi"}])


def _run(task: Task, status: str, ago: timedelta, runtime: Runtime | None) -> Run:
    run = Run.objects.create(task=task, status=status, runtime=runtime, runtime_name=runtime.name if runtime else "")
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - ago)
    return run


def build(world: World) -> RollupWorld:
    now = timezone.now()
    admin = world.tenant_admin
    root, marketing, emea, campaigns, logistics = (world.root, world.marketing, world.emea, world.campaigns,
                                                   world.logistics)  # fmt: skip
    vault = make_org(root, "Vault")
    Organization.objects.filter(pk=vault.pk).update(access_inheritance="none")
    vault.refresh_from_db()
    ops = make_project(root, "Ops")
    ads = make_project(campaigns, "Ads")
    depot = make_project(logistics, "Depot")
    keys = make_project(vault, "Keys")

    platform = Runtime.objects.get(is_platform_default=True)
    emea_agent = Runtime.objects.create(org=emea, name="emea-agent", kind="local", last_seen=now)
    depot_agent = Runtime.objects.create(org=logistics, name="depot-agent", kind="local",
                                         last_seen=now - timedelta(days=1))  # fmt: skip
    Runtime.objects.create(org=vault, name="vault-agent", kind="local")

    tasks = {
        "ops-idle": _task(ops, "ops-idle"),
        "site-build": _task(world.website, "site-build"),
        "site-lint": _task(world.website, "site-lint"),
        "ads-sync": _task(ads, "ads-sync"),
        "depot-feed": _task(depot, "depot-feed"),
        "keys-rotate": _task(keys, "keys-rotate"),
    }
    hour, day = timedelta(hours=1), timedelta(days=1)
    _run(tasks["site-build"], "succeeded", 2 * day, platform)
    _run(tasks["site-build"], "failed", 1 * day, platform)
    _run(tasks["site-lint"], "succeeded", 3 * hour, platform)
    _run(tasks["ads-sync"], "failed", 20 * day, emea_agent)  # outside 7 days, inside 30
    _run(tasks["ads-sync"], "failed", 3 * day, emea_agent)
    _run(tasks["ads-sync"], "succeeded", 2 * hour, emea_agent)
    _run(tasks["depot-feed"], "lost", 5 * hour, depot_agent)
    _run(tasks["keys-rotate"], "failed", 4 * day, platform)

    people: dict[str, Any] = {}
    for name in ("carol", "sec", "ivy", "gus", "vic", "pat"):
        people[name] = UserFactory(username=name)
        add_to_tenant(people[name], world.acme)
    grant_role(actor=admin, target=root, role="admin", user=people["carol"])
    officer = create_role(actor=admin, org=root, name="Security officer", capabilities=VIEW_ONLY)
    grant_role(actor=admin, target=root, role=officer, user=people["sec"])
    grant_role(actor=admin, target=logistics, role="integrator", user=people["ivy"], expires_at=now + 10 * day)
    grant_role(actor=admin, target=marketing, role="guest", user=people["gus"])
    grant_role(actor=admin, target=vault, role="admin", user=people["vic"], expires_at=now + 20 * day)
    grant_role(actor=admin, target=depot, role="guest", user=people["pat"], expires_at=now + 5 * day)
    writers = create_team(actor=admin, org=marketing, name="Writers")
    grant_role(actor=admin, target=emea, role="guest", team=writers)

    guest = resolve_role(root, "guest")
    for org, email, expires in ((marketing, "new@example.com", now + 3 * day),
                                (marketing, "late@example.com", now - day),
                                (vault, "vault@example.com", now + 3 * day)):  # fmt: skip
        Invitation.objects.create(org=org, email=email, role=guest, token_hash=email.ljust(64, "x"),
                                  expires_at=expires)  # fmt: skip
    return RollupWorld(world, vault, ops, ads, depot, keys, people, tasks)
