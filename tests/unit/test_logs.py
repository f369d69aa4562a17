from __future__ import annotations

import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from services.common.logs import JsonFormatter


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "t", "levelname": "INFO", "msg": msg, **extra})
    return record


def test_json_line_with_extra_fields() -> None:
    line = JsonFormatter("user-service").format(_record("hello %s", args=("you",), orderId="o-1"))
    entry = json.loads(line)
    assert entry["msg"] == "hello you" and entry["service"] == "user-service"
    assert entry["level"] == "info" and entry["orderId"] == "o-1"
    assert "trace_id" not in entry  # no span, no made-up ids


def test_trace_and_span_ids_of_the_current_span() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("op") as span:
        entry = json.loads(JsonFormatter("svc").format(_record("in a span")))
    context = span.get_span_context()
    assert entry["trace_id"] == format(context.trace_id, "032x")
    assert entry["span_id"] == format(context.span_id, "016x")
