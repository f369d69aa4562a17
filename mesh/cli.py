"""`meshmart`: the command line of the local mode."""

from __future__ import annotations

import argparse
import os
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
    try:
        code: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`meshmart status | head`): stop quietly as shell tools do. Python
        # flushes stdout again at exit, so it is pointed at /dev/null first (the recipe of the
        # Python docs, "Note on SIGPIPE"). A command's own finally blocks have run by now.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
