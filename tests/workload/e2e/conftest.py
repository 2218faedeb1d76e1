"""The runtimes' end-to-end fixtures (a live Canopy, real agent processes, a target server), shared as they are."""

from tests.runtimes.e2e.conftest import canopy, start_agent, target  # noqa: F401 - pytest finds fixtures by name
