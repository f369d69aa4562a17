"""The part of every service's `create_app` that is the same everywhere."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
from aiohttp import web

from services.common.db import database_context
from services.common.errors import problem_middleware
from services.common.health import add_health_routes
from services.common.migrations import MigrationModule
from services.common.operations import Operation, add_routes, openapi_document
from services.common.paths import canonical_path_middleware
from services.common.settings import ServiceSettings
from services.common.telemetry import client_trace_configs, server_middlewares
from services.common.testfaults import add_test_endpoints

SETTINGS = web.AppKey("settings", ServiceSettings)
HTTP_CLIENT = web.AppKey("http_client", aiohttp.ClientSession)


def base_app(
    settings: ServiceSettings,
    operations: tuple[Operation, ...],
    migrations: Sequence[MigrationModule],
) -> web.Application:
    """An app with problem+json errors, tracing, health, OpenAPI, its routes and its database."""
    # Server spans (behind the sampling gate) once the process has set up tracing.
    app = web.Application(
        middlewares=[
            *server_middlewares(settings.trace_sampling_percent),
            problem_middleware,
            canonical_path_middleware,
        ]
    )
    app[SETTINGS] = settings
    add_health_routes(app)
    add_routes(app, operations, settings.jwt_issuer)
    document = openapi_document(settings.service_name, "1.0.0", operations)

    async def serve_openapi(request: web.Request) -> web.Response:
        return web.json_response(document, dumps=_pretty)

    app.router.add_get("/openapi.json", serve_openapi)
    if settings.test_endpoints:
        add_test_endpoints(app)
    app.cleanup_ctx.append(database_context(settings, migrations))
    return app


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2)


async def http_client_context(app: web.Application) -> AsyncIterator[None]:
    """One client session per app for calls to peers (through the sidecar in mesh mode).

    No retry, breaker or discovery here: the mesh owns them. Timeouts are per call.
    """
    async with aiohttp.ClientSession(trace_configs=client_trace_configs()) as session:
        app[HTTP_CLIENT] = session
        yield
