"""`meshmart <component> [up|down|status]` for one local infrastructure server (Kafka, Zipkin)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mesh.paths import DEFAULT_RUN_DIR


@dataclass(frozen=True)
class Component:
    command: str
    title: str  # "Kafka"
    help: str
    description: str
    # What starting it can raise that is the environment's fault, not a bug: one line, no
    # traceback. These errors carry the log tail on later lines; the first says what failed.
    errors: tuple[type[BaseException], ...]
    home: Callable[[Path], Path]  # its folder in a run dir
    log: Callable[[Path], Path]
    up: Callable[[Path], str]  # starts it (or finds it running); returns what to print
    down: Callable[[Path], bool]  # False: it was not running
    status: Callable[[Path], str | None]  # None: not running

    def register(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        parser = subparsers.add_parser(self.command, help=self.help, description=self.description)
        parser.add_argument("action", nargs="?", choices=("up", "down", "status"), default="up")
        parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
        parser.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        run_dir: Path = args.run_dir
        try:
            if args.action == "up":
                print(self.up(run_dir))
            elif args.action == "down":
                stopped = self.down(run_dir)
                print(f"{self.title} {'stopped' if stopped else 'was not running'}")
            else:
                described = self.status(run_dir)
                if described is None:
                    print(f"{self.title} not running ({self.home(run_dir)})")
                    return 3  # like `pg_ctl status` and `meshmart db status`
                print(described)
        except self.errors as exc:
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            hint = f" (log: {self.log(run_dir)})" if len(lines) > 1 else ""
            print(
                f"meshmart {self.command} {args.action}: error: {lines[0]}{hint}", file=sys.stderr
            )
            return 1
        return 0
