"""OpenTelemetry for one service process: B3 + W3C propagation, Zipkin export when configured.

Istio's sidecars speak B3, apps increasingly W3C traceparent; extracting and injecting both
keeps one trace across Envoy and app spans. The provider is process-wide, so it is set up
by the process entry point, never by `create_app` (tests build many apps in one process).

Sampling is decided once, where the trace starts: in the mesh that is the ingress (or the
first sidecar), which sends its decision in x-b3-sampled; the app honours it. A request
that carries no decision (direct mode, or a caller on the app's socket) is sampled here at
`trace_sampling_percent`. An unsampled request does no tracing work at all: the
`sampling_gate` middleware runs it with instrumentation suppressed, so neither the server
span, nor the asyncpg spans, nor the client spans are created; the trace headers still reach
the next hop because services forward them by hand (services/common/propagation.py).
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Mapping, Sequence

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware
from opentelemetry import propagate, trace
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.instrumentation.aiohttp_client import create_trace_config
from opentelemetry.instrumentation.aiohttp_server import (
    AioHttpServerInstrumentor,
    create_aiohttp_middleware,
)
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.utils import (
    suppress_http_instrumentation,
    suppress_instrumentation,
)
from opentelemetry.propagators.b3 import B3MultiFormat
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.common.errors import Handler

# Spans wait in memory and leave in large batches, so the export thread wakes (and takes the
# GIL) a few times a second rather than once per request.
_EXPORT_BATCH = 2048
_EXPORT_DELAY_MS = 2000
_QUEUE = 8192

_configured = False


def configure_tracing(
    service: str,
    version: str,
    zipkin_endpoint: str | None,
    extra_processors: Sequence[SpanProcessor] = (),
) -> TracerProvider:
    """Install the process tracer provider; call `provider.shutdown()` on exit to flush spans.

    `extra_processors` lets tests collect spans in memory through the very same setup.
    """
    global _configured
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), B3MultiFormat()])
    )
    resource = Resource.create({"service.name": service, "service.version": version})
    # The SDK's default sampler (parent-based, root always on) is right here: the root
    # decision is the sampling gate's, made before any span exists.
    provider = TracerProvider(resource=resource)
    if zipkin_endpoint:
        exporter = ZipkinExporter(endpoint=zipkin_endpoint)
        provider.add_span_processor(
            BatchSpanProcessor(
                exporter,
                max_queue_size=_QUEUE,
                max_export_batch_size=_EXPORT_BATCH,
                schedule_delay_millis=_EXPORT_DELAY_MS,
            )
        )
    for processor in extra_processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    # instrument() sets up the server instrumentation's tracer and meters, and would wrap
    # web.Application to put its span middleware first; uninstrument() undoes only the
    # wrapping, so `server_middlewares` can place that middleware behind the sampling gate.
    # (The wrapper subclasses web.Application, which aiohttp warns about; muted.)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Inheritance class", DeprecationWarning)
        server = AioHttpServerInstrumentor()
        server.instrument()
        server.uninstrument()
    _configured = True
    return provider


def server_middlewares(sampling_percent: float) -> list[Middleware]:
    """The sampling gate, then the server-span middleware (none before tracing is set up)."""
    if not _configured:
        return []
    spans: Middleware = create_aiohttp_middleware(trace.get_tracer_provider())
    return [sampling_gate(sampling_percent), spans]


def sampled(headers: Mapping[str, str], sampling_percent: float) -> bool:
    """The caller's sampling decision (B3 multi, B3 single, W3C), else a random one here."""
    flags = headers.get("x-b3-flags")
    if flags == "1":  # debug: always sampled
        return True
    decision = headers.get("x-b3-sampled")
    if decision is not None:
        return decision in ("1", "true")
    single = headers.get("b3")
    if single is not None:
        parts = single.split("-")
        if len(parts) == 1:
            return parts[0] in ("1", "d")
        if len(parts) >= 3:
            return parts[2] in ("1", "d")
    parent = headers.get("traceparent")
    if parent is not None and len(parent) >= 55:
        try:
            return bool(int(parent[53:55], 16) & 1)
        except ValueError:
            pass  # malformed: the propagator ignores it, so this is a new root
    return random.random() * 100 < sampling_percent  # noqa: S311 - sampling, not security


def sampling_gate(sampling_percent: float) -> Middleware:
    @web.middleware
    async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if sampled(request.headers, sampling_percent):
            return await handler(request)
        with suppress_instrumentation(), suppress_http_instrumentation():
            return await handler(request)

    return gate


def client_trace_configs() -> list[aiohttp.TraceConfig]:
    """Trace configs for an outgoing ClientSession: a client span, context injected in headers."""
    return [create_trace_config()]
