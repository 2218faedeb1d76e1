"""The mixed workload: locust personas driving the API with the plan prepare.py wrote (README.md, Load test).

Run by scripts/loadtest with LOADTEST_OUT set to the run folder (plan.json in it). Three kinds of simulated users:

- TreeAdmin: a tenant administrator working in its own sandbox subtree: creates, moves, deletes and restores orgs,
  reads them back; keeps a model of its sandbox, so each write's expected effect is known;
- Writer: an Admin or Integrator of a workspace org: projects, tasks, runs, credentials, role grants;
- Reader: a guest or other member reading orgs, lists, children, members, tasks and the effective configuration
  of what prepare.py found it may see.

Every persona also sends a few invalid requests (bad input, invisible objects, bad tokens) that must be answered
with a given 4xx. Every acknowledged write goes to writes.jsonl with what the database must hold afterwards;
writes whose outcome is unknown (5xx, transport error) are recorded as uncertain and their objects left alone.
A 404 on something the persona may see is re-read at once and reported as a false 404 (anomalies.jsonl).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, events, task

from loadtest.common import ANOMALIES, PLAN, REQUESTS, WRITES

OUT = Path(os.environ.get("LOADTEST_OUT", "var/loadtest/current"))
PLAN_DATA: dict[str, Any] = json.loads((OUT / PLAN).read_text()) if (OUT / PLAN).exists() else {}
API = "/api/v1"
SANDBOX_LIMIT = 60  # alive nodes in a sandbox beyond which its owner stops creating
WAIT = [float(x) for x in os.environ.get("LOADTEST_WAIT", "0.1,0.6").split(",")]


class Journal:
    """The run's files: writes.jsonl and anomalies.jsonl (line by line, flushed), requests.json at the end."""

    def __init__(self) -> None:
        self.seq = itertools.count(1)
        self.writes = open(OUT / WRITES, "a", buffering=1)  # noqa: SIM115 - open for the whole run
        self.anomalies = open(OUT / ANOMALIES, "a", buffering=1)  # noqa: SIM115
        self.times: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter[int]] = defaultdict(Counter)
        self.failures: Counter[str] = Counter()
        self.started = self.stopped = 0.0

    def write(self, **record: Any) -> None:
        """One write, answered now; ``sent`` (when the request left) comes with it."""
        record = {"seq": next(self.seq), "t": time.time(), **record}
        self.writes.write(json.dumps(record) + "\n")

    def anomaly(self, **record: Any) -> None:
        self.anomalies.write(json.dumps({"t": time.time(), **record}) + "\n")

    def dump(self) -> None:
        summary = {
            "started": self.started,
            "stopped": self.stopped or time.time(),
            "kinds": {
                kind: {
                    "times_ms": sorted(round(t, 2) for t in self.times[kind]),
                    "statuses": dict(self.statuses[kind]),
                    "failures": self.failures[kind],
                }
                for kind in sorted(self.times)
            },
        }
        (OUT / REQUESTS).write_text(json.dumps(summary))
        self.writes.flush()
        self.anomalies.flush()


JOURNAL = Journal()


@events.test_start.add_listener
def _started(**kwargs: Any) -> None:
    JOURNAL.started = time.time()


@events.test_stop.add_listener
def _stopped(**kwargs: Any) -> None:
    JOURNAL.stopped = time.time()
    JOURNAL.dump()


@events.request.add_listener
def _request(name: str, response_time: float, response: Any, exception: Any, **kwargs: Any) -> None:
    status = getattr(response, "status_code", 0) or 0
    JOURNAL.times[name].append(response_time)
    JOURNAL.statuses[name][status] += 1
    if exception is not None:
        JOURNAL.failures[name] += 1


class Answer:
    def __init__(self, status: int, body: Any, retry_after: str | None) -> None:
        self.status, self.body, self.retry_after = status, body, retry_after

    def get(self, key: str, default: Any = None) -> Any:
        return self.body.get(key, default) if isinstance(self.body, dict) else default


