"""Prepare the load test's PostgreSQL database and write plan.json (python -m loadtest.prepare --help).

The database is dropped and created again (its name must contain "load": a guard against pointing this at a real
one), migrated, and filled with the demo tenants (seed_demo), a synthetic tenant of --orgs organizations
(seed_scale) and the personas:

- tree administrators: tenant administrators, each with a sandbox subtree of its own (10 nodes, under a node at
  depth 3 of the big tree, or under Acme's root) that only it creates in, moves, deletes and restores: the
  expected final state of every sandbox follows from its owner's acknowledged writes alone, while all of them
  still contend for the same tenant lock and renumber the same nested set;
- writers: Admins and Integrators of a workspace org each (in the big tenant; Maria and Ivan in Acme), writing
  projects, tasks, runs, credentials and role grants for a pool of users that nobody else reads as;
- readers: users of the big tenant with one grant each (from seed_scale) and the demo's Guest, Security officer and
  project-only Integrator, each with a sample of what it may see, computed here through access.policy: a 404 on
  one of those during the run is a false 404 (nothing in the run takes their visibility away).

Tokens are minted here (the throttled POST /api/v1/auth/token would refuse a crowd logging in at once).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from config.actors import SYSTEM

LOAD_TENANT = "Load-{orgs}"
SANDBOX_SHAPE = 3  # children of a sandbox root, each with two children: 10 nodes
SAMPLE = 40  # targets per reader and kind


def recreate_database(url: str) -> None:
    """DROP and CREATE the database named in ``url`` (connecting to the server's ``postgres`` database)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "load" not in name.lower():
        raise SystemExit(f"Refusing to drop database {name!r}: the load test's database name must contain 'load'.")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="Run folder: plan.json is written there.")
    parser.add_argument("--orgs", type=int, default=10_000, help="Organizations of the big tenant (seed_scale).")
    parser.add_argument("--personas", type=int, default=20, help="Personas of each kind (at least the users).")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database whose name contains 'load'.")
    recreate_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    args.out.mkdir(parents=True, exist_ok=True)
    plan = build(args)
    (args.out / "plan.json").write_text(json.dumps(plan, indent=1, default=str))
    print(
        f"prepared in {plan['seconds']:.0f} s: {len(plan['tree_admins'])} tree administrators, "
        f"{len(plan['writers'])} writers, {len(plan['readers'])} readers; {plan['org_table']['live']} orgs"
    )
    return 0


def step(label: str, started: float) -> None:
    print(f"  {label} ({time.perf_counter() - started:.0f} s)", flush=True)


