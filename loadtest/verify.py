"""After the load: the summary table, then the integrity verification (python -m loadtest.verify --out RUN).

Exit status 1 when any request was answered 5xx (or got no answer) or when the database disagrees with what was
acknowledged:

- ``check_org_tree`` finds every tree sound;
- every acknowledged write is in its final state: each sandbox holds exactly the orgs its owner's creates,
  moves, deletes and restores leave (parents, deleted or alive, deleted with which node), and projects, tasks,
  runs, credentials and role grants are there with their last acknowledged name, role or status, or gone;
- the audit events written since prepare.py match the writes one for one (action, target, and the new parent of
  a move or the holder of a grant), by the persona that made them. A write whose answer never came (5xx,
  transport error) counts as applied exactly when its audit event exists; a refused one (4xx) must have none.

False 404s (a persona's read of something it may see answered 404) and other unexpected statuses are listed but
do not fail the run (--strict makes them fail it too).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from loadtest.common import (
    ANOMALIES,
    CATEGORIES,
    LOCKS,
    PLAN,
    REPORT,
    REQUESTS,
    WRITES,
    category,
    percentile,
    read_json,
    read_jsonl,
)

API = "/api/v1"
CREATES = {"org.create", "project.create", "task.create", "credential.create", "run.create"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="The run folder.")
    parser.add_argument("--strict", action="store_true", help="Fail on false 404s and unexpected statuses too.")
    parser.add_argument("--note", default="", help="A line on the machine and its load, for the report.")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()

    plan = read_json(args.out / PLAN)
    requests = read_json(args.out / REQUESTS, {"kinds": {}, "started": 0, "stopped": 0})
    anomalies = read_jsonl(args.out / ANOMALIES)
    writes = read_jsonl(args.out / WRITES)
    locks = read_json(args.out / LOCKS, {})

    lines: list[str] = []
    say = lines.append
    if args.note:
        say(f"Machine: {args.note}\n")
    failed_requests = summarize(requests, anomalies, writes, say, args.out / "gunicorn.log")
    say("")
    lock_and_table_figures(plan, locks, say)
    say("")
    problems, notes = verify(plan, writes)
    say(f"## Integrity ({len(writes)} writes recorded)\n")
    for note in notes:
        say(f"- {note}")
    if problems:
        say(f"\n**{len(problems)} integrity problem(s):**\n")
        for problem in problems[:200]:
            say(f"- {problem}")
    else:
        say("- OK: check_org_tree passed; every acknowledged write is in its final state; audit events match.")
    soft = sum(1 for a in anomalies if a["type"] in ("false_404", "unexpected", "stale_read"))
    verdict = bool(failed_requests or problems or (args.strict and soft))
    say("")
    say(f"**Result: {'FAILED' if verdict else 'PASSED'}**")
    text = "\n".join(lines)
    print(text)
    (args.out / REPORT).write_text(text + "\n")
    return 1 if verdict else 0


# -- the summary -----------------------------------------------------------------------------------------------------


def summarize(
    requests: dict[str, Any], anomalies: list[dict[str, Any]], writes: list[dict[str, Any]], say: Any, log: Path
) -> int:
    """Print the table; return the number of 5xx and unanswered requests."""
    duration = max(1e-9, requests["stopped"] - requests["started"])
    kinds = requests["kinds"]
    total = sum(len(k["times_ms"]) for k in kinds.values())
    say(f"## Requests: {total} in {duration:.0f} s, {total / duration:.1f} req/s\n")
    say("| kind | requests | req/s | failures | statuses | p50 ms | p95 ms | p99 ms |")
    say("|---|---:|---:|---:|---|---:|---:|---:|")
    by_category: dict[str, list[float]] = defaultdict(list)
    failures_by_category: Counter[str] = Counter()
    for kind in sorted(kinds, key=lambda k: (CATEGORIES.index(category(k)) if category(k) in CATEGORIES else 9, k)):
        data = kinds[kind]
        times = data["times_ms"]
        by_category[category(kind)].extend(times)
        failures_by_category[category(kind)] += data["failures"]
        statuses = " ".join(f"{s}×{n}" for s, n in sorted(data["statuses"].items(), key=lambda x: int(x[0])))
        say(
            f"| {kind} | {len(times)} | {len(times) / duration:.1f} | {data['failures']} | {statuses} | "
            f"{percentile(times, 0.5):.0f} | {percentile(times, 0.95):.0f} | {percentile(times, 0.99):.0f} |"
        )
    say("")
    say("| category | requests | share | failures | p50 ms | p95 ms | p99 ms |")
    say("|---|---:|---:|---:|---:|---:|---:|")
    for name in CATEGORIES:
        times = sorted(by_category.get(name, []))
        share = 100 * len(times) / total if total else 0
        say(
            f"| {name} | {len(times)} | {share:.0f} % | {failures_by_category[name]} | {percentile(times, 0.5):.0f} | "
            f"{percentile(times, 0.95):.0f} | {percentile(times, 0.99):.0f} |"
        )
    all_times = sorted(t for k in kinds.values() for t in k["times_ms"])
    say(
        f"| all | {total} | 100 % | {sum(failures_by_category.values())} | {percentile(all_times, 0.5):.0f} | "
        f"{percentile(all_times, 0.95):.0f} | {percentile(all_times, 0.99):.0f} |"
    )
    statuses: Counter[int] = Counter()
    for data in kinds.values():
        for status, count in data["statuses"].items():
            statuses[int(status)] += count
    say("")
    say("Statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))

    server_errors = [a for a in anomalies if a["type"] in ("5xx", "transport")]
    say(f"\n### 5xx and unanswered requests: {len(server_errors)}\n")
    causes = server_error_causes(log)
    for a in server_errors[:50]:
        retry = f" (Retry-After: {a['retry_after']})" if a.get("retry_after") else ""
        cause = causes.get(API + a["path"].split("?")[0]) or repr(a["body"][:200])
        say(f"- {a['status']}{retry} {a['method']} {a['path']} [{a['kind']}] as {a['persona']}: {cause}")
    if causes:
        say(f"\n(Tracebacks in {os.path.relpath(log)}.)")

    false_404 = [a for a in anomalies if a["type"] == "false_404"]
    say(f"\n### False 404s: {len(false_404)}\n")
    if false_404:
        grouped = Counter((a["kind"], a["reread"]) for a in false_404)
        say("| kind | re-read at once answered | count |")
        say("|---|---|---:|")
        for (kind, reread), count in sorted(grouped.items()):
            say(f"| {kind} | {reread} | {count} |")
        say("")
        for a in false_404[:10]:
            at = datetime.fromtimestamp(a.get("sent", a["t"])).strftime("%H:%M:%S.%f")[:-3]
            say(f"- {at} {a['method']} {a['path']} as {a['persona']}: 404, re-read at once {a['reread']}")
            for w in overlapping(a, writes):
                target = "" if w.get("target") == a["path"].split("/")[2] else f" of {w.get('target')}"
                say(f"  - while {w['persona']}'s {w['action']}{target} (answered {w['status']}) was in flight")

    stale = [a for a in anomalies if a["type"] == "stale_read"]
    if stale:
        say(f"\n### Stale reads after a write: {len(stale)}\n")
        for a in stale[:10]:
            say(f"- {a['path']} as {a['persona']}: parent {a['parent']}, expected {a['expected_parent']}")

    unexpected = [a for a in anomalies if a["type"] == "unexpected"]
    say(f"\n### Other unexpected statuses: {len(unexpected)}\n")
    grouped_unexpected: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for a in unexpected:
        grouped_unexpected[(a["kind"], a["status"])].append(a)
    for (kind, status), items in sorted(grouped_unexpected.items()):
        sample = items[0]
        say(f"- {kind}: {status} ×{len(items)} (expected {sample.get('expected')}), e.g. {sample['method']} "
            f"{sample['path']} as {sample['persona']}: {sample.get('body', '')[:200]!r}")  # fmt: skip
    return len(server_errors)


def overlapping(anomaly: dict[str, Any], writes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tree writes whose request was in flight (sent, not yet answered) while ``anomaly``'s request was."""
    if "sent" not in anomaly:
        return []
    start, end = anomaly["sent"], anomaly.get("answered", anomaly["t"])
    return [w for w in writes if w["action"].startswith("org.") and w.get("sent", w["t"]) <= end and w["t"] >= start]


