"""What each answer a shopper got means: success, a documented degraded or unavailable
answer, a clean refusal by the mesh, or something unclean that the checker reports.

Clean means a client can act on it: Envoy's own local replies (503/504, text/plain, with the
wording Envoy uses), the services' documented problem+json 503s, and business refusals.
Unclean is anything else: a 500, a 5xx the shop never documents, no answer at all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from mesh.chaos.record import Operation
from services.common.errors import DATABASE_UNAVAILABLE_DETAIL, PROBLEM_JSON

SUCCESS_STATUS = {"place_order": 201, "read_user": 200, "read_orders": 200}

# Envoy's local replies, by the start of their text/plain body (router and fault filter).
ENVOY_REPLIES: tuple[tuple[int, str, str], ...] = (
    (503, "no healthy upstream", "envoy_no_healthy_upstream"),
    # ... "reset reason: connection failure | connection termination | overflow", with
    # "retried and the latest reset reason" when the route's retries were used up.
    (503, "upstream connect error or disconnect/reset before headers", "envoy_upstream_reset"),
    (504, "upstream request timeout", "envoy_timeout"),
)
# An Istio abort answers with the httpStatus the VirtualService names (503 in istio/).
FAULT_ABORT = "fault filter abort"

# The services' documented unavailability, by problem detail (services/*/handlers.py,
# services/common/errors.py).
DOCUMENTED_503 = {
    "catalog-service is unavailable; the order was not placed": "catalog_unavailable",
    DATABASE_UNAVAILABLE_DETAIL: "database_unavailable",  # with Retry-After: 1
}
# Refusals a valid order may still meet (services/order/pricing.py): a product or price that
# changed under the shopper. Out of stock is not one: the order is REJECTED later.
BUSINESS_REFUSALS = {
    "unknown product": "refused_unknown_product",
    "price mismatch": "refused_price",
}


@dataclass(frozen=True)
class Answer:
    kind: str  # short, for "errors by kind"
    success: bool  # the full answer the shopper asked for
    clean: bool  # success, or an answer a client can act on


OK = Answer("ok", success=True, clean=True)


def classify(op: Operation) -> Answer:
    if op.status is None:
        timed_out = op.error.startswith(("TimeoutError", "ServerTimeoutError"))
        return Answer("client_timeout" if timed_out else "no_answer", False, False)
    if op.status == SUCCESS_STATUS[op.kind]:
        if op.kind == "read_user" and op.orders_available is False:
            return Answer("degraded_orders_unavailable", success=False, clean=True)
        return OK
    if op.status == 500:  # whatever the body: a problem document, a traceback, nothing
        return Answer("server_error", False, False)
    if op.content_type == "text/plain":
        return _envoy(op.status, op.body)
    if op.content_type == PROBLEM_JSON:
        return _problem(op.status, _detail(op.body))
    return Answer(f"unknown_{op.status}", False, False)


def _envoy(status: int, body: str) -> Answer:
    for expected, start, kind in ENVOY_REPLIES:
        if status == expected and body.startswith(start):
            return Answer(kind, False, True)
    if body.startswith(FAULT_ABORT):
        return Answer("envoy_fault_abort", False, True)
    # e.g. 401 "Jwt is expired", 403 "RBAC: access denied" (the shopper's token was good),
    # or a plain-text 5xx from something that is not Envoy.
    return Answer(f"unexpected_{status}", False, False)


def _problem(status: int, detail: str | None) -> Answer:
    if status == 503 and detail in DOCUMENTED_503:
        return Answer(DOCUMENTED_503[detail], False, True)
    if status == 422 and detail in BUSINESS_REFUSALS:
        return Answer(BUSINESS_REFUSALS[detail], False, True)
    # Anything else (an Idempotency-Key conflict, a 400 for a body the shopper built right,
    # an undocumented 5xx) means the shop or the checker's client is wrong.
    return Answer(f"problem_{status}", False, False)


def _detail(body: str) -> str | None:
    """The problem's detail, found even in a body the journal truncated."""
    match = _DETAIL.search(body)
    return None if match is None else str(json.loads(match.group(1)))


_DETAIL = re.compile(r'"detail"\s*:\s*("(?:[^"\\]|\\.)*")')