class Persona(FastHttpUser):
    """What every simulated user shares: one bearer token, a checked request, invalid requests."""

    abstract = True
    wait_time = between(*WAIT)
    network_timeout = 60.0
    connection_timeout = 10.0
    personas: list[dict[str, Any]] = []
    claims = itertools.count()

    def on_start(self) -> None:
        index = next(type(self).claims)
        self.index = index
        self.persona = self.personas[index % len(self.personas)] if self.personas else None
        self.username = self.persona["username"] if self.persona else "nobody"
        self.token = self.persona["token"] if self.persona else ""
        self.rng = random.Random(f"{type(self).__name__}-{index}")  # noqa: S311 - workload choices

    # -- requests --------------------------------------------------------------------------------------------------

    def call(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        expect: tuple[int, ...] = (200,),
        body: Any = None,
        token: str | None = None,
        visible: bool = False,
    ) -> Answer:
        """Send one request named ``kind``; anything but ``expect`` is a failure. ``visible``: the persona may see
        what ``path`` names, so a 404 is re-read at once and reported as a false 404."""
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # When it was sent and answered: verify.py lists the writes that overlapped a false 404.
        self.sent = time.time()
        with self.client.request(
            method, API + path, name=kind, json=body, headers=headers, catch_response=True
        ) as response:
            status = response.status_code or 0
            try:
                parsed = response.json() if response.text else None
            except ValueError:
                parsed = None
            answer = Answer(status, parsed, response.headers.get("Retry-After") if response.headers else None)
            self.answered = time.time()
            if status in expect:
                response.success()
                return answer
            detail = {"kind": kind, "method": method, "path": path, "status": status, "persona": self.username,
                      "sent": self.sent, "answered": self.answered}  # fmt: skip
            if status == 0 or status >= 500:
                text = (response.text or str(getattr(response, "error", "")))[:400]
                JOURNAL.anomaly(
                    type="5xx" if status else "transport", **detail, body=text, retry_after=answer.retry_after
                )
                response.failure(f"{status}")
                return answer
            if status == 404 and visible:
                response.failure("false 404")
                again = self.reread(path, token)
                JOURNAL.anomaly(type="false_404", **detail, reread=again)
                return answer
            JOURNAL.anomaly(type="unexpected", **detail, expected=list(expect), body=(response.text or "")[:400])
            response.failure(f"expected {expect}, got {status}")
            return answer

    def reread(self, path: str, token: str) -> int:
        """The same GET again, at once: its status (200: the 404 was false and transient)."""
        return self.call("read:re-read after a 404", "GET", path, expect=(200, 404), token=token).status

    def uuid_name(self, prefix: str) -> str:
        return f"{prefix}-{uuid.UUID(int=self.rng.getrandbits(128)).hex[:10]}"

    # -- invalid requests (expected 4xx) ---------------------------------------------------------------------------

    def invalid_common(self) -> None:
        some_org = self.some_org()
        choice = self.rng.randrange(7)
        if choice == 0:
            self.call("invalid:bad token", "GET", "/me", expect=(401,), token="cnp_" + "x" * 40)
        elif choice == 1:
            self.call("invalid:no token", "GET", "/orgs", expect=(401,), token="")
        elif choice == 2:
            self.call("invalid:unknown org", "GET", f"/orgs/{uuid.uuid4()}", expect=(404,))
        elif choice == 3:
            self.call("invalid:another tenant's org", "GET", f"/orgs/{PLAN_DATA['foreign_org']}", expect=(404,))
        elif choice == 4:
            self.call("invalid:malformed id", "GET", "/orgs/not-a-uuid/children", expect=(404,))
        elif choice == 5 and some_org:
            self.call("invalid:blank name", "POST", "/orgs", expect=(400,), body={"name": " ", "parent": some_org})
        else:
            outsider = PLAN_DATA["outsider"]["token"]
            body = {"name": self.uuid_name("free"), "parent": PLAN_DATA["foreign_org"]}
            self.call("invalid:plan limit", "POST", "/orgs", expect=(403,), body=body, token=outsider)

    def some_org(self) -> str | None:
        return None


# ------------------------------------------------------------------------------------------------------------------


# What a sandbox's owner tells its guests (one process, cooperative greenlets: no lock needed): its nodes, whether
# a delete is in flight, and how many deletes it has finished. A guest's 404 is false unless a delete overlapped it.
SANDBOXES: dict[str, dict[str, Any]] = {}


