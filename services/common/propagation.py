"""The headers a service forwards on its outgoing calls: trace context, routing, the token.

Like Bookinfo's productpage: one list, in one place, unit-tested. The OpenTelemetry client
instrumentation rewrites traceparent/x-b3-* with a child span when tracing is on; forwarding
them as received keeps the trace intact when it is off. x-request-id is Envoy's own
correlation id and must always be forwarded by hand.
"""

from __future__ import annotations

from collections.abc import Mapping

FORWARDED_HEADERS: tuple[str, ...] = (
    "x-request-id",
    "traceparent",
    "tracestate",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "x-ot-span-context",
    # The caller's identity, so the next service makes its own owner check (user-service
    # reading a user's orders from order-service): the token, which the next sidecar verifies
    # again, and the verified payload, which that sidecar removes and sets anew from the token
    # (in direct mode, without sidecars, the payload is what carries the identity).
    "authorization",
    "x-jwt-payload",
    # Routing headers of the istio/ scenarios: forwarded so a header set at the edge still
    # selects the canary or the test fault one hop further in (like Bookinfo's `end-user`).
    "x-canary",
    "x-test-fault",
)


def forwarded_headers(incoming: Mapping[str, str]) -> dict[str, str]:
    """The subset of `incoming` (case-insensitive) to copy onto an outgoing request."""
    lowered = {key.lower(): value for key, value in incoming.items()}
    return {name: lowered[name] for name in FORWARDED_HEADERS if name in lowered}
