"""The order side of the choreography: PENDING becomes CONFIRMED or REJECTED."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from aiohttp import web

from services.common.consumer import Delivery
from services.common.db import DB_POOL
from services.common.events import StockRejected, StockReserved

log = logging.getLogger(__name__)


async def apply_stock_outcomes(
    pool: asyncpg.Pool, events: Sequence[StockReserved | StockRejected]
) -> int:
    """Idempotent by construction: only a PENDING order changes, so a redelivery is a no-op.
    One UPDATE for the whole batch; returns how many orders changed."""
    changed = await pool.fetch(
        "UPDATE orders SET status = v.status FROM unnest($1::uuid[], $2::text[])"
        " AS v(order_id, status)"
        " WHERE orders.order_id = v.order_id AND orders.status = 'PENDING'"
        " RETURNING orders.order_id, orders.status",
        [e.order_id for e in events],
        ["CONFIRMED" if isinstance(e, StockReserved) else "REJECTED" for e in events],
    )
    for row in changed:
        log.info("order " + row["status"].lower(), extra={"orderId": str(row["order_id"])})
    return len(changed)


def catalog_events_handler(
    app: web.Application,
) -> Callable[[Sequence[Delivery[StockReserved | StockRejected]]], Awaitable[None]]:
    async def handle(deliveries: Sequence[Delivery[StockReserved | StockRejected]]) -> None:
        await apply_stock_outcomes(app[DB_POOL], [d.event for d in deliveries])

    return handle