class TreeAdmin(Persona):
    """A tenant administrator in its own sandbox: the model below is what the database must hold."""

    weight = 5
    personas = PLAN_DATA.get("tree_admins", [])
    claims = itertools.count()

    def on_start(self) -> None:
        super().on_start()
        # Two simulated users never share a sandbox: past the prepared ones, a tree administrator only reads.
        self.owner = self.persona is not None and self.index < len(self.personas)
        self.frozen = not self.owner
        self.root = self.persona["root"] if self.persona else None
        nodes = self.persona["nodes"] if self.persona else {}
        self.nodes = {pk: {"parent": n["parent"], "deleted_with": None} for pk, n in nodes.items()}
        if self.owner:
            SANDBOXES[self.root] = {"nodes": self.nodes, "deleting": False, "deletes": 0}

    def some_org(self) -> str | None:
        return self.root

    def alive(self) -> list[str]:
        return [pk for pk, n in self.nodes.items() if n["deleted_with"] is None]

    def subtree(self, pk: str) -> set[str]:
        children: dict[str, list[str]] = defaultdict(list)
        for node, n in self.nodes.items():
            children[n["parent"]].append(node)
        found, stack = set(), [pk]
        while stack:
            current = stack.pop()
            found.add(current)
            stack.extend(children[current])
        return found

    def tree_write(self, kind: str, method: str, path: str, expect: int, body: Any, **record: Any) -> Answer | None:
        answer = self.call(kind, method, path, expect=(expect,), body=body)
        if answer.status == expect:
            JOURNAL.write(sent=self.sent, persona=self.username, outcome="ack", status=answer.status, **record)
            return answer
        # Unknown (5xx, transport) or refused against the model (4xx): the sandbox is no longer predictable from
        # here, so its owner stops writing in it; verify.py resolves this last write through the audit log.
        outcome = "uncertain" if answer.status == 0 or answer.status >= 500 else "refused"
        JOURNAL.write(sent=self.sent, persona=self.username, outcome=outcome, status=answer.status, **record)
        self.frozen = True
        return None

    @task(5)
    def create(self) -> None:
        alive = self.alive()
        if self.frozen or len(alive) >= SANDBOX_LIMIT:
            return self.read_own()
        parent = self.rng.choice(alive)
        name = self.uuid_name("n")
        body = {"name": name, "parent": parent, "description": "load test"}
        answer = self.call("write:POST /orgs", "POST", "/orgs", expect=(201,), body=body)
        if answer.status != 201:
            outcome = "uncertain" if answer.status == 0 or answer.status >= 500 else "refused"
            JOURNAL.write(sent=self.sent, persona=self.username, outcome=outcome, status=answer.status,
                          action="org.create", target=None, name=name, parent=parent, sandbox=self.root)  # fmt: skip
            self.frozen = True
            return None
        pk = answer.get("id")
        JOURNAL.write(sent=self.sent, persona=self.username, outcome="ack", status=201, action="org.create",
                      target=pk, name=name, parent=parent, sandbox=self.root)  # fmt: skip
        self.nodes[pk] = {"parent": parent, "deleted_with": None}
        self.read_back(pk, parent)

    @task(4)
    def move(self) -> None:
        candidates = [pk for pk in self.alive() if pk != self.root]
        if self.frozen or not candidates:
            return self.read_own()
        node = self.rng.choice(candidates)
        inside = self.subtree(node)
        targets = [pk for pk in self.alive() if pk not in inside and pk != self.nodes[node]["parent"]]
        if not targets:
            return self.read_own()
        target = self.rng.choice(targets)
        old = self.nodes[node]["parent"]
        body = {"parent": target}
        if self.tree_write("tree:POST /orgs/{id}/move", "POST", f"/orgs/{node}/move", 200, body, action="org.move",
                           target=node, parent=target, old_parent=old, sandbox=self.root):  # fmt: skip
            self.nodes[node]["parent"] = target
            self.read_back(node, target)

    @task(3)
    def delete(self) -> None:
        candidates = [pk for pk in self.alive() if pk != self.root]
        if self.frozen or len(candidates) < 4:
            return self.read_own()
        node = self.rng.choice(candidates)
        shared = SANDBOXES[self.root]
        shared["deleting"] = True
        try:
            done = self.tree_write("tree:DELETE /orgs/{id}", "DELETE", f"/orgs/{node}", 204, None,
                                   action="org.delete", target=node, sandbox=self.root)  # fmt: skip
        finally:
            shared["deleting"] = False
            shared["deletes"] += 1
        shared["unknown"] = shared.get("unknown") or not done  # the owner's model is no longer the database's
        if done:
            for pk in self.subtree(node):
                if self.nodes[pk]["deleted_with"] is None:
                    self.nodes[pk]["deleted_with"] = node
            # Deleted: a read must answer 404 now (a 200 would be a stale read).
            self.call("read:GET /orgs/{id} (deleted)", "GET", f"/orgs/{node}", expect=(404,))

    @task(3)
    def restore(self) -> None:
        deleted = [
            pk
            for pk, n in self.nodes.items()
            if n["deleted_with"] == pk and self.nodes[n["parent"]]["deleted_with"] is None
        ]
        if self.frozen or not deleted:
            return self.read_own()
        node = self.rng.choice(deleted)
        if self.tree_write("tree:POST /orgs/{id}/restore", "POST", f"/orgs/{node}/restore", 200, None,
                           action="org.restore", target=node, sandbox=self.root):  # fmt: skip
            for n in self.nodes.values():
                if n["deleted_with"] == node:
                    n["deleted_with"] = None
            self.read_back(node, self.nodes[node]["parent"])

    def read_back(self, pk: str, parent: str) -> None:
        """Read what was just written: it must be visible, under the parent the write put it."""
        answer = self.call("read:GET /orgs/{id} (own write)", "GET", f"/orgs/{pk}", visible=True)
        if answer.status == 200 and answer.get("parent") != parent:
            JOURNAL.anomaly(type="stale_read", kind="read:GET /orgs/{id} (own write)", path=f"/orgs/{pk}",
                            persona=self.username, expected_parent=parent, parent=answer.get("parent"))  # fmt: skip

    @task(2)
    def read_own(self) -> None:
        alive = self.alive()
        if not alive:
            return
        pk = self.rng.choice(alive)
        if self.rng.random() < 0.5:
            self.call("read:GET /orgs/{id}", "GET", f"/orgs/{pk}", visible=True)
        else:
            self.call("read:GET /orgs/{id}/children", "GET", f"/orgs/{pk}/children", visible=True)

    @task(1)
    def invalid(self) -> None:
        if self.frozen or self.rng.random() < 0.5:
            return self.invalid_common()
        # Into its own subtree: 409, and nothing changes.
        candidates = [pk for pk in self.alive() if pk != self.root and len(self.subtree(pk)) > 1]
        if not candidates:
            return self.invalid_common()
        node = self.rng.choice(candidates)
        inside = [pk for pk in self.subtree(node) if pk != node and self.nodes[pk]["deleted_with"] is None]
        if not inside:
            return self.invalid_common()
        body = {"parent": self.rng.choice(inside)}
        self.call("invalid:move into own subtree", "POST", f"/orgs/{node}/move", expect=(409,), body=body)


