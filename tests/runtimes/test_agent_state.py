"""The agent's state file and start-up checks: atomic, owner-only agent.json; http:// only to loopback; token
rotation when less than a third of its lifetime is left."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runtimes.agent import state


@pytest.mark.parametrize(
    "url", ["https://canopy.example.com", "http://127.0.0.1:8000/", "http://localhost:8000", "http://[::1]:8000"]
)
def test_accepted_urls(url: str) -> None:
    assert state.check_url(url) == url.rstrip("/")


@pytest.mark.parametrize("url", ["http://canopy.example.com", "http://10.0.0.2:8000", "ftp://x", "canopy.example"])
def test_refused_urls(url: str) -> None:
    with pytest.raises(state.ConfigError):
        state.check_url(url)


def test_state_is_written_atomically_for_the_owner_only(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    data = {"url": "https://c", "runtime": {"id": "r"}, "instance": "i", "token": "cna_x", "expires_at": "2030-01-01"}
    path = state.save(directory, data)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert state.load(directory) == data
    state.save(directory, {**data, "token": "cna_y"})
    assert state.load(directory)["token"] == "cna_y"
    assert [p.name for p in directory.iterdir()] == ["agent.json"]  # no temporary file left behind


def test_an_incomplete_state_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "agent.json").write_text(json.dumps({"url": "https://c"}))
    with pytest.raises(state.ConfigError, match="incomplete"):
        state.load(tmp_path)
    (tmp_path / "agent.json").write_text("{not json")
    with pytest.raises(state.ConfigError, match="Cannot read"):
        state.load(tmp_path)
    assert state.load(tmp_path / "nothing") is None


def test_rotation_when_less_than_a_third_of_the_lifetime_is_left() -> None:
    now = datetime(2030, 1, 31, tzinfo=UTC)
    issued = now - timedelta(days=10)
    fresh = {"issued_at": issued.isoformat(), "expires_at": (issued + timedelta(days=30)).isoformat()}
    assert not state.needs_rotation(fresh, now)  # 20 of 30 days left
    older = {"issued_at": issued.isoformat(), "expires_at": (issued + timedelta(days=14)).isoformat()}
    assert state.needs_rotation(older, now)  # 4 of 14 days left
    assert state.needs_rotation({"expires_at": "2031-01-01T00:00:00Z"}, now)  # no issued_at: rotate to record one
