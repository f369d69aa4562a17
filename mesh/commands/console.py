"""`meshmart console`: the mesh console (local mode's Kiali) on http://127.0.0.1:PORT.

hypercorn serves the Starlette app of mesh/console on loopback only; `meshmart run` starts it
as one of its children and prints the URL. Ctrl-C (or SIGTERM) stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

from mesh.console.app import create_app
from mesh.paths import CACHE_DIR, DEFAULT_RUN_DIR
from mesh.runtime.ports import port_is_free

DEFAULT_PORT = 20001  # Kiali's
NODE_MODULES = CACHE_DIR / "console-web" / "node_modules"  # `make setup` runs npm ci there


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {text!r}")
    return int(text)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "console", help="the mesh console (graph, config, traces)", description=__doc__
    )
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"loopback port ({DEFAULT_PORT}, Kiali's)"
    )
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    parser.set_defaults(func=run)


def console_command(port: int, run_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mesh.cli",
        "console",
        "--port",
        str(port),
        "--run-dir",
        str(run_dir),
    ]


async def _serve(run_dir: Path, port: int) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.graceful_timeout = 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"meshmart console: http://127.0.0.1:{port}", flush=True)
    app: Any = create_app(run_dir, NODE_MODULES)  # an ASGI app; hypercorn's types are narrower
    await serve(app, config, shutdown_trigger=stop.wait)


def run(args: argparse.Namespace) -> int:
    if not port_is_free(args.port):
        print(
            f"meshmart console: error: 127.0.0.1:{args.port} is in use (try --port)",
            file=sys.stderr,
        )
        return 1
    asyncio.run(_serve(args.run_dir, args.port))
    return 0
