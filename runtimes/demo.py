"""The demo's runtimes (called by ``manage.py seed_demo``; idempotent, through the services like the rest of it).

- ``platform``: the platform's global runtime, offered to every tenant and the platform default, allowed to reach
  private addresses (its agent, started by ``make run`` beside the dev server, calls the dev server itself).
- ``eu-local``: a local, sovereign runtime registered at Logistics, whose subtree may run only there
  (``allowed_runtimes`` = ["eu-local"], locked; ``default_runtime`` = "eu-local"). No agent runs it until someone
  starts one with the enrollment command printed on the first seed (a new token: the runtime's page).
- Tasks that really run on ``platform``: "Health check" (log with the REGION variable, http GET of Canopy's own
  /api/v1/health at ``site_url``, transform, log) and "Country report" (lookup, transform, log) in Marketing ›
  Website; "Carrier sync" in Logistics › Shipment sync runs on eu-local with a credential whose secret is kept on
  the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from orgs.models import Organization, Project
from resources import services as rs
from resources.models import Credential, OrgSetting, Task
from runtimes import services
from runtimes.models import Runtime

PLATFORM = "platform"
LOCAL = "eu-local"


def health_check(site_url: str) -> list[dict[str, Any]]:
    return [
        {"type": "log", "name": "start", "message": "Checking Canopy from region {{ env.REGION }}"},
        {
            "type": "http",
            "name": "health",
            "method": "GET",
            "url": f"{site_url.rstrip('/')}/api/v1/health",
            "into": "health",
        },
        {
            "type": "transform",
            "name": "summary",
            "expression": "{status: health.status, body: health.body}",
            "into": "summary",
        },
        {"type": "log", "name": "report", "message": "Canopy answered {{ summary.status }}: {{ summary.body }}"},
    ]


COUNTRY_REPORT = [
    {"type": "lookup", "name": "france", "table": "Countries", "key": "fr", "into": "fr"},
    {"type": "lookup", "name": "brazil", "table": "Countries", "key": "br", "default": "unknown", "into": "br"},
    {"type": "transform", "name": "pair", "expression": "[fr, br]", "into": "countries"},
    {"type": "log", "name": "report", "message": "Countries served: {{ countries }}"},
]
CARRIER_SYNC = [
    {"type": "log", "name": "start", "message": "Syncing shipments with the carrier"},
    {
        "type": "http",
        "name": "shipments",
        "method": "GET",
        "url": "https://carrier.example.com/api/shipments",
        "credential": "Carrier API",
        "into": "shipments",
    },
    {"type": "log", "name": "done", "message": "{{ shipments.status }}"},
]


@dataclass
class DemoRuntimes:
    platform: Runtime
    local: Runtime
    commands: dict[str, str] = field(default_factory=dict)  # runtime name → agent command (first seed only)


def platform_runtime(superuser: Any) -> Runtime:
    """The platform's default global runtime, offered to every tenant (created once)."""
    platform = Runtime.objects.filter(org__isnull=True, name__iexact=PLATFORM).first()
    if platform is None:
        platform = services.create_global_runtime(
            actor=superuser, name=PLATFORM, tenants="all", is_platform_default=True, allow_private_network=True,
            description="Run by the platform for every tenant (make run starts its agent beside the server).",
            region="local", labels=["demo"],
        ).runtime  # fmt: skip
    return platform


def seed_runtimes(*, superuser: Any, admin: Any, orgs: dict[str, Organization], site_url: str) -> DemoRuntimes:
    """The demo's runtimes, the Logistics restriction and the demo tasks (what exists is kept). Runs after the
    shared resources: the tasks name the Countries table and REGION."""
    commands: dict[str, str] = {}
    with transaction.atomic():
        platform = platform_runtime(superuser)
        logistics = orgs["Logistics"]
        local = Runtime.objects.filter(org=logistics, name__iexact=LOCAL).first()
        if local is None:
            enrollment = services.create_local_runtime(
                actor=admin, org=logistics, name=LOCAL, sovereign=True, region="eu-west", labels=["eu", "sovereign"],
                description="Logistics' own machines: shipment data never leaves them.",
            )  # fmt: skip
            local = enrollment.runtime
            commands[LOCAL] = enrollment.command
        if not OrgSetting.objects.filter(org=logistics, key="allowed_runtimes").exists():
            rs.set_setting(actor=admin, org=logistics, key="allowed_runtimes", value=[LOCAL], locked=True)
        if not OrgSetting.objects.filter(org=logistics, key="default_runtime").exists():
            rs.set_setting(actor=admin, org=logistics, key="default_runtime", value=LOCAL)
        marketing = orgs["Marketing"]
        website = Project.objects.get(org=marketing, name="Website")
        _task(admin, website, "Health check", "Calls Canopy's own health endpoint from the platform runtime.",
              health_check(site_url))  # fmt: skip
        _task(admin, website, "Country report", "A lookup and a transform, logged.", COUNTRY_REPORT)
        if not Credential.objects.filter(org=logistics, name__iexact="Carrier API").exists():
            rs.create_credential(
                actor=admin, org=logistics, name="Carrier API", kind="api_key", source=Credential.Source.RUNTIME,
                fields={"header": "Authorization", "prefix": "Bearer "},
                description="Its key lives on eu-local only (CANOPY_SECRET_CARRIER_API_KEY there).",
            )  # fmt: skip
        shipments = Project.objects.get(org=logistics, name="Shipment sync")
        _task(admin, shipments, "Carrier sync", "Runs on eu-local only (Logistics is locked to it).", CARRIER_SYNC)
    return DemoRuntimes(platform=platform, local=local, commands=commands)


def _task(admin: Any, project: Project, name: str, description: str, steps: list[dict[str, Any]]) -> Task:
    task = Task.objects.filter(project=project, name__iexact=name).first()
    return task or rs.create_task(actor=admin, project=project, name=name, description=description, steps=steps)
