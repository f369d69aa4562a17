"""Placing an order: the flow behind POST /{userId}/orders, over ports so it runs on fakes.

The flow owns the rules (idempotency, catalog price, pricing, what is stored); the handler
owns HTTP and the adapters own Postgres and the call to catalog-service.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from services.order import idempotency, pricing
from services.order.idempotency import Decision, StoredResponse
from services.order.models import CatalogProduct, Order, OrderRequest

CREATED = 201


class CatalogUnavailable(Exception):
    """catalog-service gave no usable answer: the order cannot be priced, so none is placed."""


# The product with that id, None when the catalog has no such product; raises
# CatalogUnavailable when it cannot tell.
CatalogLookup = Callable[[str], Awaitable[CatalogProduct | None]]


class OrderRepository(Protocol):
    async def find_stored_response(self, user_id: str, key: str) -> StoredResponse | None: ...

    async def save_order(
        self, order: Order, idempotency: tuple[str, str] | None, status: int, body: str
    ) -> StoredResponse | None:
        """None when saved; the earlier request's response when it took the key first."""
        ...


@dataclass(frozen=True)
class Placed:
    """The answer to give: a fresh placement, or the replay of the key's first response."""

    status: int
    body: str  # JSON, exactly as stored: a replay must be byte-for-byte the first answer
    replayed: bool


async def place_order(
    repo: OrderRepository,
    catalog: CatalogLookup,
    *,
    user_id: str,
    request: OrderRequest,
    idempotency_key: str | None,
    service_version: str,
) -> Placed:
    """Place `request` for `user_id` once per idempotency key.

    Raises ProblemError 422 (key reused for another request, unknown product, price
    mismatch) and CatalogUnavailable. Only a result with replayed=False wrote anything.
    """
    request_hash = idempotency.fingerprint(user_id, request)
    if idempotency_key is not None:
        stored = await repo.find_stored_response(user_id, idempotency_key)
        if stored is not None:  # answered before: no catalog call, no second order
            return _replay_or_refuse(stored, request_hash)

    pricing.check_against_catalog(request, await catalog(request.product_id))
    order = _new_order(user_id, request, service_version)
    body = order.model_dump_json(by_alias=True)
    record = None if idempotency_key is None else (idempotency_key, request_hash)
    earlier = await repo.save_order(order, record, CREATED, body)
    if earlier is not None:  # a concurrent retry with the same key won the race
        return _replay_or_refuse(earlier, request_hash)
    return Placed(CREATED, body, replayed=False)


def _replay_or_refuse(stored: StoredResponse, request_hash: str) -> Placed:
    if idempotency.decide(stored, request_hash) is Decision.CONFLICT:
        raise idempotency.conflict()
    return Placed(stored.status, stored.body, replayed=True)


def _new_order(user_id: str, request: OrderRequest, service_version: str) -> Order:
    qty, unit_price = request.qty, request.unit_price
    return Order(
        order_id=str(uuid.uuid4()),
        user_id=user_id,
        product_id=request.product_id,
        qty=qty,
        unit_price=unit_price,
        discount=pricing.discount(qty, unit_price, service_version),
        total_price=pricing.total_price(qty, unit_price, service_version),
        status="PENDING",
        created_at=datetime.now(UTC),
    )
