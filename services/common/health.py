"""Liveness and readiness: live while the process serves, ready only when dependencies answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

ReadinessCheck = Callable[[], Awaitable[None]]  # raises (or times out) when not ready
READINESS_CHECKS = web.AppKey("readiness_checks", dict[str, ReadinessCheck])
CHECK_TIMEOUT_SECONDS = 1.0


async def live(request: web.Request) -> web.Response:
    return web.json_response({"status": "UP"})


async def ready(request: web.Request) -> web.Response:
    checks = request.app[READINESS_CHECKS]
    results = await asyncio.gather(*(_run(check) for check in checks.values()))
    report = dict(zip(checks, results, strict=True))
    healthy = all(result == "UP" for result in results)
    return web.json_response(
        {"status": "UP" if healthy else "DOWN", "checks": report}, status=200 if healthy else 503
    )


async def _run(check: ReadinessCheck) -> str:
    # Only the outcome is reported: error texts can carry hosts or credentials.
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except Exception:
        return "DOWN"
    return "UP"


def add_health_routes(app: web.Application) -> None:
    app.setdefault(READINESS_CHECKS, {})
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
