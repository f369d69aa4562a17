from __future__ import annotations

from services.common.propagation import FORWARDED_HEADERS, forwarded_headers


def test_trace_headers_are_forwarded_case_insensitively() -> None:
    incoming = {
        "X-Request-Id": "req-1",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "X-B3-TraceId": "463ac35c9f6413ad",
        "X-B3-SpanId": "a2fb4a1d1a96d312",
        "X-B3-Sampled": "1",
        "Authorization": "Bearer the-token",
        "X-Jwt-Payload": "eyJzdWIiOiJ1LTEifQ",
        "Cookie": "a=b",
    }
    out = forwarded_headers(incoming)
    assert out == {
        "x-request-id": "req-1",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "x-b3-traceid": "463ac35c9f6413ad",
        "x-b3-spanid": "a2fb4a1d1a96d312",
        "x-b3-sampled": "1",
        # The caller's identity, for the next service's owner check; cookies stay behind.
        "authorization": "Bearer the-token",
        "x-jwt-payload": "eyJzdWIiOiJ1LTEifQ",
    }


def test_the_list_covers_istio_and_w3c() -> None:
    for name in (
        "x-request-id",
        "traceparent",
        "x-b3-traceid",
        "x-b3-parentspanid",
        "b3",
        "x-canary",
    ):
        assert name in FORWARDED_HEADERS
