"""config.loops.every: the loop of the commands beside the web processes (runtimes_reaper, refresh_rollups)."""

from __future__ import annotations

import os
import signal
from io import StringIO

import pytest
from django.core.management.base import OutputWrapper

from config import loops


@pytest.mark.django_db  # each pass checks the connection first
def test_a_failed_pass_is_said_and_tried_again_until_sigterm() -> None:
    out, err = StringIO(), StringIO()
    passes: list[int] = []

    def one_pass() -> int:
        passes.append(len(passes))
        if len(passes) == 1:
            raise ConnectionError("the database restarted")
        if len(passes) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # stops the loop after this pass, as a supervisor would
        return len(passes)

    before = signal.getsignal(signal.SIGTERM)
    loops.every(
        0.01, one_pass, name="Tester", doing="testing", stdout=OutputWrapper(out), stderr=OutputWrapper(err),
        worth_saying=lambda n: f"pass {n}" if n == 2 else None,
    )  # fmt: skip
    assert passes == [0, 1, 2]
    assert err.getvalue() == "Tester: pass failed: ConnectionError: the database restarted\n"
    assert out.getvalue().splitlines() == [
        "Tester: testing every 0.01 s (Ctrl-C or SIGTERM stops).",
        "Tester: pass 2.",
        "Tester: stopped.",
    ]
    assert signal.getsignal(signal.SIGTERM) is before  # the handler given back


def test_an_interval_that_is_not_positive_is_refused() -> None:
    err = StringIO()
    with pytest.raises(SystemExit) as stopped:
        loops.every(0, lambda: None, name="T", doing="t", stdout=OutputWrapper(StringIO()),
                    stderr=OutputWrapper(err), worth_saying=lambda r: None)  # fmt: skip
    assert stopped.value.code == 2 and "--interval must be more than 0 seconds." in err.getvalue()
