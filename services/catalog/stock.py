"""Stock reservation for placed orders: exactly once per event, never below zero."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from uuid import UUID

import asyncpg
from aiohttp import web

from services.common.consumer import Delivery
from services.common.db import DB_POOL
from services.common.events import (
    CATALOG_EVENTS,
    ORDER_EVENTS,
    OrderPlaced,
    StockRejected,
    StockReserved,
)
from services.common.messaging import kick_relay
from services.common.outbox import add_events


async def reserve_stock(pool: asyncpg.Pool, deliveries: Sequence[Delivery[OrderPlaced]]) -> int:
    """Apply a batch of OrderPlaced in one transaction; returns how many were new.

    A few round trips per batch, whatever its size: record the event ids (an id already
    recorded was applied before: skipped), lock the products' rows in a fixed order (replicas
    never deadlock), reserve in event order from the locked stock (the first orders win the
    last units), write the new stock and one outcome event per order.
    """
    async with pool.acquire() as conn, conn.transaction():
        recorded = await conn.fetch(
            "INSERT INTO processed_events (event_id, topic)"
            " SELECT unnest($1::uuid[]), $2 ON CONFLICT DO NOTHING RETURNING event_id",
            [d.event.event_id for d in deliveries],
            ORDER_EVENTS,
        )
        fresh = _first_of_each(deliveries, {row["event_id"] for row in recorded})
        if not fresh:
            return 0
        rows = await conn.fetch(
            "SELECT product_id, stock FROM catalog WHERE product_id = ANY($1::text[])"
            " ORDER BY product_id FOR UPDATE",
            sorted({d.event.product_id for d in fresh}),
        )
        stock: dict[str, int] = {row["product_id"]: row["stock"] for row in rows}
        before = dict(stock)
        outcomes = [_reserve(stock, d.event) for d in fresh]
        changed = [(product, left) for product, left in stock.items() if left != before[product]]
        if changed:
            await conn.execute(
                "UPDATE catalog SET stock = v.stock FROM unnest($1::text[], $2::int[])"
                " AS v(product_id, stock) WHERE catalog.product_id = v.product_id",
                [product for product, _ in changed],
                [left for _, left in changed],
            )
        await add_events(
            conn,
            [(CATALOG_EVENTS, d.event.product_id, outcome, d.context)
             for d, outcome in zip(fresh, outcomes, strict=True)],
        )  # fmt: skip
    return len(fresh)


def _first_of_each(
    deliveries: Sequence[Delivery[OrderPlaced]], new_ids: set[UUID]
) -> list[Delivery[OrderPlaced]]:
    """The deliveries whose event was not applied before, a duplicate within the batch once."""
    fresh, seen = [], set()
    for d in deliveries:
        if d.event.event_id in new_ids and d.event.event_id not in seen:
            seen.add(d.event.event_id)
            fresh.append(d)
    return fresh


def _reserve(stock: dict[str, int], event: OrderPlaced) -> StockReserved | StockRejected:
    """One order against the stock left by the orders before it (never below zero)."""
    left = stock.get(event.product_id)
    if left is not None and left >= event.qty:
        stock[event.product_id] = left - event.qty
        return StockReserved(
            order_id=event.order_id,
            product_id=event.product_id,
            qty=event.qty,
            remaining_stock=left - event.qty,
        )
    return StockRejected(
        order_id=event.order_id,
        product_id=event.product_id,
        qty=event.qty,
        reason="insufficient_stock" if left is not None else "unknown_product",
    )


def order_events_handler(
    app: web.Application,
) -> Callable[[Sequence[Delivery[OrderPlaced]]], Awaitable[None]]:
    async def handle(deliveries: Sequence[Delivery[OrderPlaced]]) -> None:
        if await reserve_stock(app[DB_POOL], deliveries):
            kick_relay(app)

    return handle
