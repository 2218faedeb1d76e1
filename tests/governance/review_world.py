"""A hand-built world for the access review tests, on top of the shared personas (tests/factories.py):

    Acme › Marketing › EMEA › Campaigns (admins_only: only admin grants from above reach it),  Acme › Logistics
    Website is a project of Marketing.

- alice: the tenant administrator (the only one);
- marta: Admin on Marketing (granted by alice): a reviewer of Marketing and everything below;
- ivan: Integrator on Marketing: may look at the review (member.view) but not act (no member.manage);
- emil: Admin on EMEA; cara: Integrator on Campaigns;
- greta: Guest on EMEA, expiring in three days; holly: Guest on EMEA, expired yesterday (in effect nowhere);
- team Ops (defined at Marketing, members dana and erin): Integrator on EMEA;
- pete: Integrator on the project Website only;
- everyone was seen a moment ago (the factory's default), but dana, who never signed in;
- lou: Guest on Logistics (outside Marketing);
- in Globex, another tenant: gus, Admin on its root.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone

from access.models import OrgUserGrant
from access.services.grants import grant_role
from access.services.teams import add_team_member, create_team
from orgs import services
from tests.factories import UserFactory, World, add_to_tenant


@dataclass
class ReviewWorld:
    world: World
    users: dict[str, Any]
    grants: dict[str, Any]
    ops: Any

    def __getattr__(self, name: str) -> Any:
        if name in ("world", "users", "grants", "ops"):
            raise AttributeError(name)
        return self.users[name]


def build_review_world(world: World) -> ReviewWorld:
    alice = world.tenant_admin
    users = {"alice": alice}
    for name in ("marta", "ivan", "emil", "cara", "greta", "holly", "dana", "erin", "pete", "lou"):
        users[name] = UserFactory(username=name)
        add_to_tenant(users[name], world.acme)
    gus = UserFactory(username="gus")
    add_to_tenant(gus, world.globex)
    users["gus"] = gus

    def grant(name: str, target: Any, role: str, **kwargs: Any) -> Any:
        return grant_role(actor=alice, target=target, role=role, user=users[name], **kwargs)

    soon = timezone.now() + timedelta(days=3)
    grants = {
        "marta": grant("marta", world.marketing, "admin"),
        "ivan": grant("ivan", world.marketing, "integrator"),
        "emil": grant("emil", world.emea, "admin"),
        "cara": grant("cara", world.campaigns, "integrator"),
        "greta": grant("greta", world.emea, "guest", expires_at=soon),
        "holly": grant("holly", world.emea, "guest", expires_at=soon),
        "pete": grant("pete", world.website, "integrator"),
        "lou": grant("lou", world.logistics, "guest"),
        "gus": grant_role(actor=world.other_admin, target=world.globex_root, role="admin", user=gus),
    }
    OrgUserGrant.objects.filter(pk=grants["holly"].pk).update(expires_at=timezone.now() - timedelta(days=1))
    ops = create_team(actor=alice, org=world.marketing, name="Ops")
    add_team_member(actor=alice, team=ops, user=users["dana"])
    add_team_member(actor=alice, team=ops, user=users["erin"])
    grants["ops"] = grant_role(actor=alice, target=world.emea, role="integrator", team=ops)
    type(alice).objects.filter(pk=users["dana"].pk).update(last_seen_at=None)
    users["dana"].last_seen_at = None
    services.update_org(actor=alice, org=world.campaigns, access_inheritance="admins_only")
    world.refresh()
    return ReviewWorld(world=world, users=users, grants=grants, ops=ops)
