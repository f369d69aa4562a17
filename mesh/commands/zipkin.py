"""`meshmart zipkin [up|down|status]`: the local Zipkin server (in-memory trace storage)."""

from __future__ import annotations

from mesh.commands.component import Component
from mesh.infra.zipkin import (
    ZipkinError,
    ZipkinServer,
    running_zipkin,
    start_zipkin,
    stop_zipkin,
    zipkin_files,
)


def _describe(server: ZipkinServer) -> str:
    return f"{server.url}, collector {server.collector_endpoint}"


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
    describe=_describe,
)
register = ZIPKIN.register
