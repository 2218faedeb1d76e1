"""Schemathesis hooks for scripts/fuzz_api: real object ids in path parameters and in the fields that name objects,
so that the fuzzing goes past 404 and "not found" field errors.

A generated value is replaced by one of the prepared ids (scripts/fuzz/prepare.py) for two cases in three, chosen
from a checksum of the generated value: the same generated case always gets the same id (the run stays
reproducible), and one case in three keeps what was generated (the not-found paths are fuzzed too). Operations
that delete their object get the disposable objects only: never the fuzzer's own token or an object kept for the
other operations.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

import schemathesis

WORLD = json.loads(Path(os.environ["CANOPY_FUZZ_WORLD"]).read_text())
PROTECTED = {WORLD["own_token"]} | {i for ids in WORLD["ids"].values() for i in ids.get("keep", [])}


def _pick(generated: Any, choices: list[str]) -> Any:
    if not choices:
        return generated
    digest = zlib.crc32(repr(generated).encode("utf-8", "surrogatepass"))
    if digest % 3 == 0:
        return generated
    return choices[(digest // 3) % len(choices)]


def _split(path: str) -> tuple[str, str]:
    """("orgs", "move") for /api/v1/orgs/{id}/move; ("orgs", "") for /api/v1/orgs/{id}."""
    parts = path.split("/")  # "", "api", "v1", resource, "{id}", action…
    return parts[3], parts[5] if len(parts) > 5 else ""


def _deletes_its_object(method: str, path: str) -> bool:
    resource, action = _split(path)
    return (method == "DELETE" and not action) or resource in ("hidden", "auth")


def _path_choices(method: str, path: str, name: str) -> list[str]:
    if name in ("share_id", "user_id", "key"):
        return WORLD[name]
    resource, action = _split(path)
    ids = WORLD["ids"].get(resource, {})
    if resource == "orgs" and action in ("restore", "move"):
        return ids[action]
    return ids.get("delete" if _deletes_its_object(method, path) else "keep", [])


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    operation = context.operation
    method, path = operation.method.upper(), operation.path
    if case.path_parameters:
        mapped = {}
        for name, value in case.path_parameters.items():
            choices = _path_choices(method, path, name)
            value = _pick(value, choices)
            if value in PROTECTED and choices and _deletes_its_object(method, path):
                value = choices[0]
            mapped[name] = value
        case.path_parameters = mapped
    for container in (case.query, case.body):
        if isinstance(container, dict):
            for name, choices in WORLD["fields"].items():
                if name in container:
                    container[name] = _pick(container[name], choices)
    return case
