"""OpenTelemetry for one service process: B3 + W3C propagation, Zipkin export when configured.

Istio's sidecars speak B3, apps increasingly W3C traceparent; extracting and injecting both
keeps one trace across Envoy and app spans. The provider is process-wide, so it is set up
by the process entry point, never by `create_app` (tests build many apps in one process).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import aiohttp
from opentelemetry import propagate, trace
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.instrumentation.aiohttp_client import create_trace_config
from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.propagators.b3 import B3MultiFormat
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


def configure_tracing(
    service: str,
    version: str,
    zipkin_endpoint: str | None,
    extra_processors: Sequence[SpanProcessor] = (),
) -> TracerProvider:
    """Install the process tracer provider; call `provider.shutdown()` on exit to flush spans.

    `extra_processors` lets tests collect spans in memory through the very same setup.
    """
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), B3MultiFormat()])
    )
    resource = Resource.create({"service.name": service, "service.version": version})
    provider = TracerProvider(resource=resource)
    if zipkin_endpoint:
        provider.add_span_processor(BatchSpanProcessor(ZipkinExporter(endpoint=zipkin_endpoint)))
    for processor in extra_processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    # Wraps web.Application so every app built afterwards opens a server span per request.
    # The wrapper subclasses web.Application, which aiohttp discourages with a warning at
    # class creation; it is the official instrumentation's design, so that warning is muted.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Inheritance class", DeprecationWarning)
        AioHttpServerInstrumentor().instrument()
    return provider


def client_trace_configs() -> list[aiohttp.TraceConfig]:
    """Trace configs for an outgoing ClientSession: a client span, context injected in headers."""
    return [create_trace_config()]
