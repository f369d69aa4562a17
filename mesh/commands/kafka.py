"""`meshmart kafka [up|down|status]`: the local single-node Apache Kafka broker (KRaft)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mesh.commands.db import DEFAULT_RUN_DIR
from mesh.kafka import KafkaError, running_kafka, start_kafka, stop_kafka
from mesh.kafka_proc import Layout
from mesh.maven import MavenError

# What `kafka` can raise that is the environment's fault, not a bug: one line, no traceback.
_EXPECTED_ERRORS = (KafkaError, MavenError, OSError)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "kafka",
        help="start or stop the local Kafka broker",
        description="up (default): start a single-node Apache Kafka broker (KRaft) on 127.0.0.1, "
        "fetching its jars from Maven Central on first use. down: stop it. "
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
        # KafkaError carries the log tail on later lines; the first line says what failed.
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        hint = f" (log: {Layout.of(args.run_dir).log})" if len(lines) > 1 else ""
        print(f"meshmart kafka {args.action}: error: {lines[0]}{hint}", file=sys.stderr)
        return 1


def _up(args: argparse.Namespace) -> int:
    broker = start_kafka(args.run_dir)
    print(f"bootstrap servers: {broker.bootstrap_servers} (pid {broker.pid})")
    return 0


def _down(args: argparse.Namespace) -> int:
    if stop_kafka(args.run_dir):
        print("Kafka stopped")
    else:
        print(f"Kafka was not running ({Layout.of(args.run_dir).root})")
    return 0


def _status(args: argparse.Namespace) -> int:
    broker = running_kafka(args.run_dir)
    if broker is None:
        print(f"Kafka not running ({Layout.of(args.run_dir).root})")
        return 3  # like `meshmart db status`
    print(f"Kafka running: {broker.bootstrap_servers}, pid {broker.pid}")
    print(f"  controller 127.0.0.1:{broker.controller_port}, log {Layout.of(args.run_dir).log}")
    return 0
