from __future__ import annotations

import uuid

import asyncpg

from services.common.events import ORDER_EVENTS, OrderPlaced
from services.common.outbox import add_event
from services.order.idempotency import StoredResponse
from services.order.models import Order


class PostgresOrderRepository:
    """services.order.service.OrderRepository over the orders and idempotency_keys tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def find_stored_response(self, user_id: str, key: str) -> StoredResponse | None:
        row = await self._pool.fetchrow(
            "SELECT request_hash, response_status, response_body FROM idempotency_keys"
            " WHERE user_id = $1 AND idempotency_key = $2",
            user_id,
            key,
        )
        return _stored(row) if row else None

    async def save_order(
        self, order: Order, idempotency: tuple[str, str] | None, status: int, body: str
    ) -> StoredResponse | None:
        """Insert the order, and its idempotency record when `idempotency` = (key, request hash).

        Returns None when saved. When another request took the same key first (a concurrent
        retry), nothing is inserted and that request's stored response is returned instead:
        the key's unique index makes the later INSERT wait for the earlier transaction.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            if idempotency is not None:
                key, request_hash = idempotency
                inserted = await conn.fetchval(
                    "INSERT INTO idempotency_keys"
                    " (user_id, idempotency_key, request_hash, response_status, response_body)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1",
                    order.user_id,
                    key,
                    request_hash,
                    status,
                    body,
                )
                if inserted is None:
                    row = await conn.fetchrow(
                        "SELECT request_hash, response_status, response_body FROM idempotency_keys"
                        " WHERE user_id = $1 AND idempotency_key = $2",
                        order.user_id,
                        key,
                    )
                    assert row is not None  # the conflicting row is committed by now
                    return _stored(row)
            await conn.execute(
                "INSERT INTO orders (order_id, user_id, product_id, qty, unit_price, discount,"
                " total_price, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                uuid.UUID(order.order_id),
                order.user_id,
                order.product_id,
                order.qty,
                order.unit_price,
                order.discount,
                order.total_price,
                order.status,
                order.created_at,
            )
            placed = OrderPlaced(
                order_id=uuid.UUID(order.order_id),
                user_id=order.user_id,
                product_id=order.product_id,
                qty=order.qty,
            )
            await add_event(conn, ORDER_EVENTS, order.product_id, placed)
        return None


async def list_orders(pool: asyncpg.Pool, user_id: str) -> list[Order]:
    rows = await pool.fetch(
        "SELECT order_id::text, user_id, product_id, qty, unit_price, discount, total_price,"
        " status, created_at FROM orders WHERE user_id = $1 ORDER BY created_at DESC, order_id",
        user_id,
    )
    return [Order(**dict(row)) for row in rows]


def _stored(row: asyncpg.Record) -> StoredResponse:
    return StoredResponse(row["request_hash"], row["response_status"], row["response_body"])
