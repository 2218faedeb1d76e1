from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orgs.integrity import tree_problems
from orgs.models import Organization, Tenant


class Command(BaseCommand):
    help = "Verify every tenant's organization tree (lft/rght/level/tree_id/parent agree); exits 1 on corruption."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="Check one tenant only (its UUID).")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = None
        if options["tenant"]:
            tenant = Tenant.objects.filter(pk=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"No tenant {options['tenant']}.")
        problems = tree_problems(tenant)
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"{len(problems)} problem(s) found in the organization trees.")
        tenants = 1 if tenant else Tenant.objects.count()
        orgs = Organization.objects.filter(tenant=tenant).count() if tenant else Organization.objects.count()
        self.stdout.write(self.style.SUCCESS(f"OK: {tenants} tenant(s), {orgs} organization(s)."))
