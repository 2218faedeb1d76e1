"""The world the API fuzzer works in: the demo data, a bearer token of Acme's tenant administrator, disposable
objects for the operations that delete, and the ids of all of them, written as JSON for hooks.py.

Run by scripts/fuzz_api (python scripts/fuzz/prepare.py OUT.json) in an empty database it has migrated.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from access.models import Role, Team  # noqa: E402
from access.services import issue_token  # noqa: E402
from access.services.custom_roles import create_role  # noqa: E402
from access.services.grants import grant_role  # noqa: E402
from access.services.invitations import invite  # noqa: E402
from access.services.teams import add_team_member, create_team  # noqa: E402
from orgs import services as orgs  # noqa: E402
from orgs.models import Organization, Project, Tenant  # noqa: E402
from resources import services as rs  # noqa: E402
from resources.models import Component, Credential, EnvVar, Hidden, LookupTable, Run, Task  # noqa: E402
from resources.settings_registry import REGISTRY  # noqa: E402


def ids(queryset: object) -> list[str]:
    return [str(pk) for pk in queryset.values_list("pk", flat=True)]  # type: ignore[attr-defined]


def kept_and_scratch(queryset: object, scratch: object) -> dict[str, list[str]]:
    """Ids for the operations that read and change (``keep``) and for the deleting ones (``delete``)."""
    return {"keep": ids(queryset.exclude(pk=scratch.pk)), "delete": [str(scratch.pk)]}  # type: ignore[attr-defined]


def main(out: Path) -> None:
    call_command("seed_demo", "--allow-production", stdout=io.StringIO())
    users = get_user_model().objects
    admin = users.get(username="acme-admin")
    acme = Tenant.objects.get(name="Acme")
    org = {o.name: o for o in Organization.objects.filter(tenant=acme)}
    root, marketing = org["Acme"], org["Marketing"]
    website = Project.objects.get(org=marketing, name="Website")
    task = Task.objects.get(name="Publish newsletter")
    # The fuzzer's account may publish versions of the demo component: only development-team members can.
    # Added by the superuser: nobody adds themselves to a development team.
    superuser = users.get(username="root")
    rs.add_component_member(actor=superuser, component=Component.objects.get(name="Parser"), user=admin)

    # Disposable objects: the deleting operations get these, so that the others keep theirs.
    scratch_org = orgs.create_org(actor=admin, parent=root, name="Fuzz scratch")
    mover = orgs.create_org(actor=admin, parent=root, name="Fuzz mover")
    deleted = orgs.create_org(actor=admin, parent=root, name="Fuzz deleted")
    orgs.delete_org(actor=admin, org=deleted)
    project = orgs.create_project(actor=admin, org=marketing, name="Fuzz scratch")
    scratch_task = rs.create_task(actor=admin, project=website, name="Fuzz scratch")
    share = rs.share_task(actor=admin, task=task, user=users.get(username="ivan"), permission="run")
    credential = rs.create_credential(actor=admin, org=marketing, name="Fuzz scratch", kind="generic")
    table = rs.create_lookup_table(actor=admin, org=marketing, name="Fuzz scratch")
    variable = rs.create_env_var(actor=admin, org=marketing, key="FUZZ_SCRATCH", value="x")
    component = rs.create_component(actor=admin, org=marketing, name="Fuzz scratch")
    hidden = rs.hide(actor=admin, org=org["Warehousing"], kind=Hidden.Kind.CREDENTIAL, name="Carrier portal")
    team = create_team(actor=admin, org=marketing, name="Web team")
    add_team_member(actor=admin, team=team, user=users.get(username="maria"))
    scratch_team = create_team(actor=admin, org=marketing, name="Fuzz scratch")
    role = create_role(actor=admin, org=root, name="Fuzz scratch", capabilities=["org.view"])
    grant = grant_role(actor=admin, target=org["Logistics"], role="guest", user=users.get(username="bob"))
    _, invitation_token = invite(actor=admin, org=marketing, email="new@example.com", role="guest")
    invitation, _ = invite(actor=admin, org=marketing, email="gone@example.com", role="guest")
    token, _ = issue_token(user=admin, name="fuzz scratch")
    # Minted as if with a second factor: a require_2fa the fuzzer sets on an org must not fence the fuzzer out of
    # the rest of the run (its refusals are tested in tests/twofactor/, not fuzzed).
    own_token, raw = issue_token(user=admin, name="schemathesis", otp_verified=True)

    keep = [str(o.pk) for o in (root, marketing, org["EMEA"], org["Logistics"], org["Platform"])]
    world = {
        "token": raw,
        "own_token": str(own_token.pk),
        # resource (the path's first segment) → ids for reading and changing, and disposable ones for deleting
        "ids": {
            "orgs": {"keep": keep, "delete": [str(scratch_org.pk)], "restore": [str(deleted.pk)],
                     "move": [str(mover.pk)]},
            "projects": kept_and_scratch(Project.objects.filter(org__tenant=acme), project),
            "tasks": kept_and_scratch(Task.objects.filter(pk=task.pk), scratch_task),
            "runs": {"keep": ids(Run.objects.filter(task=task))},
            "credentials": kept_and_scratch(Credential.objects.all(), credential),
            "lookup-tables": kept_and_scratch(LookupTable.objects.all(), table),
            "env-vars": kept_and_scratch(EnvVar.objects.all(), variable),
            "components": kept_and_scratch(Component.objects.all(), component),
            "hidden": {"delete": [str(hidden.pk)]},
            "members": {"keep": [str(grant.pk)], "delete": [str(grant.pk)]},
            "teams": kept_and_scratch(Team.objects.filter(pk=team.pk), scratch_team),
            "roles": kept_and_scratch(Role.objects.filter(tenant=acme), role),
            "invitations": {"keep": [invitation_token], "delete": [str(invitation.pk)]},
            "tenants": {"keep": [str(acme.pk)]},
            "auth": {"delete": [str(token.pk)]},
        },
        "share_id": [str(share.pk)],
        "user_id": ["maria", str(users.get(username="maria").pk), "ivan"],
        "key": sorted(REGISTRY),
        # values for the body and query fields that name objects
        "fields": {
            "parent": keep,
            "user": ["maria", "ivan", "bob", "gwen", str(users.get(username="paula").pk)],
            "team": [str(team.pk)],
            "role": ["admin", "integrator", "guest", "security-officer"],
            "project": [str(website.pk)],
        },
    }  # fmt: skip
    out.write_text(json.dumps(world, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
