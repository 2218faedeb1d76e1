"""The Canopy runtime agent: ``python -m runtimes.agent --url URL --state-dir DIR [--enrollment-token TOKEN]``.

A small program a customer runs on their own machines (a local runtime) or the platform runs for a global one. It
enrolls once with a one-time enrollment token, keeps its own bearer token in its state directory, long-polls
Canopy for runs, executes their steps (http, lookup, transform, log) and reports logs, step results and the
outcome (docs/API.md "Runtime agents", docs/DESIGN.md §6).

It needs only Python, httpx and jmespath: nothing here may import Django or another module of the project
(tests/runtimes/test_agent_standalone.py proves it)."""

VERSION = "1.0.0"