# ------------------------------------------------------------------------------------------------------------------


class Writer(Persona):
    """An Admin or an Integrator of a workspace org, writing only objects it created (or its pool's grants)."""

    weight = 4
    personas = PLAN_DATA.get("writers", [])
    claims = itertools.count()

    def on_start(self) -> None:
        super().on_start()
        p = self.persona or {}
        self.org, self.orgs, self.project = p.get("org"), p.get("orgs", []), p.get("project")
        self.is_admin = p.get("role") == "admin"
        self.projects: dict[str, str] = {}  # own empty projects: id → name
        self.own_tasks: dict[str, str] = {}  # own tasks in the workspace project: id → name
        self.runs: dict[str, str] = {}  # own runs still queued: id → task
        self.credentials: dict[str, str] = {}
        self.grants: dict[str, dict[str, str]] = {}  # pool username → {"id", "org", "role"}

    def some_org(self) -> str | None:
        return self.org

    def write(self, kind: str, method: str, path: str, expect: int, body: Any, **record: Any) -> Answer | None:
        """A write to a known object (or grant): recorded whatever the answer; the answer when acknowledged."""
        answer = self.call(kind, method, path, expect=(expect,), body=body)
        if answer.status == expect:
            JOURNAL.write(sent=self.sent, persona=self.username, outcome="ack", status=answer.status, **record)
            return answer
        outcome = "uncertain" if answer.status == 0 or answer.status >= 500 else "refused"
        JOURNAL.write(sent=self.sent, persona=self.username, outcome=outcome, status=answer.status, **record)
        return None

    def create(self, kind: str, path: str, body: Any, read_back: str | None, **record: Any) -> Answer | None:
        """A POST that creates an object whose id only the answer tells: recorded with it, then read back."""
        answer = self.call(kind, "POST", path, expect=(201,), body=body)
        if answer.status == 201:
            JOURNAL.write(sent=self.sent, persona=self.username, outcome="ack", status=201, target=answer.get("id"),
                          state=answer.get("status"), **record)  # fmt: skip
            if read_back:
                self.call(f"read:GET {read_back} (own write)", "GET", read_back.replace("{id}", answer.get("id")),
                          visible=True)  # fmt: skip
            return answer
        outcome = "uncertain" if answer.status == 0 or answer.status >= 500 else "refused"
        JOURNAL.write(
            sent=self.sent, persona=self.username, outcome=outcome, status=answer.status, target=None, **record
        )
        return None

    @task(3)
    def project_write(self) -> None:
        if not self.is_admin:
            return self.task_write()
        roll = self.rng.random()
        if roll < 0.5 or not self.projects:
            name = self.uuid_name("p")
            answer = self.create("write:POST /orgs/{id}/projects", f"/orgs/{self.org}/projects", {"name": name},
                                 "/projects/{id}", action="project.create", name=name)  # fmt: skip
            if answer is not None:
                self.projects[answer.get("id")] = name
            return None
        pk = self.rng.choice(list(self.projects))
        name = self.projects.pop(pk)  # uncertain or refused: left alone from now on
        if roll < 0.75:
            new = self.uuid_name("p")
            if self.write("write:PATCH /projects/{id}", "PATCH", f"/projects/{pk}", 200, {"name": new},
                          action="project.update", target=pk, name=new):  # fmt: skip
                self.projects[pk] = new
        else:
            self.write("write:DELETE /projects/{id}", "DELETE", f"/projects/{pk}", 204, None,
                       action="project.delete", target=pk, name=name)  # fmt: skip

    @task(4)
    def task_write(self) -> None:
        roll = self.rng.random()
        if roll < 0.4 or not self.own_tasks:
            name = self.uuid_name("t")
            body = {"name": name, "steps": [{"type": "log", "message": "load test"}]}
            answer = self.create("write:POST /projects/{id}/tasks", f"/projects/{self.project}/tasks", body,
                                 "/tasks/{id}", action="task.create", name=name)  # fmt: skip
            if answer is not None:
                self.own_tasks[answer.get("id")] = name
            return None
        pk = self.rng.choice(list(self.own_tasks))
        name = self.own_tasks.pop(pk)
        if roll < 0.6:
            new = self.uuid_name("t")
            if self.write("write:PATCH /tasks/{id}", "PATCH", f"/tasks/{pk}", 200, {"name": new},
                          action="task.update", target=pk, name=new):  # fmt: skip
                self.own_tasks[pk] = new
        elif roll < 0.85:
            self.own_tasks[pk] = name
            answer = self.create("write:POST /tasks/{id}/run", f"/tasks/{pk}/run", None, None, action="run.create",
                                 task=pk)  # fmt: skip
            if answer is not None and answer.get("status") == "queued":
                self.runs[answer.get("id")] = pk
        else:
            if self.write("write:DELETE /tasks/{id}", "DELETE", f"/tasks/{pk}", 204, None,
                          action="task.delete", target=pk, name=name):  # fmt: skip
                self.runs = {run: t for run, t in self.runs.items() if t != pk}

    @task(1)
    def stop_run(self) -> None:
        if not self.runs:
            return self.read()
        pk = self.rng.choice(list(self.runs))
        task_pk = self.runs.pop(pk)
        answer = self.write("write:POST /runs/{id}/stop", "POST", f"/runs/{pk}/stop", 200, None,
                            action="run.stop", target=pk, task=task_pk)  # fmt: skip
        if answer is not None and answer.get("status") != "stopped":
            JOURNAL.anomaly(type="unexpected", kind="write:POST /runs/{id}/stop", path=f"/runs/{pk}/stop",
                            persona=self.username, status=200, body=json.dumps(answer.body)[:400])  # fmt: skip

    @task(3)
    def credential_write(self) -> None:
        roll = self.rng.random()
        if roll < 0.5 or not self.credentials:
            name = self.uuid_name("c")
            body = {"name": name, "kind": "generic", "fields": {"note": "load"}, "secret": {"token": "s3cret"}}
            answer = self.create("write:POST /orgs/{id}/credentials", f"/orgs/{self.org}/credentials", body,
                                 "/credentials/{id}", action="credential.create", name=name)  # fmt: skip
            if answer is not None:
                self.credentials[answer.get("id")] = name
            return None
        pk = self.rng.choice(list(self.credentials))
        name = self.credentials.pop(pk)
        if roll < 0.8:
            new = self.uuid_name("c")
            if self.write("write:PATCH /credentials/{id}", "PATCH", f"/credentials/{pk}", 200, {"name": new},
                          action="credential.update", target=pk, name=new):  # fmt: skip
                self.credentials[pk] = new
        else:
            self.write("write:DELETE /credentials/{id}", "DELETE", f"/credentials/{pk}", 204, None,
                       action="credential.delete", target=pk, name=name)  # fmt: skip

    @task(2)
    def member_write(self) -> None:
        if not self.is_admin:
            return self.credential_write()
        pool = self.persona["pool"]
        holder = self.rng.choice(pool)
        grant = self.grants.pop(holder, None)
        if grant is None:
            org = self.rng.choice(self.orgs)
            role = self.rng.choice(["guest", "integrator"])
            answer = self.write("write:POST /orgs/{id}/members", "POST", f"/orgs/{org}/members", 201,
                                {"user": holder, "role": role}, action="grant.create", target=org, holder=holder,
                                role=role)  # fmt: skip
            if answer is not None:
                self.grants[holder] = {"id": answer.get("id"), "org": org, "role": role}
            return None
        if self.rng.random() < 0.5:
            role = "integrator" if grant["role"] == "guest" else "guest"
            if self.write("write:PATCH /members/{id}", "PATCH", f"/members/{grant['id']}", 200, {"role": role},
                          action="grant.update", target=grant["org"], holder=holder, role=role):  # fmt: skip
                self.grants[holder] = {**grant, "role": role}
        else:
            self.write("write:DELETE /members/{id}", "DELETE", f"/members/{grant['id']}", 204, None,
                       action="grant.delete", target=grant["org"], holder=holder)  # fmt: skip

    @task(5)
    def read(self) -> None:
        roll = self.rng.randrange(5)
        org = self.rng.choice(self.orgs) if self.orgs else self.org
        if roll == 0:
            self.call("read:GET /orgs/{id}", "GET", f"/orgs/{org}", visible=True)
        elif roll == 1:
            self.call("read:GET /orgs/{id}/effective-config", "GET", f"/orgs/{org}/effective-config", visible=True)
        elif roll == 2:
            self.call("read:GET /projects/{id}/tasks", "GET", f"/projects/{self.project}/tasks", visible=True)
        elif roll == 3:
            self.call("read:GET /orgs/{id}/members", "GET", f"/orgs/{org}/members", visible=True)
        elif self.own_tasks:
            pk = self.rng.choice(list(self.own_tasks))
            self.call("read:GET /tasks/{id}", "GET", f"/tasks/{pk}", visible=True)
        else:
            self.call("read:GET /orgs/{id}/credentials", "GET", f"/orgs/{self.org}/credentials", visible=True)

    @task(1)
    def invalid(self) -> None:
        roll = self.rng.random()
        if roll < 0.5:
            return self.invalid_common()
        if roll < 0.75:
            body = {"name": self.uuid_name("t"), "steps": "not a list of steps"}
            self.call("invalid:bad steps", "POST", f"/projects/{self.project}/tasks", expect=(400,), body=body)
        elif self.is_admin:
            self.call("invalid:unknown pool user", "POST", f"/orgs/{self.org}/members", expect=(400,),
                      body={"user": self.uuid_name("nobody"), "role": "guest"})  # fmt: skip
        else:
            # An Integrator sees the org but may not manage its projects.
            self.call("invalid:forbidden project", "POST", f"/orgs/{self.org}/projects", expect=(403,),
                      body={"name": self.uuid_name("p")})  # fmt: skip


