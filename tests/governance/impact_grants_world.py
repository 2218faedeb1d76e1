"""The world of the grant and lock previews' tests (tests/governance/test_impact_{grants,lock}_*.py).

On top of tests.factories' world (Acme › Marketing › EMEA › Campaigns, Acme › Logistics, the project Website in
Marketing):
- dora is an Integrator on Marketing (a direct grant: removing it costs her Marketing, EMEA and Campaigns);
- the team Ops (defined at Acme, members erin and finn) is a Guest on Logistics;
- gus is an Integrator on the project Website only;
- hank is an Admin on Marketing: he manages its members (and may remove what he holds himself).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from access.services.grants import grant_role
from access.services.teams import add_team_member, create_team
from config.actors import SYSTEM
from tests.factories import UserFactory, World, add_to_tenant


@dataclass
class GrantWorld:
    dora: Any
    erin: Any
    finn: Any
    gus: Any
    hank: Any
    dora_grant: Any  # OrgUserGrant
    ops_grant: Any  # OrgTeamGrant
    gus_grant: Any  # ProjectUserGrant
    hank_grant: Any  # OrgUserGrant


def build(world: World) -> GrantWorld:
    people = {}
    for name in ("dora", "erin", "finn", "gus", "hank"):
        people[name] = UserFactory(username=name)
        add_to_tenant(people[name], world.acme)
    ops = create_team(actor=SYSTEM, org=world.root, name="Ops")
    add_team_member(actor=SYSTEM, team=ops, user=people["erin"])
    add_team_member(actor=SYSTEM, team=ops, user=people["finn"])
    return GrantWorld(
        **people,
        dora_grant=grant_role(actor=SYSTEM, target=world.marketing, role="integrator", user=people["dora"]),
        ops_grant=grant_role(actor=SYSTEM, target=world.logistics, role="guest", team=ops),
        gus_grant=grant_role(actor=SYSTEM, target=world.website, role="integrator", user=people["gus"]),
        hank_grant=grant_role(actor=SYSTEM, target=world.marketing, role="admin", user=people["hank"]),
    )


def texts(impact: Any, key: str = "capabilities") -> list[str]:
    return [entry.text for entry in impact.section(key).entries]
