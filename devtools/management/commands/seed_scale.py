"""python manage.py seed_scale: a synthetic enterprise tenant (devtools/scale.py), then verified."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools.scale import build_scale_tenant
from orgs.integrity import tree_problems


class Command(BaseCommand):
    help = (
        "Build a synthetic tenant: --orgs N (including a chain --depth D under the root), --users U with one grant "
        "each, --tasks T integration tasks (in one project per 10 tasks). Prints its name and timings."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orgs", type=int, default=10_000)
        parser.add_argument("--depth", type=int, default=100, help="Length of the chain under the root.")
        parser.add_argument("--users", type=int, default=1_000)
        parser.add_argument("--tasks", type=int, default=10_000)
        parser.add_argument("--branching", type=int, default=10, help="Children per node in the broad tree.")
        parser.add_argument("--name", default="", help="Tenant name (default: Scale-<orgs>).")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["orgs"] < opts["depth"] + 1:
            raise CommandError("--orgs must exceed --depth (the chain lives inside the tenant).")
        started = time.perf_counter()
        tenant = build_scale_tenant(
            name=opts["name"] or f"Scale-{opts['orgs']}",
            orgs=opts["orgs"],
            depth=opts["depth"],
            users=opts["users"],
            tasks=opts["tasks"],
            branching=opts["branching"],
            seed=opts["seed"],
            progress=None if opts["quiet"] else self._progress,
        )
        problems = tree_problems(tenant)
        if problems:
            raise CommandError("The built tree is inconsistent:\n" + "\n".join(problems[:10]))
        self.stdout.write(
            self.style.SUCCESS(
                f"Tenant {tenant.name} ({tenant.pk}): {opts['orgs']} orgs, chain depth {opts['depth']}, "
                f"{opts['users']} users, {opts['tasks']} tasks in {time.perf_counter() - started:.1f} s."
            )
        )

    def _progress(self, label: str, done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        self.stdout.write(f"\r  {label:<14} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
        if done >= total:
            self.stdout.write("")
        self.stdout.flush()
