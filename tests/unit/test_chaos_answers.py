"""Answers classified from the bodies Envoy and the services really send."""

from __future__ import annotations

import pytest

from mesh.chaos.answers import classify
from mesh.chaos.record import OperationKind
from tests.unit.chaos_builders import CONNECT_ERROR, UNAVAILABLE_DB, op

PROBLEM = "application/problem+json"
TEXT = "text/plain"


def problem(status: int, detail: str, extra: str = "") -> str:
    title = {422: "Unprocessable Content", 500: "Internal Server Error"}.get(
        status, "Service Unavailable"
    )
    return (
        f'{{"type":"about:blank","title":"{title}","status":{status},"detail":"{detail}"{extra}}}'
    )


PRICE_MISMATCH = problem(
    422, "price mismatch",
    ',"errors":[{"field":"unitPrice","message":"is 1400, the catalog price is 1500"}]',
)  # fmt: skip
KEY_REUSED = problem(
    422, "Idempotency-Key reused with a different request",
    ',"errors":[{"field":"Idempotency-Key","message":"already used for another request body"}]',
)  # fmt: skip

CASES: list[tuple[OperationKind, int | None, str, str, str, bool]] = [
    # kind, status, content type, body -> answer kind, clean
    ("read_orders", 503, TEXT, "no healthy upstream", "envoy_no_healthy_upstream", True),
    ("place_order", 503, TEXT, CONNECT_ERROR, "envoy_upstream_reset", True),
    (
        "place_order",
        503,
        TEXT,
        "upstream connect error or disconnect/reset before headers. reset reason: overflow",
        "envoy_upstream_reset",
        True,
    ),
    ("place_order", 504, TEXT, "upstream request timeout", "envoy_timeout", True),
    ("read_orders", 503, TEXT, "fault filter abort", "envoy_fault_abort", True),
    (
        "place_order",
        503,
        PROBLEM,
        problem(503, "catalog-service is unavailable; the order was not placed"),
        "catalog_unavailable",
        True,
    ),
    ("read_user", 503, PROBLEM, UNAVAILABLE_DB, "database_unavailable", True),
    ("place_order", 422, PROBLEM, PRICE_MISMATCH, "refused_price", True),
    ("place_order", 422, PROBLEM, KEY_REUSED, "problem_422", False),
    ("place_order", 500, PROBLEM, problem(500, "internal error"), "server_error", False),
    (
        "read_user",
        500,
        TEXT,
        "500 Internal Server Error\n\nServer got itself in trouble",
        "server_error",
        False,
    ),
    (
        "place_order",
        502,
        TEXT,
        "upstream connect error or disconnect/reset before headers. reset reason: protocol error",
        "unexpected_502",
        False,
    ),
    ("read_orders", 401, TEXT, "Jwt is expired", "unexpected_401", False),
    ("read_orders", 403, TEXT, "RBAC: access denied", "unexpected_403", False),
    ("read_orders", 503, PROBLEM, problem(503, "something new"), "problem_503", False),
    ("read_orders", 503, "text/html", "<html>Service Unavailable</html>", "unknown_503", False),
    ("read_orders", 200, "application/json", "[]", "ok", True),
    ("place_order", 201, "application/json", '{"orderId":"o1"}', "ok", True),
]


@pytest.mark.parametrize(("kind", "status", "content_type", "body", "expected", "clean"), CASES)
def test_classify(
    kind: OperationKind, status: int, content_type: str, body: str, expected: str, clean: bool
) -> None:
    answer = classify(op(kind, status, content_type=content_type, body=body))
    assert (answer.kind, answer.clean) == (expected, clean)
    assert answer.success == (expected == "ok")


def test_user_without_orders_is_degraded_but_clean() -> None:
    answer = classify(op("read_user", 200, orders_available=False))
    assert (answer.kind, answer.success, answer.clean) == (
        "degraded_orders_unavailable",
        False,
        True,
    )
    assert classify(op("read_user", 200)).kind == "ok"


def test_a_detail_in_a_truncated_body_is_still_found() -> None:
    body = UNAVAILABLE_DB[:-1] + ',"errors":[' + "x" * 400
    answer = classify(op("read_user", 503, content_type=PROBLEM, body=body[:300]))
    assert answer.kind == "database_unavailable"


@pytest.mark.parametrize(
    ("error", "expected"),
    [("TimeoutError: ", "client_timeout"),
     ("ServerDisconnectedError: Server disconnected", "no_answer"),
     ("ClientConnectorError: Cannot connect to host 127.0.0.1:8080", "no_answer")],
)  # fmt: skip
def test_no_answer_is_unclean(error: str, expected: str) -> None:
    answer = classify(op(status=None, error=error))
    assert (answer.kind, answer.success, answer.clean) == (expected, False, False)
