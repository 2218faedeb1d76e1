"""The load test's verification (loadtest/verify.py) accepts what the services did and catches what they did not."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from loadtest.verify import verify
from orgs import services
from resources import services as rs
from tests.factories import make_org, make_tenant, platform_runtime, root_of


@pytest.fixture
def sandbox(db: Any) -> dict[str, Any]:
    tenant = make_tenant("Acme")
    platform_runtime()  # where its runs are placed
    admin = tenant.memberships.get().user
    top = make_org(root_of(tenant), "load-sandbox-0")
    a, b = make_org(top, "a"), make_org(top, "b")
    plan = {
        "tree_admins": [
            {
                "root": str(top.pk),
                "nodes": {str(n.pk): {"parent": str(n.parent_id), "name": n.name} for n in (top, a, b)},
            }
        ],
        "prepared_at": timezone.now().isoformat(),
    }
    return {"plan": plan, "admin": admin, "top": top, "a": a, "b": b}


def ack(action: str, target: Any, **extra: Any) -> dict[str, Any]:
    return {"seq": 0, "t": 0, "persona": "acme-admin", "outcome": "ack", "status": 200, "action": action,
            "target": str(target) if target is not None else None, **extra}  # fmt: skip


def tree_writes(s: dict[str, Any]) -> list[dict[str, Any]]:
    """Create c under a, move b under a, delete a (with b and c), restore a: through the services, as recorded."""
    admin, top, a, b = s["admin"], s["top"], s["a"], s["b"]
    sandbox = str(top.pk)
    c = services.create_org(actor=admin, parent=a, name="c")
    services.move_org(actor=admin, org=b, parent=a)
    services.delete_org(actor=admin, org=a)
    services.restore_org(actor=admin, org=a)
    return [
        ack("org.create", c.pk, name="c", parent=str(a.pk), sandbox=sandbox),
        ack("org.move", b.pk, parent=str(a.pk), sandbox=sandbox),
        ack("org.delete", a.pk, sandbox=sandbox),
        ack("org.restore", a.pk, sandbox=sandbox),
    ]


def test_what_was_acknowledged_and_done_passes(sandbox: dict[str, Any]):
    writes = tree_writes(sandbox)
    problems, notes = verify(sandbox["plan"], writes)
    assert problems == []
    assert "4 audit events since preparation" in notes[-1]


def test_a_write_done_but_never_acknowledged_is_caught(sandbox: dict[str, Any]):
    writes = [w for w in tree_writes(sandbox) if w["action"] != "org.move"]
    problems, _ = verify(sandbox["plan"], writes)
    assert any("audit event without an acknowledged write: org.move" in p for p in problems)
    assert any("is under" in p and "the last acknowledged write put it under" in p for p in problems)


def test_an_acknowledged_write_missing_from_the_database_is_caught(sandbox: dict[str, Any]):
    writes = tree_writes(sandbox)
    ghost = ack("org.create", "00000000-0000-4000-8000-000000000000", name="ghost", parent=str(sandbox["a"].pk),
                sandbox=str(sandbox["top"].pk))  # fmt: skip
    problems, _ = verify(sandbox["plan"], [*writes, ghost])
    assert any("has no audit event" in p for p in problems)
    assert any("is missing from it" in p for p in problems)


def test_a_refused_write_must_change_nothing(sandbox: dict[str, Any]):
    writes = tree_writes(sandbox)
    writes[2] = {**writes[2], "outcome": "refused", "status": 409}  # the delete "failed", yet it happened
    problems, _ = verify(sandbox["plan"], writes)
    assert any("(refused) was applied anyway" in p for p in problems)


def test_an_unanswered_write_counts_as_applied_when_its_audit_event_exists(sandbox: dict[str, Any]):
    writes = tree_writes(sandbox)
    writes[0] = {**writes[0], "outcome": "uncertain", "status": 500, "target": None}  # the id never came back
    problems, notes = verify(sandbox["plan"], writes)
    assert problems == []
    assert any("org.create answered 500 was applied" in n for n in notes)


def test_objects_end_in_their_last_acknowledged_state(sandbox: dict[str, Any]):
    admin, org = sandbox["admin"], sandbox["b"]
    project = services.create_project(actor=admin, org=org, name="p1")
    services.update_project(actor=admin, project=project, name="p2")
    task = rs.create_task(actor=admin, project=project, name="t1", steps=[{"type": "log", "message": "hi"}])
    run = rs.run_task(actor=admin, task=task)
    rs.stop_run(actor=admin, run=run)
    writes = [
        ack("project.create", project.pk, name="p1"),
        ack("project.update", project.pk, name="p2"),
        ack("task.create", task.pk, name="t1"),
        ack("run.create", run.pk, task=str(task.pk), state="queued"),
        ack("run.stop", run.pk, task=str(task.pk)),
    ]
    assert verify(sandbox["plan"], writes)[0] == []

    writes[1] = {**writes[1], "name": "p3"}
    problems, _ = verify(sandbox["plan"], writes)
    assert problems == ["project " + str(project.pk) + " is named 'p2', the last acknowledged write named it 'p3'"]