# ------------------------------------------------------------------------------------------------------------------


class SandboxGuest(Persona):
    """A Guest on an inner node of a sandbox, reading that node and what lies below it while the owner creates,
    moves, deletes and restores around it. Each node it reads was visible before and after any concurrent move or
    create, so a 404 is false unless a delete overlapped the read."""

    weight = 2
    personas = PLAN_DATA.get("tree_admins", [])
    claims = itertools.count()

    def on_start(self) -> None:
        super().on_start()
        guest = self.persona["guest"] if self.persona else {}
        self.root, self.grant = (self.persona["root"], guest["org"]) if self.persona else (None, None)
        self.token, self.username = guest.get("token", ""), guest.get("username", "nobody")

    def some_org(self) -> str | None:
        return self.grant

    def visible(self, nodes: dict[str, dict[str, Any]]) -> list[str]:
        """The live nodes at or below the granted one (none while it is deleted)."""
        if nodes[self.grant]["deleted_with"] is not None:
            return []
        children: dict[str, list[str]] = defaultdict(list)
        for pk, n in nodes.items():
            if n["deleted_with"] is None:
                children[n["parent"]].append(pk)
        found, stack = [], [self.grant]
        while stack:
            found.append(stack.pop())
            stack.extend(children[found[-1]])
        return found

    @task(12)
    def read(self) -> None:
        if self.grant is None:
            return
        shared = SANDBOXES.get(self.root)
        if shared is None:  # its owner is not running: nothing moves, every node of the subtree stays visible
            self.call("read:GET /orgs/{id} (sandbox guest)", "GET", f"/orgs/{self.grant}", visible=True)
            return
        visible = self.visible(shared["nodes"])
        if not visible or shared.get("unknown"):
            return self.invalid_common() if self.rng.random() < 0.1 else None
        pk = self.rng.choice(visible)
        deletes, overlapped = shared["deletes"], shared["deleting"]
        kind, path = (
            ("read:GET /orgs/{id} (sandbox guest)", f"/orgs/{pk}")
            if self.rng.random() < 0.7
            else ("read:GET /orgs/{id}/children (sandbox guest)", f"/orgs/{pk}/children")
        )
        answer = self.call(kind, "GET", path, expect=(200, 404))
        sent, answered = self.sent, self.answered
        overlapped = overlapped or shared["deleting"] or shared["deletes"] != deletes
        if answer.status == 404 and not overlapped and pk in self.visible(shared["nodes"]):
            again = self.reread(path, self.token)
            JOURNAL.anomaly(type="false_404", kind=kind, method="GET", path=path, status=404,
                            persona=self.username, reread=again, sent=sent, answered=answered)  # fmt: skip

    @task(1)
    def invalid(self) -> None:
        self.invalid_common()


