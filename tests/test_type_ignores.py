"""scripts/type_ignores, the ratchet on '# type: ignore' comments: it counts comments only, in the packages mypy
checks, fails on a rise, and its --update never raises a recorded number."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "type_ignores"


@pytest.fixture
def ratchet(tmp_path: Path) -> Any:
    """The script's functions, pointed at a scratch repository in ``tmp_path``."""
    namespace = runpy.run_path(str(SCRIPT), run_name="type_ignores")
    namespace["main"].__globals__.update(ROOT=tmp_path, RECORD=tmp_path / "scripts" / "type_ignores.json")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "tests").mkdir()  # not type-checked: its comments do not count
    (tmp_path / "tests" / "test_x.py").write_text("x = 1  # type: ignore\n")
    (tmp_path / "pyproject.toml").write_text('[tool.mypy]\nfiles = ["pkg", "new"]\n')
    return namespace


def write(root: Path, text: str) -> None:
    (root / "pkg" / "mod.py").write_text(text)


def test_only_comments_count_and_a_rise_fails(ratchet: Any, tmp_path: Path, capsys: Any) -> None:
    write(tmp_path, 'x = 1  # type: ignore[misc]\ny = "# type: ignore in a string"\n')
    (tmp_path / "scripts" / "type_ignores.json").write_text(json.dumps({"pkg": 1}))
    assert ratchet["count"]() == {"pkg": 1}
    assert ratchet["main"]([]) == 0
    write(tmp_path, "x = 1  # type: ignore\ny = 2  # type:ignore[attr-defined]\n")
    assert ratchet["main"]([]) == 1
    assert "FAIL pkg: 2" in capsys.readouterr().out


def test_update_lowers_the_record_and_never_raises_it(ratchet: Any, tmp_path: Path) -> None:
    record = tmp_path / "scripts" / "type_ignores.json"
    record.write_text(json.dumps({"pkg": 3}))
    write(tmp_path, "x = 1  # type: ignore\n")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "mod.py").write_text("y = 2  # type: ignore\n")
    assert ratchet["main"](["--update"]) == 0
    assert json.loads(record.read_text()) == {"pkg": 1}  # lowered; the new package is allowed none
    assert ratchet["main"]([]) == 1


def test_the_repository_is_within_its_record() -> None:
    namespace = runpy.run_path(str(SCRIPT), run_name="type_ignores")
    assert namespace["main"]([]) == 0
