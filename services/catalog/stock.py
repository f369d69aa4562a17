"""Stock reservation for placed orders: exactly once per event, never below zero."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from services.common.db import DB_POOL
from services.common.events import (
    CATALOG_EVENTS,
    ORDER_EVENTS,
    OrderPlaced,
    StockRejected,
    StockReserved,
)
from services.common.messaging import kick_relay
from services.common.outbox import add_event


async def reserve_stock(pool: asyncpg.Pool, event: OrderPlaced) -> bool:
    """Apply one OrderPlaced; returns False when the event had already been applied."""
    async with pool.acquire() as conn, conn.transaction():
        first_time = await conn.fetchval(
            "INSERT INTO processed_events (event_id, topic) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING RETURNING true",
            event.event_id,
            ORDER_EVENTS,
        )
        if not first_time:
            return False
        # One conditional UPDATE: concurrent reservations for the last units serialise on the
        # row lock, and the loser sees the reduced stock and matches no row.
        remaining = await conn.fetchval(
            "UPDATE catalog SET stock = stock - $2 WHERE product_id = $1 AND stock >= $2"
            " RETURNING stock",
            event.product_id,
            event.qty,
        )
        outcome: StockReserved | StockRejected
        if remaining is not None:
            outcome = StockReserved(
                order_id=event.order_id,
                product_id=event.product_id,
                qty=event.qty,
                remaining_stock=remaining,
            )
        else:
            known = await conn.fetchval(
                "SELECT true FROM catalog WHERE product_id = $1", event.product_id
            )
            outcome = StockRejected(
                order_id=event.order_id,
                product_id=event.product_id,
                qty=event.qty,
                reason="insufficient_stock" if known else "unknown_product",
            )
        await add_event(conn, CATALOG_EVENTS, event.product_id, outcome)
    return True


def order_events_handler(app: web.Application) -> Callable[[OrderPlaced], Awaitable[None]]:
    async def handle(event: OrderPlaced) -> None:
        if await reserve_stock(app[DB_POOL], event):
            kick_relay(app)

    return handle
