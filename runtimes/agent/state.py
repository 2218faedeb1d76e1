"""The agent's state directory: ``agent.json`` holds who it is (runtime, instance) and its bearer token.

Written atomically (a temporary file in the same directory, fsync, rename) with mode 600, so a crash mid-write or a
rotation never leaves a half-written token; the directory itself is made 700."""

from __future__ import annotations

import ipaddress
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

STATE_FILE = "agent.json"


class ConfigError(Exception):
    """A start-up problem the operator must fix (bad URL, no enrollment, unreadable state)."""


def normalize_url(url: str) -> str:
    return url.strip().rstrip("/")


def check_url(url: str) -> str:
    """``url`` normalized; plain http:// only to a loopback host (the token would cross the network in clear)."""
    url = normalize_url(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--url must be an https:// address of Canopy, not “{url}”.")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"Refusing plain http:// to {parts.hostname}: the agent's token would travel unencrypted. "
            "Use https:// (http:// is accepted only for a loopback address such as 127.0.0.1)."
        )
    return url


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def state_path(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / STATE_FILE


def load(state_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    path = state_path(state_dir)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"Cannot read {path}: {error}") from error
    missing = {"url", "runtime", "instance", "token", "expires_at"} - set(data) if isinstance(data, dict) else {"all"}
    if missing:
        raise ConfigError(f"{path} is incomplete (missing {', '.join(sorted(missing))}); remove it to enroll again.")
    return data


def save(state_dir: str | os.PathLike[str], data: dict[str, Any]) -> Path:
    """Write ``data`` to DIR/agent.json atomically, readable by the owner only."""
    directory = Path(state_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = directory / STATE_FILE
    descriptor, temporary = tempfile.mkstemp(prefix=".agent-", suffix=".json", dir=directory)  # mode 600
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_descriptor)
        finally:
            os.close(dir_descriptor)
    except OSError:
        pass
    return target


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def needs_rotation(data: dict[str, Any], now: datetime | None = None) -> bool:
    """Less than a third of the token's lifetime left (lifetime: from ``issued_at`` to ``expires_at``). A state
    without ``issued_at`` (written by hand) rotates at once, which records one."""
    now = now or datetime.now(UTC)
    expires = parse_time(data["expires_at"])
    if not data.get("issued_at"):
        return True
    issued = parse_time(data["issued_at"])
    return expires - now < (expires - issued) / 3
