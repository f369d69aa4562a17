"""Hand-built operations, faults and snapshots for the chaos checker's unit tests."""

from __future__ import annotations

from typing import Any

from mesh.chaos.record import Operation, OperationKind
from mesh.chaos.snapshot import DeadLetter, Snapshot, StoredOrder

USER = "user-1"
PRODUCT = "CATALOG-001"
UNAVAILABLE_DB = (
    '{"type":"about:blank","title":"Service Unavailable","status":503,'
    '"detail":"the database is unavailable; try again"}'
)
CONNECT_ERROR = (
    "upstream connect error or disconnect/reset before headers. retried and the latest reset"
    " reason: remote connection failure, transport failure reason: delayed connect error: 111"
)


def op(
    kind: OperationKind = "place_order",
    status: int | None = 201,
    *,
    at: float = 100.0,
    took: float = 0.05,
    **fields: Any,
) -> Operation:
    defaults: dict[str, Any] = {"user_id": USER}
    if kind == "place_order":
        defaults |= {"product_id": PRODUCT, "quantity": 1, "idempotency_key": "key-1"}
    if status is not None and status >= 300 and "body" not in fields:
        defaults |= {"content_type": "text/plain", "body": CONNECT_ERROR}
    if kind == "read_user" and status == 200:
        defaults["orders_available"] = True
    return Operation(kind, at, at + took, status, **(defaults | fields))


def placed(order_id: str, key: str, *, at: float = 100.0, **fields: Any) -> Operation:
    """A place_order acknowledged with 201 for `order_id`."""
    return op("place_order", 201, at=at, order_id=order_id, idempotency_key=key, **fields)


def stored(
    order_id: str, key: str | None, status: str = "CONFIRMED", *, quantity: int = 1,
    product: str = PRODUCT, user: str = USER,
) -> StoredOrder:  # fmt: skip
    return StoredOrder(order_id, user, status, product, quantity, key)


def snapshot(*orders: StoredOrder, stock: int = 100, **fields: Any) -> Snapshot:
    return Snapshot(orders={o.order_id: o for o in orders}, stock={PRODUCT: stock}, **fields)


def dead_letter(offset: int, **headers: str) -> DeadLetter:
    return DeadLetter("order-events.dlq", 0, offset, PRODUCT, dict(headers))