def server_error_causes(log: Path) -> dict[str, str]:
    """Path → the exception (and PostgreSQL's DETAIL and CONTEXT) of each 500 that Django logged in gunicorn.log."""
    if not log.exists():
        return {}
    causes: dict[str, str] = {}
    for block in log.read_text(errors="replace").split("Internal Server Error: ")[1:]:
        lines = block.splitlines()
        path = lines[0].strip()
        exception = next((x for x in reversed(lines) if re.match(r"^[\w.]+(Error|Exception|Detected)\b", x)), "")
        extra = [x.strip() for x in lines if x.startswith(("DETAIL:", "CONTEXT:"))][:2]
        where = [x.strip() for x in lines if x.strip().startswith(f'File "{Path.cwd()}/') and "/.venv/" not in x]
        frame = (
            where[-1].split('"')[1].rsplit("/", 1)[-1] + ":" + where[-1].split(", line ")[1].split(",")[0]
            if where
            else ""
        )
        cause = "; ".join(filter(None, [exception.strip(), *extra, f"last app frame {frame}" if frame else ""]))
        causes[path] = " ".join(cause.split())[:400]
    return causes


def lock_and_table_figures(plan: dict[str, Any], locks: dict[str, Any], say: Any) -> None:
    from loadtest.prepare import org_table_stats

    if locks:
        say("## Lock waits (pg_stat_activity, sampled every {:.1f} s)\n".format(locks["interval_s"]))
        share = 100 * locks["samples_with_waits"] / max(1, locks["samples"])
        say(
            f"- backends waiting on a lock in {share:.0f} % of {locks['samples']} samples; at most "
            f"{locks['max_waiting']} at once (mean {locks['mean_waiting']:.1f}); longest wait seen "
            f"{locks['longest_wait_s']:.2f} s; wait events {locks['wait_events']}"
        )
        if locks.get("vacuums"):
            say(f"- the org table was vacuumed every {locks['vacuum_every_s']:.0f} s ({locks['vacuums']} times, "
                f"the longest {locks['vacuum_s_max']:.2f} s)")  # fmt: skip
    before, after = plan["org_table"], org_table_stats()
    say(f"\n## The org table (server autovacuum: {after['server_autovacuum']})\n")
    say("| | live rows | dead rows | row updates | HOT updates | table MB | indexes MB | autovacuums |")
    say("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, s in (("before the run (after VACUUM FULL)", before), ("after the run", after)):
        say(
            f"| {label} | {s['live']} | {s['dead']} | {s['updated']} | {s['hot_updated']} | "
            f"{s['table_bytes'] / 2**20:.1f} | {s['index_bytes'] / 2**20:.1f} | {s['autovacuum_count']} |"
        )


# -- the integrity verification ----------------------------------------------------------------------------------------


def event_keys(event: Any, run_tasks: dict[str, str]) -> tuple[tuple[Any, ...], tuple[Any, ...] | None]:
    """(the key a write with a known target matches, the key a create without a known id matches)."""
    changes = event.changes or {}
    action, target = event.action, event.target_id
    if action == "org.move":
        return (action, target, (changes.get("parent") or [None, None])[1]), None
    if action.startswith("grant."):
        return (action, target, changes.get("holder")), None
    if action == "run.create":
        return (action, target), (action, None, run_tasks.get(target))
    if action in CREATES:
        return (action, target), (action, None, changes.get("name"))
    return (action, target), None


def write_keys(write: dict[str, Any]) -> tuple[Any, ...]:
    action, target = write["action"], write.get("target")
    if action == "org.move":
        return (action, target, write["parent"])
    if action.startswith("grant."):
        return (action, target, write["holder"])
    if target is None and action == "run.create":
        return (action, None, write["task"])
    if target is None:
        return (action, None, write.get("name"))
    return (action, target)


def verify(plan: dict[str, Any], writes: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    from django.core.management import CommandError, call_command
    from django.utils.dateparse import parse_datetime

    from access.models import AuditEvent
    from resources.models import Run

    problems: list[str] = []
    notes: list[str] = []
    try:
        call_command("check_org_tree", stdout=io.StringIO(), stderr=io.StringIO())
    except CommandError as exc:
        from orgs.integrity import tree_problems

        problems.append(f"check_org_tree: {exc}")
        problems.extend(f"check_org_tree: {p}" for p in tree_problems()[:20])

    events = list(AuditEvent.objects.filter(created_at__gt=parse_datetime(plan["prepared_at"])).order_by("created_at"))
    run_ids = [e.target_id for e in events if e.action == "run.create"]
    run_tasks = {str(pk): str(task) for pk, task in Run.objects.filter(pk__in=run_ids).values_list("pk", "task_id")}
    unmatched: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    by_alt: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for event in events:
        key, alt = event_keys(event, run_tasks)
        unmatched[key].append(event)
        if alt is not None:
            by_alt[alt].append(event)
    consumed: set[Any] = set()

    def take(key: tuple[Any, ...], pool: dict[tuple[Any, ...], list[Any]]) -> Any:
        for event in pool.get(key, []):
            if event.pk not in consumed:
                consumed.add(event.pk)
                return event
        return None

    applied: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    for write in writes:
        counts[write["outcome"]] += 1
        key = write_keys(write)
        event = take(key, unmatched if write.get("target") is not None else by_alt)
        if write["outcome"] == "ack":
            if event is None:
                problems.append(f"acknowledged {write['action']} of {write.get('target')} by {write['persona']} "
                                f"(write #{write['seq']}) has no audit event")  # fmt: skip
            elif event.actor_name != write["persona"]:
                problems.append(f"audit event {event.pk} ({write['action']}) names {event.actor_name!r}, the write "
                                f"was {write['persona']}'s")  # fmt: skip
            applied.append(write)
        elif event is not None:
            resolved = {**write, "target": write.get("target") or event.target_id}
            if write["outcome"] == "refused":
                problems.append(f"{write['action']} answered {write['status']} (refused) was applied anyway: audit "
                                f"event {event.pk} on {event.target_id} (write #{write['seq']})")  # fmt: skip
            else:
                notes.append(f"{write['action']} answered {write['status']} was applied (audit event {event.pk})")
            applied.append(resolved)
    leftover = [e for e in events if e.pk not in consumed]
    for event in leftover[:50]:
        problems.append(f"audit event without an acknowledged write: {event.action} on {event.target_id} "
                        f"by {event.actor_name} at {event.created_at:%H:%M:%S.%f} changes {event.changes}")  # fmt: skip
    if len(leftover) > 50:
        problems.append(f"… {len(leftover) - 50} more audit events without a write")
    notes.append(
        f"{len(events)} audit events since preparation; writes: {counts['ack']} acknowledged, "
        f"{counts['uncertain']} without an answer, {counts['refused']} refused"
    )
    problems.extend(check_sandboxes(plan, applied))
    problems.extend(check_objects(applied))
    return problems, notes


def check_sandboxes(plan: dict[str, Any], applied: list[dict[str, Any]]) -> list[str]:
    """Replay each sandbox's writes on its initial nodes; the database must hold exactly the result."""
    from orgs.models import Organization

    problems = []
    models: dict[str, dict[str, dict[str, Any]]] = {}
    for admin in plan["tree_admins"]:
        models[admin["root"]] = {pk: {"parent": n["parent"], "deleted_with": None} for pk, n in admin["nodes"].items()}
    for write in applied:
        if not write["action"].startswith("org."):
            continue
        nodes, pk = models[write["sandbox"]], write["target"]
        if write["action"] == "org.create":
            nodes[pk] = {"parent": write["parent"], "deleted_with": None}
        elif write["action"] == "org.move":
            nodes[pk]["parent"] = write["parent"]
        elif write["action"] == "org.delete":
            for node in subtree(nodes, pk):
                if nodes[node]["deleted_with"] is None:
                    nodes[node]["deleted_with"] = pk
        elif write["action"] == "org.restore":
            for node in nodes.values():
                if node["deleted_with"] == pk:
                    node["deleted_with"] = None
    for root, nodes in models.items():
        top = Organization.objects.get(pk=root)
        in_db = {
            str(o["pk"]): o
            for o in Organization.objects.filter(tree_id=top.tree_id, lft__gte=top.lft, rght__lte=top.rght).values(
                "pk", "parent_id", "deleted_at", "deleted_with_id", "name"
            )
        }
        for pk, expected in nodes.items():
            row = in_db.get(pk)
            if row is None:
                where = Organization.objects.filter(pk=pk).values_list("parent_id", flat=True).first()
                problems.append(f"sandbox {top.name}: org {pk} is missing from it (in the database: "
                                f"{'parent ' + str(where) if where else 'no such org'})")  # fmt: skip
                continue
            parent = str(row["parent_id"]) if row["parent_id"] else None
            if parent != expected["parent"]:
                problems.append(f"sandbox {top.name}: org {row['name']} ({pk}) is under {parent}, the last "
                                f"acknowledged write put it under {expected['parent']}")  # fmt: skip
            deleted_with = str(row["deleted_with_id"]) if row["deleted_with_id"] else None
            if (row["deleted_at"] is not None) != (expected["deleted_with"] is not None):
                state = "deleted" if row["deleted_at"] else "alive"
                problems.append(f"sandbox {top.name}: org {row['name']} ({pk}) is {state}, expected "
                                f"{'deleted' if expected['deleted_with'] else 'alive'}")  # fmt: skip
            elif deleted_with != expected["deleted_with"]:
                problems.append(f"sandbox {top.name}: org {row['name']} ({pk}) was deleted with {deleted_with}, "
                                f"expected with {expected['deleted_with']}")  # fmt: skip
        for pk in set(in_db) - set(nodes):
            problems.append(f"sandbox {top.name}: org {in_db[pk]['name']} ({pk}) was never acknowledged")
    return problems


def subtree(nodes: dict[str, dict[str, Any]], pk: str) -> set[str]:
    children: dict[str, list[str]] = defaultdict(list)
    for node, n in nodes.items():
        children[n["parent"]].append(node)
    found, stack = set(), [pk]
    while stack:
        current = stack.pop()
        found.add(current)
        stack.extend(children[current])
    return found


def check_objects(applied: list[dict[str, Any]]) -> list[str]:
    """Projects, tasks, credentials, runs and grants: their last acknowledged state, or gone."""
    from access.models import OrgUserGrant
    from orgs.models import Project
    from resources.models import Credential, Run, Task

    named: dict[str, dict[str, str | None]] = {"project": {}, "task": {}, "credential": {}}
    runs: dict[str, dict[str, Any]] = {}
    grants: dict[tuple[str, str], str | None] = {}
    for write in applied:
        noun, _, verb = write["action"].partition(".")
        if noun in named:
            named[noun][write["target"]] = None if verb == "delete" else write["name"]
            if noun == "task" and verb == "delete":
                for run in runs.values():
                    if run["task"] == write["target"]:
                        run["gone"] = True
        elif write["action"] == "run.create":
            runs[write["target"]] = {"task": write["task"], "status": write.get("state") or "queued", "gone": False}
        elif write["action"] == "run.stop":
            runs[write["target"]]["status"] = "stopped"
        elif noun == "grant":
            grants[(write["target"], write["holder"])] = None if verb == "delete" else write["role"]

    problems = []
    for noun, model in (("project", Project), ("task", Task), ("credential", Credential)):
        expected = named[noun]
        found = dict(model.objects.filter(pk__in=list(expected)).values_list("pk", "name"))
        found = {str(pk): name for pk, name in found.items()}
        for pk, name in expected.items():
            if name is None and pk in found:
                problems.append(f"{noun} {pk} ({found[pk]}) exists; its deletion was acknowledged")
            elif name is not None and pk not in found:
                problems.append(f"{noun} {pk} ({name}) is missing; its creation was acknowledged")
            elif name is not None and found[pk] != name:
                problems.append(f"{noun} {pk} is named {found[pk]!r}, the last acknowledged write named it {name!r}")
    found_runs = {str(pk): status for pk, status in Run.objects.filter(pk__in=list(runs)).values_list("pk", "status")}
    for pk, run in runs.items():
        if run["gone"]:
            if pk in found_runs:
                problems.append(f"run {pk} exists; its task's deletion was acknowledged")
        elif pk not in found_runs:
            problems.append(f"run {pk} is missing; it was acknowledged")
        elif found_runs[pk] != run["status"]:
            problems.append(f"run {pk} is {found_runs[pk]}, expected {run['status']}")
    for (org, holder), role in grants.items():
        row = OrgUserGrant.objects.filter(content_object_id=org, user__username=holder).values_list("role__key").first()
        if role is None and row is not None:
            problems.append(f"{holder}'s grant on {org} exists ({row[0]}); its removal was acknowledged")
        elif role is not None and row is None:
            problems.append(f"{holder}'s grant on {org} is missing; it was acknowledged as {role}")
        elif role is not None and row[0] != role:
            problems.append(f"{holder}'s grant on {org} is {row[0]}, the last acknowledged write made it {role}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
