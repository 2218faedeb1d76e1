"""Imports every module of a generated package and names each one that fails (scripts/api_client_check).

Usage: python import_all.py PACKAGE (the package on sys.path, e.g. with PYTHONPATH).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback


def main(name: str) -> int:
    package = importlib.import_module(name)
    names = [name] + [m.name for m in pkgutil.walk_packages(package.__path__, f"{name}.")]
    failed = 0
    for module in names:
        try:
            importlib.import_module(module)
        except Exception:  # every failure is reported, of any kind
            failed += 1
            print(f"FAILED {module}:\n{traceback.format_exc(limit=-1)}", file=sys.stderr)
    print(f"imported {len(names) - failed} of {len(names)} modules of {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
