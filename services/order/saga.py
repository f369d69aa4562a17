"""The order side of the choreography: PENDING becomes CONFIRMED or REJECTED."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from services.common.db import DB_POOL
from services.common.events import StockRejected, StockReserved

log = logging.getLogger(__name__)


async def apply_stock_outcome(pool: asyncpg.Pool, event: StockReserved | StockRejected) -> bool:
    """Idempotent by construction: only a PENDING order changes, so a redelivery is a no-op."""
    status = "CONFIRMED" if isinstance(event, StockReserved) else "REJECTED"
    result = await pool.execute(
        "UPDATE orders SET status = $2 WHERE order_id = $1 AND status = 'PENDING'",
        event.order_id,
        status,
    )
    changed = result == "UPDATE 1"
    if changed:
        log.info("order " + status.lower(), extra={"orderId": str(event.order_id)})
    return changed


def catalog_events_handler(
    app: web.Application,
) -> Callable[[StockReserved | StockRejected], Awaitable[None]]:
    async def handle(event: StockReserved | StockRejected) -> None:
        await apply_stock_outcome(app[DB_POOL], event)

    return handle