# ------------------------------------------------------------------------------------------------------------------


class Reader(Persona):
    """A member reading what prepare.py found it may see: every 404 there is false."""

    weight = 4
    personas = PLAN_DATA.get("readers", [])
    claims = itertools.count()

    def some_org(self) -> str | None:
        """One of the orgs it may see; half of the time the one its grant is on."""
        orgs = self.persona["orgs"] if self.persona else []
        home = self.persona.get("home", []) if self.persona else []
        if home and self.rng.random() < 0.5:
            return self.rng.choice(home)
        return self.rng.choice(orgs) if orgs else None

    @task(16)
    def read(self) -> None:
        p = self.persona
        roll = self.rng.randrange(9)
        org = self.some_org()
        if roll == 0 or (org is None and roll < 6):
            self.call("read:GET /me", "GET", "/me")
        elif roll == 1:
            self.call("read:GET /orgs/{id}", "GET", f"/orgs/{org}", visible=True)
        elif roll == 2:
            self.call("read:GET /orgs (list)", "GET", "/orgs?page_size=50")
        elif roll == 3:
            self.call("read:GET /orgs/{id}/children", "GET", f"/orgs/{org}/children", visible=True)
        elif roll == 4:
            self.call("read:GET /orgs?parent=", "GET", f"/orgs?parent={org}")
        elif roll == 5:
            self.call("read:GET /orgs/{id}/effective-config", "GET", f"/orgs/{org}/effective-config", visible=True)
        elif roll == 6 and p["member_orgs"]:
            pk = self.rng.choice(p["member_orgs"])
            self.call("read:GET /orgs/{id}/members", "GET", f"/orgs/{pk}/members", visible=True)
        elif roll == 7 and p["projects"]:
            pk = self.rng.choice(p["projects"])
            self.call("read:GET /projects/{id}/tasks", "GET", f"/projects/{pk}/tasks", visible=True)
        elif p["tasks"]:
            pk = self.rng.choice(p["tasks"])
            self.call("read:GET /tasks/{id}", "GET", f"/tasks/{pk}", visible=True)
        else:
            self.call("read:GET /orgs (list)", "GET", "/orgs?page_size=50")

    @task(1)
    def invalid(self) -> None:
        self.invalid_common()
