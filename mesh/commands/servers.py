"""`meshmart kafka|zipkin [up|down|status]`: the local JVM servers, started on their own.

The same servers `meshmart run` starts; handy to keep one running across runs or tests."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from mesh.infra.jvm import JvmFiles, RunningJvm
from mesh.infra.kafka import (
    KafkaBroker,
    KafkaError,
    KafkaFiles,
    running_kafka,
    start_kafka,
    stop_kafka,
)
from mesh.infra.maven import MavenError
from mesh.infra.zipkin import (
    ZipkinError,
    ZipkinServer,
    running_zipkin,
    start_zipkin,
    stop_zipkin,
    zipkin_files,
)
from mesh.paths import DEFAULT_RUN_DIR

_S = TypeVar("_S", bound=RunningJvm)


@dataclass(frozen=True)
class Component(Generic[_S]):
    command: str
    title: str  # "Kafka"
    help: str
    description: str
    # What starting it can raise that is the environment's fault, not a bug: one line, no
    # traceback. These errors carry the log tail on later lines; the first says what failed.
    errors: tuple[type[BaseException], ...]
    files: Callable[[Path], JvmFiles]  # its folder in a run dir
    start: Callable[[Path], _S]  # starts it, or finds it running
    stop: Callable[[Path], bool]  # False: it was not running
    running: Callable[[Path], _S | None]
    describe: Callable[[_S], str]  # where clients reach it

    def register(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        parser = subparsers.add_parser(self.command, help=self.help, description=self.description)
        parser.add_argument("action", nargs="?", choices=("up", "down", "status"), default="up")
        parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
        parser.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        run_dir: Path = args.run_dir
        try:
            if args.action == "up":
                print(self._line(self.start(run_dir), run_dir))
            elif args.action == "down":
                stopped = self.stop(run_dir)
                print(f"{self.title} {'stopped' if stopped else 'was not running'}")
            elif (server := self.running(run_dir)) is not None:
                print(self._line(server, run_dir))
            else:
                print(f"{self.title} not running ({self.files(run_dir).root})")
                return 3  # like `pg_ctl status` and `meshmart db status`
        except self.errors as exc:
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            hint = f" (log: {self.files(run_dir).log})" if len(lines) > 1 else ""
            print(
                f"meshmart {self.command} {args.action}: error: {lines[0]}{hint}", file=sys.stderr
            )
            return 1
        return 0

    def _line(self, server: _S, run_dir: Path) -> str:
        return (
            f"{self.title} running: {self.describe(server)}, pid {server.pid}\n"
            f"  log {self.files(run_dir).log}"
        )


def _broker(broker: KafkaBroker) -> str:
    return f"bootstrap servers {broker.bootstrap_servers}, controller {broker.controller_port}"


def _collector(server: ZipkinServer) -> str:
    return f"{server.url}, collector {server.collector_endpoint}"


KAFKA = Component(
    command="kafka",
    title="Kafka",
    help="start or stop the local Kafka broker",
    description="up (default): start a single-node Apache Kafka broker (KRaft) on 127.0.0.1, "
    "fetching its jars from Maven Central on first use. down: stop it. status: is it running.",
    errors=(KafkaError, MavenError, OSError),
    files=KafkaFiles.of,
    start=start_kafka,
    stop=stop_kafka,
    running=running_kafka,
    describe=_broker,
)
ZIPKIN = Component(
    command="zipkin",
    title="Zipkin",
    help="start or stop the local Zipkin server",
    description="up (default): start a Zipkin server (in-memory storage) on 127.0.0.1, fetching "
    "its jar from Maven Central on first use. down: stop it (its traces are lost). "
    "status: is it running.",
    errors=(ZipkinError, OSError),
    files=zipkin_files,
    start=start_zipkin,
    stop=stop_zipkin,
    running=running_zipkin,
    describe=_collector,
)
