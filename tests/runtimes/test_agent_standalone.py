"""The agent is a customer's program: it runs with Python, httpx and jmespath only. Importing all of it loads no
Django and no other module of the project, and no file of it imports one."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "runtimes" / "agent"
ALLOWED_THIRD_PARTY = {"httpx", "httpcore", "jmespath"}

IMPORT_ALL = """
import json, pkgutil, importlib, sys
import runtimes.agent
for module in pkgutil.walk_packages(runtimes.agent.__path__, "runtimes.agent."):
    if module.name != "runtimes.agent.__main__":
        importlib.import_module(module.name)
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_the_whole_agent_loads_no_django_and_no_project_module() -> None:
    env = {"PATH": "/usr/bin:/bin"}  # no DJANGO_SETTINGS_MODULE either
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stdout)
    assert "runtimes.agent.agent" in modules and "jmespath" in modules  # it did import everything
    assert not [m for m in modules if m == "django" or m.startswith("django.")]
    project = {"access", "config", "devtools", "loadtest", "orgs", "resources", "tests"}
    assert not [m for m in modules if m.split(".")[0] in project]
    assert not [m for m in modules if m.startswith("runtimes.") and not m.startswith("runtimes.agent")]


def test_no_agent_file_imports_django_or_the_project() -> None:
    offenders = []
    for path in sorted(AGENT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                if name.startswith("runtimes.agent") or top in ALLOWED_THIRD_PARTY or top in sys.stdlib_module_names:
                    continue
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_the_help_runs_without_django() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "runtimes.agent", "--help"],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0
    assert "--enrollment-token" in done.stdout
    assert "django" not in done.stderr  # -X importtime lists every module imported
