"""The test IdP harness itself: a node that starts but never says it listens fails the test after START_TIMEOUT
(per attempt), instead of blocking on a read until pytest's own timeout (it once hung a CI run for 300 s)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.identity import idp


def test_a_silent_idp_fails_fast_and_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    (tmp_path / "server.mjs").write_text("setTimeout(() => {}, 100000)\n")
    monkeypatch.setattr(idp, "SERVER_DIR", tmp_path)
    monkeypatch.setattr(idp, "START_TIMEOUT", 1.0)
    provider = idp.IdP(clients=[], users=[], claims_in_id_token=False)
    began = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="no 'listening' line within 1 s"):
        provider.start()
    assert time.monotonic() - began < 10  # two attempts of a second each, and their stops
    assert provider.process is None  # stopped, nothing left running
