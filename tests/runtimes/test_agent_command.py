"""manage.py runtime_agent: the platform's global runtime made sure of, an enrollment token minted only when the
state directory has none, the agent started with it in its environment (never on its command line)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from access.models import hash_token
from runtimes.management.commands import runtime_agent
from runtimes.models import EnrollmentToken, Runtime

pytestmark = pytest.mark.django_db


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict[str, str]]]:
    calls: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr(runtime_agent.Command, "exec_agent", lambda self, argv, env: calls.append((argv, env)))
    return calls


def test_creates_the_platform_runtime_mints_a_token_and_starts_the_agent(execs: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    call_command("runtime_agent", "--url", "https://canopy.example.com", "--state-dir", str(state), "--name", "p1")
    runtime = Runtime.objects.get(name="platform")
    assert runtime.kind == Runtime.Kind.GLOBAL and runtime.org is None
    assert runtime.all_tenants and runtime.is_platform_default and not runtime.allow_private_network
    ((argv, env),) = execs
    assert argv[1:3] == ["-m", "runtimes.agent"]
    assert argv[argv.index("--url") + 1] == "https://canopy.example.com"
    assert argv[argv.index("--state-dir") + 1] == str(state.resolve())
    assert argv[argv.index("--name") + 1] == "p1"
    token = env["CANOPY_ENROLLMENT_TOKEN"]
    assert token.startswith("cne_") and token not in " ".join(argv)
    enrollment = EnrollmentToken.objects.get(runtime=runtime)
    assert enrollment.token_hash == hash_token(token) and enrollment.used_at is None


def test_an_enrolled_state_gets_no_new_token_and_an_existing_runtime_is_reused(
    execs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANOPY_ENROLLMENT_TOKEN", "cne_stale_from_the_environment")
    other_default = Runtime.objects.create(name="other", kind=Runtime.Kind.GLOBAL, is_platform_default=True)
    existing = Runtime.objects.create(name="Platform", kind=Runtime.Kind.GLOBAL)
    (tmp_path / "agent.json").write_text(json.dumps({"url": "x", "runtime": {}, "instance": "i", "token": "t",
                                                     "expires_at": "2099-01-01T00:00:00Z"}))  # fmt: skip
    call_command("runtime_agent", "--state-dir", str(tmp_path), "--allow-private-network")
    ((_, env),) = execs
    assert "CANOPY_ENROLLMENT_TOKEN" not in env  # nor one inherited from the environment
    assert EnrollmentToken.objects.count() == 0
    assert Runtime.objects.filter(org__isnull=True).count() == 2
    existing.refresh_from_db()
    assert existing.allow_private_network and not existing.is_platform_default
    assert Runtime.objects.get(pk=other_default.pk).is_platform_default


def test_a_second_global_runtime_is_not_made_the_default(execs: Any, tmp_path: Path) -> None:
    Runtime.objects.create(name="eu", kind=Runtime.Kind.GLOBAL, is_platform_default=True)
    call_command("runtime_agent", "--runtime", "us", "--state-dir", str(tmp_path))
    assert not Runtime.objects.get(name="us").is_platform_default
