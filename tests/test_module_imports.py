"""Dependencies point one way (issue #10 §4): every module imports on its own in a fresh interpreter, no module hides
an import of the project inside a function to dodge a cycle, and production never loads the development tools."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The importable packages of the project: the apps, the shared plumbing, the dev tools and the load test.
PACKAGES = ("access", "config", "devtools", "loadtest", "orgs", "resources", "runtimes")
# The application code held to the no-import-in-a-function rule. (loadtest/ is a command-line package that parses
# its arguments and configures Django in main() before it may import a model; tests/ are not imported by the app.)
APP_PACKAGES = ("access", "config", "devtools", "orgs", "resources", "runtimes")

# Entry points that are no Django modules and must be imported first in their interpreter: each is imported alone,
# without Django configured. (locust's gevent patches ssl at import, which fails once Django has loaded ssl.)
STANDALONE = {"loadtest.locustfile"}

# Function-level imports of project modules that remain, in files owned by others at the time of writing: each is a
# cycle dodge or a habit to remove by its owner (issue #10 §4). (path, function, imported module): owner.
ALLOWED_FUNCTION_IMPORTS: dict[tuple[str, str, str], str] = {}

# Runs in a fresh interpreter: configures Django once (what `manage.py` and every entry point do), then imports each
# module in a forked child of that state, so each import starts exactly where `python -c "import django;
# django.setup(); import X"` would, without paying for a whole interpreter per module.
IMPORT_EACH = """
import importlib, json, os, sys, traceback
import django
django.setup()
failed = {}
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        failed[name] = status
print(json.dumps(failed))
"""

PRODUCTION = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.core.management import get_commands
from django.urls import get_resolver
get_resolver().url_patterns  # every view module the URLs reach
print(json.dumps({
    "installed": "devtools" in settings.INSTALLED_APPS,
    "imported": sorted(m for m in sys.modules if m == "devtools" or m.startswith("devtools.")),
    "commands": sorted(set(get_commands()) & {"benchmark", "seed_scale"}),
}))
"""


def project_modules(packages: tuple[str, ...]) -> list[str]:
    names = []
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            if "." in relative.name:  # config/gunicorn.conf.py: a gunicorn config file, not a module
                continue
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            names.append(".".join(parts))
    return names


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_every_project_module_imports_on_its_own_in_a_fresh_interpreter(tmp_path: Path) -> None:
    modules = project_modules(PACKAGES)
    assert {"access.policy", "config.kinds", "devtools.bench", "resources.kinds", "orgs.kinds"} <= set(modules)
    run = _run(IMPORT_EACH, *[m for m in modules if m not in STANDALONE])
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {}, run.stderr[-5000:]
    for module in sorted(STANDALONE):
        alone = _run(f"import {module}", env={"LOADTEST_OUT": str(tmp_path)})  # where the locustfile journals
        assert alone.returncode == 0, alone.stderr[-3000:]


def _function_imports(path: Path) -> list[tuple[str, str, int]]:
    """(function, imported project module, line) for every import of a project module inside a function, except in
    an AppConfig.ready: Django's registration hook, where a module that needs the models has to be imported (they
    are not loaded yet when apps.py is)."""
    found = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                exempt = path.name == "apps.py" and child.name == "ready"
                visit(child, "" if exempt else child.name)
                continue
            if function and isinstance(child, ast.Import | ast.ImportFrom):
                names = [child.module or ""] if isinstance(child, ast.ImportFrom) else [a.name for a in child.names]
                level = getattr(child, "level", 0)
                found.extend(
                    (function, name, child.lineno) for name in names if level or name.split(".")[0] in PACKAGES
                )
            visit(child, function)

    visit(ast.parse(path.read_text()), "")
    return found


def test_no_project_module_is_imported_inside_a_function_beyond_the_listed_ones() -> None:
    found: dict[tuple[str, str, str], int] = {}
    for package in APP_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            relative = str(path.relative_to(ROOT))
            for function, module, line in _function_imports(path):
                found[(relative, function, module)] = line
    unexpected = {f"{path}:{line} {function}() imports {module}" for (path, function, module), line in found.items()
                  if (path, function, module) not in ALLOWED_FUNCTION_IMPORTS}  # fmt: skip
    assert unexpected == set()
    fixed = set(ALLOWED_FUNCTION_IMPORTS) - set(found)
    assert fixed == set(), "fixed: remove these from ALLOWED_FUNCTION_IMPORTS"


def test_the_ast_check_sees_an_import_in_a_function_and_spares_appconfig_ready(tmp_path: Path) -> None:
    module = tmp_path / "views.py"
    module.write_text("def page():\n    from orgs.models import Organization\n    import json\n")
    assert _function_imports(module) == [("page", "orgs.models", 2)]
    apps = tmp_path / "apps.py"
    apps.write_text("class C:\n    def ready(self):\n        from orgs import checks\n")
    assert _function_imports(apps) == []


def test_production_settings_neither_install_nor_import_the_development_tools() -> None:
    production = {"DEBUG": "False", "DEVTOOLS": "False"}
    run = _run(PRODUCTION, env=production)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"installed": False, "imported": [], "commands": []}
    development = _run(PRODUCTION, env={"DEBUG": "False", "DEVTOOLS": "True"})
    assert json.loads(development.stdout.strip().splitlines()[-1])["commands"] == ["benchmark", "seed_scale"]
