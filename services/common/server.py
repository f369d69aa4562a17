"""Process entry point shared by `python -m services.<name>`: logging, tracing, serve, drain."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

import uvloop
from aiohttp import web

from services.common.identity import AccessLogger
from services.common.logs import configure_logging
from services.common.settings import ServiceSettings
from services.common.telemetry import configure_tracing

log = logging.getLogger(__name__)


def _listen_on(settings: ServiceSettings) -> dict[str, object]:
    """run_app's keywords: an inherited socket, else the unix socket, else host and port."""
    if settings.listen_fd is not None:
        return {"sock": socket.socket(fileno=settings.listen_fd)}
    if settings.unix_socket is not None:
        return {"path": str(settings.unix_socket)}
    return {"host": settings.host, "port": settings.port}


def _describe(settings: ServiceSettings) -> str:
    if settings.listen_fd is not None:
        return f"inherited fd {settings.listen_fd}"
    if settings.unix_socket is not None:
        return str(settings.unix_socket)
    return f"{settings.host}:{settings.port}"


def serve(settings: ServiceSettings, create_app: Callable[[], web.Application]) -> None:
    configure_logging(settings.service_name, settings.log_level)
    provider = configure_tracing(
        settings.service_name, settings.service_version, settings.zipkin_endpoint
    )
    try:
        log.info(
            "starting",
            extra={"listen": _describe(settings), "version": settings.service_version},
        )
        # On SIGTERM/SIGINT aiohttp stops accepting, lets in-flight requests finish for up to
        # shutdown_timeout, then runs cleanup contexts (pool close, consumers, relays).
        where = _listen_on(settings)
        loop = (
            uvloop.new_event_loop() if settings.event_loop == "uvloop" else asyncio.new_event_loop()
        )
        web.run_app(
            create_app(),
            loop=loop,
            **where,  # type: ignore[arg-type]
            shutdown_timeout=settings.shutdown_timeout_seconds,
            print=None,
            access_log_class=AccessLogger,
            access_log=logging.getLogger("aiohttp.access") if settings.access_log else None,
        )
    finally:
        provider.shutdown()  # flushes spans still in the batch processor
        log.info("stopped")
