"""Factories and the personas every test file shares.

The personas (see ``World``): in tenant Acme (paid) with the tree
    Acme › Marketing › EMEA › Campaigns,  Acme › Logistics
- ``tenant_admin`` (alice) administers Acme;
- ``member`` (bob) belongs to Acme without being a tenant administrator;
- ``outsider`` (charlie) belongs to no tenant;
- ``other_admin`` (gina) administers Globex (free plan), a separate tenant;
- ``superuser`` (root).
Every password is ``PASSWORD``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone
from factory.django import DjangoModelFactory

from access.models import TenantMembership
from config.actors import SYSTEM
from orgs import services
from orgs.models import Organization, Project, Tenant
from runtimes.models import Runtime

PASSWORD = "correct-horse-battery-staple"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    # Personas have proved their address (invitations bind to verified addresses); tests of unverified accounts
    # pass email_verified_at=None.
    email_verified_at = factory.LazyFunction(timezone.now)
    # Personas were active a moment ago, as on a running server (access/last_seen.py writes at most every few
    # minutes): query budgets measure the request, not the first sighting. Tests of last seen pass last_seen_at=None.
    last_seen_at = factory.LazyFunction(timezone.now)
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            obj.save()


def make_tenant(name: str = "Acme", *, plan: str = Tenant.Plan.PAID, admin: Any = None) -> Tenant:
    admin = admin or UserFactory(username=f"{name.lower().replace(' ', '-')}-admin")
    return services.create_tenant(actor=SYSTEM, name=name, admin=admin, plan=plan)


def root_of(tenant: Tenant) -> Organization:
    return Organization.objects.get(tenant=tenant, parent__isnull=True)


def make_org(parent: Organization, name: str, description: str = "") -> Organization:
    return services.create_org(actor=SYSTEM, parent=parent, name=name, description=description)


def make_chain(parent: Organization, depth: int, prefix: str = "level") -> list[Organization]:
    """``depth`` orgs, each the child of the previous one."""
    chain = []
    for i in range(depth):
        parent = make_org(parent, f"{prefix}-{i + 1}")
        chain.append(parent)
    return chain


def make_project(org: Organization, name: str = "Website") -> Project:
    return services.create_project(actor=SYSTEM, org=org, name=name)


def add_to_tenant(user: Any, tenant: Tenant, *, is_admin: bool = False) -> TenantMembership:
    return TenantMembership.objects.create(user=user, tenant=tenant, is_admin=is_admin)


@dataclass
class World:
    acme: Tenant
    root: Organization
    marketing: Organization
    emea: Organization
    campaigns: Organization
    logistics: Organization
    website: Project
    globex: Tenant
    globex_root: Organization
    globex_project: Project
    tenant_admin: Any
    member: Any
    outsider: Any
    other_admin: Any
    superuser: Any

    def refresh(self) -> None:
        for name in ("root", "marketing", "emea", "campaigns", "logistics"):
            getattr(self, name).refresh_from_db()


def platform_runtime(name: str = "platform") -> Runtime:
    """The platform's default global runtime, offered to every tenant: where a task runs when nothing names one
    (runtimes.placement), as in a deployment."""
    return Runtime.objects.create(
        name=name, kind=Runtime.Kind.GLOBAL, org=None, all_tenants=True, is_platform_default=True
    )


def build_world() -> World:
    alice = UserFactory(username="alice")
    acme = make_tenant("Acme", plan=Tenant.Plan.PAID, admin=alice)
    root = root_of(acme)
    marketing = make_org(root, "Marketing")
    emea = make_org(marketing, "EMEA")
    campaigns = make_org(emea, "Campaigns")
    logistics = make_org(root, "Logistics")
    website = make_project(marketing, "Website")
    bob = UserFactory(username="bob")
    add_to_tenant(bob, acme)
    gina = UserFactory(username="gina")
    globex = make_tenant("Globex", plan=Tenant.Plan.FREE, admin=gina)
    globex_root = root_of(globex)
    globex_project = make_project(globex_root, "Secret plans")
    superuser = UserFactory(username="root", is_superuser=True, is_staff=True)
    platform_runtime()
    world = World(
        acme=acme,
        root=root,
        marketing=marketing,
        emea=emea,
        campaigns=campaigns,
        logistics=logistics,
        website=website,
        globex=globex,
        globex_root=globex_root,
        globex_project=globex_project,
        tenant_admin=alice,
        member=bob,
        outsider=UserFactory(username="charlie"),
        other_admin=gina,
        superuser=superuser,
    )
    world.refresh()
    return world
