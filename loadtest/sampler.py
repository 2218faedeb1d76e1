"""Lock waits during the load: pg_stat_activity sampled every --interval seconds until SIGTERM (writes locks.json).
With --vacuum-every, it also vacuums the org table on that period, as a tuned autovacuum would.

A backend waiting on a heavyweight lock (wait_event_type 'Lock') is a request queued behind another transaction,
most often a tree write waiting for the tenant row lock. Each sample counts the waiting backends of the load
test's database and how long each has waited so far (now() - state_change, within its current statement).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

QUERY = """
SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'),
       coalesce(max(extract(epoch FROM now() - state_change)) FILTER (WHERE wait_event_type = 'Lock'), 0),
       count(*) FILTER (WHERE state = 'active'),
       coalesce(string_agg(DISTINCT wait_event, ',') FILTER (WHERE wait_event_type = 'Lock'), '')
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


def main(argv: list[str] | None = None) -> int:
    import psycopg

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument(
        "--vacuum-every", type=float, default=0, help="VACUUM the org table every so many seconds (0: never)."
    )
    args = parser.parse_args(argv)

    stop = False

    def finish(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    samples: list[tuple[float, int, float, int]] = []
    events: dict[str, int] = {}
    vacuums: list[float] = []
    last_vacuum = time.time()
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        while not stop:
            if args.vacuum_every and time.time() - last_vacuum >= args.vacuum_every:
                # What an autovacuum tuned for this table would do (README, PostgreSQL in production).
                started = time.time()
                conn.execute("VACUUM orgs_organization")
                last_vacuum = time.time()
                vacuums.append(last_vacuum - started)
            waiting, longest, active, kinds = conn.execute(QUERY).fetchone()
            samples.append((time.time(), int(waiting), float(longest), int(active)))
            for kind in filter(None, kinds.split(",")):
                events[kind] = events.get(kind, 0) + 1
            time.sleep(args.interval)
    with_waits = [s for s in samples if s[1]]
    summary = {
        "interval_s": args.interval,
        "samples": len(samples),
        "samples_with_waits": len(with_waits),
        "max_waiting": max((s[1] for s in samples), default=0),
        "mean_waiting": sum(s[1] for s in samples) / len(samples) if samples else 0,
        "longest_wait_s": max((s[2] for s in samples), default=0.0),
        "max_active": max((s[3] for s in samples), default=0),
        "wait_events": events,
        "vacuum_every_s": args.vacuum_every,
        "vacuums": len(vacuums),
        "vacuum_s_max": max(vacuums, default=0.0),
    }
    args.out.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