def build(args: argparse.Namespace) -> dict[str, Any]:
    from django.core.management import call_command
    from django.utils import timezone

    from orgs.models import Organization, Tenant

    started = time.perf_counter()
    rng = random.Random(args.seed)  # noqa: S311 - reproducible synthetic data
    call_command("migrate", verbosity=0)
    step("migrated", started)
    call_command("seed_demo", allow_production=True, stdout=io.StringIO())  # a throwaway database
    step("demo tenants seeded", started)
    name = LOAD_TENANT.format(orgs=args.orgs)
    call_command(
        "seed_scale", orgs=args.orgs, depth=20, users=max(300, 10 * args.personas),
        tasks=max(1000, args.orgs // 5), name=name, quiet=True, stdout=io.StringIO(),
    )  # fmt: skip
    step(f"{name} seeded", started)

    load = Tenant.objects.get(name=name)
    acme = Tenant.objects.get(name="Acme")
    globex = Tenant.objects.get(name="Globex")
    acme_root = Organization.objects.get(tenant=acme, parent__isnull=True)
    # Depth-3 nodes of the broad tree (not the chain), spread over the whole nested set: sandboxes and workspaces
    # alternate along it, so tree writes renumber different stretches of the tree.
    level3 = list(
        Organization.objects.filter(tenant=load, level=3)
        .exclude(name__startswith="chain-")
        .order_by("lft")
        .values_list("pk", flat=True)
    )
    step_size = max(1, len(level3) // (2 * args.personas + 2))
    spots = level3[::step_size]
    sandbox_parents, workspaces = spots[0::2][: args.personas], spots[1::2][: args.personas]

    tree_admins = make_tree_admins(load, acme, acme_root, sandbox_parents, args.personas)
    step(f"{len(tree_admins)} sandboxes built", started)
    sandbox_ids = {node for t in tree_admins for node in t["nodes"]}
    writers = make_writers(load, acme, workspaces, args.personas, rng)
    readers = make_readers(load, sandbox_ids, args.personas, rng)
    step("personas and tokens made", started)

    vacuum_org_table()
    outsider = token_for("globex-admin")
    plan = {
        "database": urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/"),
        "tenants": {"load": str(load.pk), "acme": str(acme.pk), "globex": str(globex.pk)},
        "load_tenant": name,
        "orgs": args.orgs,
        "foreign_org": str(Organization.objects.get(tenant=globex, parent__isnull=True).pk),
        "outsider": outsider,  # globex-admin: Free plan, may not create children (403 plan_limit)
        "tree_admins": tree_admins,
        "writers": writers,
        "readers": readers,
        "org_table": org_table_stats(),
        "seconds": time.perf_counter() - started,
    }
    # Every audit event after this instant comes from the load (verify.py matches them with the writes).
    plan["prepared_at"] = timezone.now().isoformat()
    return plan


def token_for(username: str) -> dict[str, str]:
    from access.models import User
    from access.services import issue_token

    user = User.objects.get(username=username)
    _, raw = issue_token(user=user, name="load test")
    return {"username": username, "token": raw}


def new_user(username: str) -> Any:
    from access.models import User

    return User.objects.create_user(username=username, email=f"{username}@load.example", password=None)


def make_tree_admins(load: Any, acme: Any, acme_root: Any, parents: list[Any], count: int) -> list[dict[str, Any]]:
    """Tenant administrators with a sandbox each; the second one works in Acme (its own tenant lock)."""
    from access.services.grants import add_tenant_member, grant_role
    from orgs import services
    from orgs.models import Organization

    places: list[tuple[Any, Any]] = [(load, pk) for pk in parents]
    places.insert(1, (acme, acme_root.pk))
    admins = []
    for k, (tenant, parent_pk) in enumerate(places[:count]):
        if tenant == acme:
            username = "acme-admin"  # the demo's tenant administrator of Acme
        else:
            username = f"load-tree-{k}"
            add_tenant_member(actor=SYSTEM, tenant=tenant, user=new_user(username), is_admin=True)
        parent = Organization.objects.get(pk=parent_pk)
        root = services.create_org(actor=SYSTEM, parent=parent, name=f"load-sandbox-{k}")
        nodes = {str(root.pk): {"parent": str(parent.pk), "name": root.name}}
        for i in range(SANDBOX_SHAPE):
            child = services.create_org(actor=SYSTEM, parent=root, name=f"sb{k}-{i}")
            nodes[str(child.pk)] = {"parent": str(root.pk), "name": child.name}
            for j in range(2):
                grandchild = services.create_org(actor=SYSTEM, parent=child, name=f"sb{k}-{i}-{j}")
                nodes[str(grandchild.pk)] = {"parent": str(child.pk), "name": grandchild.name}
        # A Guest on one of the sandbox's inner nodes: sees it and what lies below it, wherever the owner moves
        # them; the moves shift the grant's own range under the guest's reads (locustfile.SandboxGuest).
        guest = new_user(f"load-guest-{k}")
        add_tenant_member(actor=SYSTEM, tenant=tenant, user=guest)
        inner = Organization.objects.get(parent=root, name=f"sb{k}-1")
        grant_role(actor=SYSTEM, target=inner, role="guest", user=guest)
        admins.append(
            {
                **token_for(username),
                "tenant": str(tenant.pk),
                "root": str(root.pk),
                "nodes": nodes,
                "guest": {**token_for(guest.username), "org": str(inner.pk)},
            }
        )
    return admins


def make_writers(load: Any, acme: Any, workspaces: list[Any], count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Admins and Integrators of a workspace org each, with a project and a pool of users to grant roles to."""
    from access.services.grants import add_tenant_member, grant_role
    from orgs import services
    from orgs.models import Organization, Project

    writers: list[dict[str, Any]] = []
    acme_places = [
        ("maria", "admin", Organization.objects.get(tenant=acme, name="Marketing"), "Website"),
        ("ivan", "integrator", Organization.objects.get(tenant=acme, name="Logistics"), "Shipment sync"),
    ]
    for k, workspace_pk in enumerate(workspaces):
        workspace = Organization.objects.get(pk=workspace_pk)
        project = services.create_project(actor=SYSTEM, org=workspace, name=f"load-project-{k}")
        for role in ("admin", "integrator"):
            username = f"load-{role}-{k}"
            user = new_user(username)
            add_tenant_member(actor=SYSTEM, tenant=load, user=user)
            grant_role(actor=SYSTEM, target=workspace, role=role, user=user)
            writers.append(writer_entry(username, role, workspace, project, load, f"load-pool-{k}"))
        if k == 0:  # the demo's Admin of Marketing and Integrator in Logistics write in Acme
            for username, role, org, project_name in acme_places:
                acme_project = Project.objects.get(org=org, name=project_name)
                writers.append(writer_entry(username, role, org, acme_project, acme, f"load-pool-acme-{username}"))
        if len(writers) >= count:
            break
    return writers[:count]


def writer_entry(username: str, role: str, workspace: Any, project: Any, tenant: Any, pool: str) -> dict[str, Any]:
    from access.services.grants import add_tenant_member

    entry = {
        **token_for(username),
        "role": role,
        "tenant": str(tenant.pk),
        "org": str(workspace.pk),
        "orgs": [str(pk) for pk in workspace.get_descendants(include_self=True).values_list("pk", flat=True)[:20]],
        "project": str(project.pk),
        "pool": [],
    }
    if role == "admin":  # users that only this writer grants roles to, and that never read: nobody's view changes
        for j in range(3):
            user = new_user(f"{pool}-{j}")
            add_tenant_member(actor=SYSTEM, tenant=tenant, user=user)
            entry["pool"].append(user.username)
    return entry


def make_readers(load: Any, sandbox_ids: set[str], count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Users with one grant each, and what they may see (excluding the sandboxes, which change under them)."""
    from access import policy
    from access.models import OrgUserGrant, User
    from orgs.models import Organization, Project
    from resources.models import Task

    demo = ["gwen", "sam", "paula"]  # Guest in Customer Success, Security officer, Integrator on one project
    near_the_top = OrgUserGrant.objects.filter(
        content_object__tenant=load, content_object__level__lte=3, user__username__contains="-user-"
    )
    # Broad grants first (the root's whole tree), then narrower ones: lists and filters of every size.
    broad_first = near_the_top.order_by("content_object__level", "user__username")
    seeded = list(broad_first.values_list("user__username", flat=True))
    readers = []
    for username in [*demo[:1], *seeded[:1], *demo[1:], *seeded[1:]][:count]:
        user = User.objects.get(username=username)
        orgs = list(
            policy.visible(user, "org.view", Organization.objects.alive()).exclude(pk__in=sandbox_ids)
            .values_list("pk", flat=True)[:2000]
        )  # fmt: skip
        orgs = rng.sample(orgs, min(SAMPLE, len(orgs)))
        member_orgs = [pk for pk in orgs if policy.can(user, "member.view", Organization.objects.get(pk=pk))]
        projects = list(policy.visible(user, "project.view", Project.objects.all()).values_list("pk", flat=True)[:500])
        tasks = list(policy.visible(user, "task.view", Task.objects.all()).values_list("pk", flat=True)[:500])
        # Where its grants are: the orgs a member opens most, and where a grant's own range is tested at its edge.
        home = [str(pk) for pk in OrgUserGrant.objects.filter(user=user).values_list("content_object_id", flat=True)]
        policy.forget(user)
        readers.append(
            {
                **token_for(username),
                "home": [pk for pk in home if pk not in sandbox_ids],
                "orgs": [str(pk) for pk in orgs],
                "member_orgs": [str(pk) for pk in member_orgs],
                "projects": [str(pk) for pk in rng.sample(projects, min(SAMPLE, len(projects)))],
                "tasks": [str(pk) for pk in rng.sample(tasks, min(SAMPLE, len(tasks)))],
            }
        )
    return readers


def vacuum_org_table() -> None:
    """Start from a compact table (building the sandboxes renumbered the tree a few hundred times): the dead rows
    and the growth measured after the run are then the run's own."""
    from django.db import connection

    from orgs.models import Organization

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (FULL, ANALYZE) {connection.ops.quote_name(Organization._meta.db_table)}")


def org_table_stats() -> dict[str, Any]:
    """Live and dead rows, sizes and vacuum times of the org table (pg_stat_user_tables)."""
    from django.db import connection

    from orgs.models import Organization

    table = Organization._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(
            "SELECT n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, pg_relation_size(relid), "
            "pg_indexes_size(relid), last_vacuum, last_autovacuum, autovacuum_count "
            "FROM pg_stat_user_tables WHERE relname = %s",
            [table],
        )
        row = cursor.fetchone()
        cursor.execute("SELECT setting FROM pg_settings WHERE name = 'autovacuum'")
        autovacuum = cursor.fetchone()[0]
    keys = ["live", "dead", "updated", "hot_updated", "table_bytes", "index_bytes", "last_vacuum",
            "last_autovacuum", "autovacuum_count"]  # fmt: skip
    return {**dict(zip(keys, row, strict=True)), "server_autovacuum": autovacuum}


if __name__ == "__main__":
    sys.exit(main())
