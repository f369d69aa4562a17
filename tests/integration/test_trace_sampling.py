"""An unsampled request costs no tracing work: no span is started, instrumentation is off.

Runs with tracing set up as a service process does (the autouse `spans` fixture), against
the real catalog app and its PostgreSQL.
"""

from __future__ import annotations

import uuid

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common.telemetry import server_middlewares
from tests.integration.conftest import Client


def _in_trace(spans: InMemorySpanExporter, trace_id: str) -> list[str]:
    return [
        s.name for s in spans.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id
    ]


def _b3(sampled: str) -> tuple[str, dict[str, str]]:
    trace_id = uuid.uuid4().hex
    return trace_id, {
        "x-b3-traceid": trace_id,
        "x-b3-spanid": uuid.uuid4().hex[:16],
        "x-b3-sampled": sampled,
    }


async def test_a_sampled_request_has_server_and_database_spans(
    catalog: Client, spans: InMemorySpanExporter
) -> None:
    trace_id, headers = _b3("1")
    assert (await catalog.get("/catalogs", headers=headers)).status == 200
    names = _in_trace(spans, trace_id)
    assert "GET /catalogs" in names
    assert any(name.startswith("SELECT") for name in names), names


async def test_an_unsampled_request_has_none(catalog: Client, spans: InMemorySpanExporter) -> None:
    trace_id, headers = _b3("0")
    before = len(spans.get_finished_spans())
    assert (await catalog.get("/catalogs", headers=headers)).status == 200
    assert _in_trace(spans, trace_id) == []
    assert len(spans.get_finished_spans()) == before


async def test_the_gate_turns_instrumentation_off_for_unsampled_requests() -> None:
    """What the handler runs under: instrumentation suppressed exactly when not sampled, so the
    asyncpg and aiohttp-client instrumentations skip their work too."""

    async def report(request: web.Request) -> web.Response:
        return web.json_response({"instrumented": is_http_instrumentation_enabled()})

    app = web.Application(middlewares=server_middlewares(0.0))
    app.router.add_get("/", report)
    async with TestClient(TestServer(app)) as client:
        for sampled, expected in (("1", True), ("0", False)):
            resp = await client.get("/", headers=_b3(sampled)[1])
            assert (await resp.json()) == {"instrumented": expected}
        # No decision from the caller: the local rate (0 % here) decides.
        assert (await (await client.get("/")).json()) == {"instrumented": False}
