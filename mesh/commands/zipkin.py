"""`meshmart zipkin [up|down|status]`: the local Zipkin server (in-memory trace storage)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mesh.commands.db import DEFAULT_RUN_DIR
from mesh.zipkin import ZipkinError, running_zipkin, start_zipkin, stop_zipkin

# What `zipkin` can raise that is the environment's fault, not a bug: one line, no traceback.
_EXPECTED_ERRORS = (ZipkinError, OSError)


def _zipkin_dir(run_dir: Path) -> Path:
    return run_dir.resolve() / "zipkin"


def _log(run_dir: Path) -> Path:
    return _zipkin_dir(run_dir) / "zipkin.log"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "zipkin",
        help="start or stop the local Zipkin server",
        description="up (default): start a Zipkin server (in-memory storage) on 127.0.0.1, "
        "fetching its jar from Maven Central on first use. down: stop it (its traces are lost). "
        "status: is it running.",
    )
    parser.add_argument("action", nargs="?", choices=("up", "down", "status"), default="up")
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    handlers = {"up": _up, "down": _down, "status": _status}
    try:
        return handlers[args.action](args)
    except _EXPECTED_ERRORS as exc:
        # ZipkinError carries the log tail on later lines; the first line says what failed.
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        hint = f" (log: {_log(args.run_dir)})" if len(lines) > 1 else ""
        print(f"meshmart zipkin {args.action}: error: {lines[0]}{hint}", file=sys.stderr)
        return 1


def _up(args: argparse.Namespace) -> int:
    server = start_zipkin(args.run_dir)
    print(f"Zipkin: {server.url} (pid {server.pid}), collector {server.collector_endpoint}")
    return 0


def _down(args: argparse.Namespace) -> int:
    if stop_zipkin(args.run_dir):
        print("Zipkin stopped")
    else:
        print(f"Zipkin was not running ({_zipkin_dir(args.run_dir)})")
    return 0


def _status(args: argparse.Namespace) -> int:
    server = running_zipkin(args.run_dir)
    if server is None:
        print(f"Zipkin not running ({_zipkin_dir(args.run_dir)})")
        return 3  # like `meshmart db status`
    print(f"Zipkin running: {server.url}, pid {server.pid}")
    print(f"  collector {server.collector_endpoint}, log {_log(args.run_dir)}")
    return 0
