"""`meshmart <component> [up|down|status]` for one local JVM server (Kafka, Zipkin)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from mesh.infra.jvm import JvmFiles, RunningJvm
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
