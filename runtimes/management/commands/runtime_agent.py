"""python manage.py runtime_agent [--runtime platform] [--url http://127.0.0.1:8000] [--state-dir DIR] …

Runs an agent for a *global* runtime, the platform's own: makes sure the global runtime named by ``--runtime``
exists (offered to every tenant, the platform default when none is, ``allow_private_network`` when asked), mints an
enrollment token when the state directory holds no ``agent.json`` yet, then replaces this process with the agent
(``python -m runtimes.agent``), which enrolls with that token (passed in its environment, never on its command
line) and serves the runtime until stopped. Signals go straight to the agent (SIGTERM: graceful stop)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import IntegrityError, connections, transaction

from config.actors import SYSTEM
from runtimes.agent.state import STATE_FILE
from runtimes.models import Runtime
from runtimes.tokens import issue_enrollment_token

logger = logging.getLogger(__name__)


def ensure_global_runtime(name: str, *, allow_private_network: bool = False) -> tuple[Runtime, bool]:
    """The global runtime ``name`` (case-insensitive), created if missing: offered to all tenants, and the
    platform default when no runtime is. An existing one is never narrowed; ``allow_private_network`` only turns
    the permission on. Returns (runtime, created)."""
    with transaction.atomic():
        runtime = (Runtime.objects.select_for_update().filter(org__isnull=True, name__iexact=name)).first()
        if runtime is not None:
            if allow_private_network and not runtime.allow_private_network:
                runtime.allow_private_network = True
                runtime.save(update_fields=["allow_private_network"])
                logger.info("global runtime %s may now reach private networks", runtime.name)
            return runtime, False
        fields = {"org": None, "name": name, "kind": Runtime.Kind.GLOBAL, "all_tenants": True}
        fields["allow_private_network"] = allow_private_network
        default = not Runtime.objects.filter(is_platform_default=True).exists()
        try:
            with transaction.atomic():
                runtime = Runtime.objects.create(**fields, is_platform_default=default)
        except IntegrityError:  # another process created this name, or a platform default, meanwhile
            existing = Runtime.objects.filter(org__isnull=True, name__iexact=name).first()
            if existing is not None:
                return existing, False
            runtime = Runtime.objects.create(**fields, is_platform_default=False)
        logger.info("created global runtime %s (platform default: %s)", runtime.name, runtime.is_platform_default)
        return runtime, True


class Command(BaseCommand):
    help = "Run an agent for a global runtime of the platform (created if missing), enrolling it on first start."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--runtime", default="platform", help="Name of the global runtime (default: platform).")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Canopy's address for the agent.")
        parser.add_argument("--state-dir", type=Path, help="The agent's state (default: var/agents/<runtime>).")
        parser.add_argument(
            "--allow-private-network",
            action="store_true",
            help="Let the runtime's steps reach private and loopback addresses (development, internal systems).",
        )
        parser.add_argument("--concurrency", type=int, default=4)
        parser.add_argument("--secrets-dir")
        parser.add_argument("--log-dir")
        parser.add_argument("--grace-s", type=float, default=30.0)
        parser.add_argument("--name", default="", help="The agent's name (default: the host name).")

    def handle(self, *args: Any, **options: Any) -> None:
        runtime, created = ensure_global_runtime(
            options["runtime"], allow_private_network=options["allow_private_network"]
        )
        self.stdout.write(f"{'Created' if created else 'Using'} global runtime {runtime.name} ({runtime.pk}).")
        state_dir: Path = (options["state_dir"] or settings.VAR_DIR / "agents" / runtime.name).resolve()
        env = {key: value for key, value in os.environ.items() if key != "CANOPY_ENROLLMENT_TOKEN"}
        if not (state_dir / STATE_FILE).exists():
            _, raw = issue_enrollment_token(runtime, actor=SYSTEM)
            env["CANOPY_ENROLLMENT_TOKEN"] = raw
            self.stdout.write(f"Minted an enrollment token; the agent enrolls into {state_dir}.")
        argv = [
            sys.executable, "-m", "runtimes.agent", "--url", options["url"], "--state-dir", str(state_dir),
            "--concurrency", str(options["concurrency"]), "--grace-s", str(options["grace_s"]),
        ]  # fmt: skip
        for option in ("secrets_dir", "log_dir", "name"):
            if options[option]:
                argv += [f"--{option.replace('_', '-')}", str(options[option])]
        self.stdout.flush()
        connections.close_all()
        self.exec_agent(argv, env)

    def exec_agent(self, argv: list[str], env: dict[str, str]) -> None:
        """Become the agent (same pid: a supervisor's signals reach it)."""
        os.chdir(settings.BASE_DIR)
        os.execve(argv[0], argv, env)  # noqa: S606 (our own interpreter and module)
