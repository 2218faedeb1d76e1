"""Command line of the agent: ``python -m runtimes.agent --url URL --state-dir DIR [--enrollment-token TOKEN] …``

The first start enrolls with the one-time enrollment token (also read from ``CANOPY_ENROLLMENT_TOKEN``, which keeps
it out of the process list) and saves the agent's identity and token in ``DIR/agent.json``; later starts reuse it.
Exit codes: 0 stopped, 2 a start-up problem (URL, state, enrollment refused), 3 token revoked or expired."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from runtimes.agent import VERSION, state
from runtimes.agent import client as api
from runtimes.agent.agent import EXIT_CONFIG, Agent, Config

logger = logging.getLogger("canopy.agent")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m runtimes.agent", description="The Canopy runtime agent.")
    parser.add_argument("--url", required=True, help="Canopy's address (https://…; http:// only to loopback)")
    parser.add_argument("--state-dir", required=True, type=Path, help="where the agent keeps agent.json")
    parser.add_argument(
        "--enrollment-token",
        default=os.environ.get("CANOPY_ENROLLMENT_TOKEN", ""),
        help="one-time token to enroll with (first start only; or set CANOPY_ENROLLMENT_TOKEN)",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="runs executed at once (1..20, default 4)")
    parser.add_argument("--secrets-dir", help="where <credential name>.json files hold secrets kept on the runtime")
    parser.add_argument("--log-dir", type=Path, help="where sovereign runs' logs are kept (default STATE_DIR/logs)")
    parser.add_argument("--name", default="", help="this agent's name in Canopy (default: the host name)")
    parser.add_argument("--grace-s", type=float, default=30.0, help="on SIGTERM: how long runs may finish (30)")
    parser.add_argument("--wait-s", type=int, default=25, help="long-poll wait of a claim, 1..30 s (25)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.concurrency <= 20:
        parser.error("--concurrency must be from 1 to 20")
    if not 1 <= args.wait_s <= 30:
        parser.error("--wait-s must be from 1 to 30")
    if args.grace_s < 0:
        parser.error("--grace-s must be 0 or more")
    return args


def enroll(url: str, state_dir: Path, token: str, name: str, stop: threading.Event) -> dict[str, Any]:
    """Enroll with ``token`` and save the state. Raises :class:`state.ConfigError` with Canopy's message when the
    token is refused (expired, used or unknown)."""
    instance = {"id": str(uuid.uuid4()), "hostname": name, "version": VERSION}
    client = api.CanopyClient(url, user_agent=f"canopy-agent/{VERSION}")
    try:
        answer = api.retrying(lambda: client.enroll(token, instance), stop=stop, what="enroll", log=logger.warning)
    except api.ApiError as error:
        raise state.ConfigError(f"enrollment refused: {error.detail}") from error
    except api.Unreachable as error:
        raise state.ConfigError(f"enrollment failed: {error}") from error
    finally:
        client.close()
    saved = {
        "url": url,
        "runtime": answer["runtime"],
        "instance": str(answer.get("instance") or instance["id"]),
        "token": answer["token"],
        "expires_at": answer["expires_at"],
        "issued_at": datetime.now(UTC).isoformat(),
        "heartbeat_s": answer.get("heartbeat_s"),
        "lease_s": answer.get("lease_s"),
    }
    path = state.save(state_dir, saved)
    logger.info(
        "enrolled as instance %s of runtime %s (%s); state saved to %s",
        saved["instance"], answer["runtime"].get("name"), answer["runtime"].get("kind"), path,
    )  # fmt: skip
    return saved


def load_or_enroll(args: argparse.Namespace, url: str, name: str, stop: threading.Event) -> dict[str, Any]:
    saved = state.load(args.state_dir)
    if saved is not None:
        if state.normalize_url(saved["url"]) != url:
            raise state.ConfigError(
                f"{state.state_path(args.state_dir)} belongs to {saved['url']}, not {url}: its token is never sent "
                "elsewhere. Use that --url, or another --state-dir to enroll with this Canopy."
            )
        if args.enrollment_token:
            logger.warning(
                "an enrollment token was given but %s exists (instance %s of runtime %s): the token is ignored "
                "and stays unused; delete that file to enroll again",
                state.state_path(args.state_dir), saved["instance"], (saved.get("runtime") or {}).get("name"),
            )  # fmt: skip
        return saved
    if not args.enrollment_token:
        raise state.ConfigError(
            f"not enrolled yet ({state.state_path(args.state_dir)} does not exist): start once with "
            "--enrollment-token (or CANOPY_ENROLLMENT_TOKEN), shown when the runtime was registered"
        )
    return enroll(url, args.state_dir, args.enrollment_token, name, stop)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    name = args.name or socket.gethostname()
    stop = threading.Event()
    agent: Agent | None = None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            logger.warning("second signal: exiting now")
            os._exit(128 + signum)
        stop.set()
        if agent is not None:
            agent.request_stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        url = state.check_url(args.url)
        saved = load_or_enroll(args, url, name, stop)
    except state.ConfigError as error:
        logger.error("%s", error)
        return EXIT_CONFIG
    if stop.is_set():
        return 0
    config = Config(
        url=url,
        state_dir=args.state_dir,
        concurrency=args.concurrency,
        secrets_dir=args.secrets_dir,
        log_dir=args.log_dir,
        name=name,
        grace_s=args.grace_s,
        wait_s=args.wait_s,
    )
    agent = Agent(config, saved)
    if stop.is_set():  # a signal before the agent existed
        agent.request_stop("signal")
    return agent.run()
