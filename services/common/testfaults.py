"""A fault switch for resilience tests: make one replica fail on demand.

Only mounted when `MESHMART_TEST_ENDPOINTS=true` (refused in production), and only reachable
through the app's own socket: the fault-injection suite flips it on one replica to show the
mesh's outlier detection ejecting that replica. The mesh's own fault injection (VirtualService
`fault`) covers everything else; this exists because a real broken replica is different from
an injected abort (it is the upstream that fails, so outlier detection sees it).
"""

from __future__ import annotations

import random

from aiohttp import web
from pydantic import Field

from services.common.errors import Handler, problem_response
from services.common.models import ApiModel
from services.common.requests import read_body

FAIL_PERCENT = web.AppKey("test_fail_percent", list[float])
_EXEMPT = ("/health/", "/test/", "/openapi.json")


class FaultSwitch(ApiModel):
    fail_percent: float = Field(ge=0, le=100)


async def set_fault(request: web.Request) -> web.Response:
    body = await read_body(request, FaultSwitch)
    request.app[FAIL_PERCENT][0] = body.fail_percent
    return web.json_response({"failPercent": body.fail_percent})


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    percent = request.app[FAIL_PERCENT][0]
    # Not a secret or a security decision: a test switch's coin flip.
    if percent and not request.path.startswith(_EXEMPT) and random.uniform(0, 100) < percent:  # noqa: S311
        return problem_response(500, "injected by the test fault switch")
    return await handler(request)


def add_test_endpoints(app: web.Application) -> None:
    app[FAIL_PERCENT] = [0.0]
    app.middlewares.append(fault_middleware)
    app.router.add_post("/test/fault", set_fault)
