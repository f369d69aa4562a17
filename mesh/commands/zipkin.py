"""`meshmart zipkin [up|down|status]`: the local Zipkin server (in-memory trace storage)."""

from __future__ import annotations

from pathlib import Path

from mesh.commands.component import Component
from mesh.zipkin import ZipkinError, running_zipkin, start_zipkin, stop_zipkin


def _home(run_dir: Path) -> Path:
    return run_dir.resolve() / "zipkin"


def _up(run_dir: Path) -> str:
    server = start_zipkin(run_dir)
    return f"Zipkin: {server.url} (pid {server.pid}), collector {server.collector_endpoint}"


def _status(run_dir: Path) -> str | None:
    server = running_zipkin(run_dir)
    if server is None:
        return None
    return (
        f"Zipkin running: {server.url}, pid {server.pid}\n"
        f"  collector {server.collector_endpoint}, log {_home(run_dir) / 'zipkin.log'}"
    )


ZIPKIN = Component(
    command="zipkin",
    title="Zipkin",
    help="start or stop the local Zipkin server",
    description="up (default): start a Zipkin server (in-memory storage) on 127.0.0.1, fetching "
    "its jar from Maven Central on first use. down: stop it (its traces are lost). "
    "status: is it running.",
    errors=(ZipkinError, OSError),
    home=_home,
    log=lambda run_dir: _home(run_dir) / "zipkin.log",
    up=_up,
    down=stop_zipkin,
    status=_status,
)
register = ZIPKIN.register
