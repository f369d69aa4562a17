"""`meshmart`: the command line of the local mode."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mesh.commands import apply, canary, config, console, db, load, openapi, run, status
from mesh.commands.servers import KAFKA, ZIPKIN


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshmart", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in (run, status, console, load, apply, canary, db, KAFKA, ZIPKIN, config, openapi):
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
