"""A hand-built world for the previews of moves and inheritance changes (tests/governance/test_impact_move*.py).

On top of the shared world (Acme › Marketing › EMEA › Campaigns, Acme › Logistics):

- Acme: gus is Integrator; credential "bank" locked; env var REGION=global; lookup table "rates"; runtime
  "eu-west".
- Marketing: dora is Integrator, team "Ops" (erin) Guest; credential "crm"; REGION=eu; run_log_retention_days 7.
- Logistics: eve is Guest; an override of "bank" (shadowed already: the root's is locked); runtime "us-east";
  default_runtime us-east; lookup table "rates" hidden.
- Logistics › Depot: run_log_retention_days 90; project Yard with task "ship" (names Logistics' us-east) and task
  "load" (names none: default_runtime), each with queued runs on us-east.
  - Depot › Bay: its own "crm" and REGION=bay (overrides); the platform's runtime hidden.
  - Depot › Vault: cut (access_inheritance none); frank is Admin there.
- Europe: a locked runtime "us-east" of its own, default_runtime us-east, allowed_runtimes [eu-west, us-east]
  locked, REGION=eu-locked locked, run_log_retention_days 30 locked, lookup table "holidays" locked.
  - Europe › Berlin.

Moving Depot under Berlin: a lock above the new parent shadows Bay's REGION and Depot's retention; "ship" becomes
unplaceable (Europe's locked us-east hides Logistics' by name), "load" moves to Europe's us-east; eve loses her
Guest role in Depot and Bay but not in Vault (cut). Moving Depot under Marketing: dora and the Ops team gain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from access.services.grants import grant_role
from access.services.teams import add_team_member, create_team
from config.actors import SYSTEM
from orgs import services
from orgs.models import Organization, Project
from resources.models import Credential, EnvVar, Hidden, LookupTable, OrgSetting, Run, Task
from runtimes.models import Runtime
from tests.factories import UserFactory, World, add_to_tenant, make_chain, make_org, make_project


@dataclass
class ImpactWorld:
    base: World
    depot: Organization
    bay: Organization
    vault: Organization
    europe: Organization
    berlin: Organization
    yard: Project
    ship: Task
    load: Task
    us_east: Runtime  # Logistics' own
    us_east_locked: Runtime  # Europe's, locked
    eu_west: Runtime  # the root's
    users: dict[str, Any]

    def refresh(self) -> None:
        self.base.refresh()
        for org in (self.depot, self.bay, self.vault, self.europe, self.berlin):
            org.refresh_from_db()


def _user(name: str, world: World) -> Any:
    user = UserFactory(username=name)
    add_to_tenant(user, world.acme)
    return user


def credential(org: Organization, name: str, *, locked: bool = False) -> Credential:
    return Credential.objects.create(org=org, name=name, kind=Credential.Kind.GENERIC, locked=locked)


def env_var(org: Organization, key: str, value: str, *, locked: bool = False) -> EnvVar:
    return EnvVar.objects.create(org=org, key=key, value=value, locked=locked)


def setting(org: Organization, key: str, value: Any, *, locked: bool = False) -> OrgSetting:
    return OrgSetting.objects.create(org=org, key=key, value=value, locked=locked)


def queue(task: Task, runtime: Runtime | None, n: int = 1) -> list[Run]:
    return [
        Run.objects.create(task=task, steps=task.steps, runtime=runtime, runtime_name=runtime.name if runtime else "")
        for _ in range(n)
    ]


def build_impact_world(world: World) -> ImpactWorld:
    root, marketing, logistics = world.root, world.marketing, world.logistics
    depot = make_org(logistics, "Depot")
    bay = make_org(depot, "Bay")
    vault = make_org(depot, "Vault")
    europe = make_org(root, "Europe")
    berlin = make_org(europe, "Berlin")
    services.update_org(actor=SYSTEM, org=vault, access_inheritance=Organization.AccessInheritance.NONE)

    users = {name: _user(name, world) for name in ("dora", "eve", "erin", "frank", "gus")}
    grant_role(actor=SYSTEM, target=root, role="integrator", user=users["gus"])
    grant_role(actor=SYSTEM, target=marketing, role="integrator", user=users["dora"])
    grant_role(actor=SYSTEM, target=logistics, role="guest", user=users["eve"])
    grant_role(actor=SYSTEM, target=vault, role="admin", user=users["frank"])
    ops = create_team(actor=SYSTEM, org=marketing, name="Ops")
    add_team_member(actor=SYSTEM, team=ops, user=users["erin"])
    grant_role(actor=SYSTEM, target=marketing, role="guest", team=ops)

    credential(root, "bank", locked=True)
    credential(logistics, "bank")
    credential(marketing, "crm")
    credential(bay, "crm")
    env_var(root, "REGION", "global")
    env_var(marketing, "REGION", "eu")
    env_var(bay, "REGION", "bay")
    env_var(europe, "REGION", "eu-locked", locked=True)
    LookupTable.objects.create(org=root, name="rates")
    LookupTable.objects.create(org=europe, name="holidays", locked=True)
    Hidden.objects.create(org=logistics, kind=Hidden.Kind.LOOKUP_TABLE, name="rates")
    Hidden.objects.create(org=bay, kind=Runtime.KIND, name="platform")  # the platform's global runtime, not in Bay

    eu_west = Runtime.objects.create(org=root, name="eu-west")
    us_east = Runtime.objects.create(org=logistics, name="us-east")
    us_east_locked = Runtime.objects.create(org=europe, name="us-east", locked=True)
    setting(logistics, "default_runtime", "us-east")
    setting(europe, "default_runtime", "us-east")
    setting(europe, "allowed_runtimes", ["eu-west", "us-east"], locked=True)
    setting(europe, "run_log_retention_days", 30, locked=True)
    setting(marketing, "run_log_retention_days", 7)
    setting(depot, "run_log_retention_days", 90)

    yard = make_project(depot, "Yard")
    ship = Task.objects.create(project=yard, name="ship", steps=[], runtime=us_east)
    load = Task.objects.create(project=yard, name="load", steps=[])
    queue(ship, us_east, 2)
    queue(load, us_east, 1)
    world.refresh()
    for org in (depot, bay, vault, europe, berlin):
        org.refresh_from_db()
    return ImpactWorld(
        base=world, depot=depot, bay=bay, vault=vault, europe=europe, berlin=berlin, yard=yard, ship=ship, load=load,
        us_east=us_east, us_east_locked=us_east_locked, eu_west=eu_west, users=users,
    )  # fmt: skip


def grow(parent: Organization, size: int) -> list[Organization]:
    """``size`` orgs below ``parent``: a chain of ten, the rest as children of the chain's nodes."""
    chain = make_chain(parent, min(10, size), prefix=f"{parent.name}-c")
    made = list(chain)
    i = 0
    while len(made) < size:
        made.append(make_org(chain[i % len(chain)], f"{parent.name}-x{i}"))
        i += 1
    return made
