"""Scenario 3: Kafka stock sync lag, from an order's 201 to its final status, at set rates.

Orders go in through the ingress at a fixed rate (or as fast as 16 concurrent clients go),
each with its own Idempotency-Key; a poller on order-service's database notes when each
order leaves PENDING (order -> outbox -> Kafka -> catalog stock -> outbox -> Kafka -> order).
Afterwards: every acknowledged order must exist exactly once and have settled.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from typing import Any

import aiohttp
import asyncpg

from bench.plan import Plan
from bench.shop import Shop, top_up_stock
from bench.shopper import Customer, catalog, sign_up
from mesh.control.workloads import by_name
from mesh.infra.postgres import database_dsn

POLL_SECONDS = 0.01
MAX_CLIENTS = 16


class _Orders:
    def __init__(self, shop: Shop, customer: Customer, product: dict[str, Any]) -> None:
        self.url = f"{shop.ingress}/order-service/{customer.user_id}/orders"
        self.token = customer.token
        self.body = {"productId": product["productId"], "qty": 1,
                     "unitPrice": product["unitPrice"]}  # fmt: skip
        self.acked: dict[str, float] = {}  # order id -> when its 201 arrived
        self.refused: dict[str, int] = {}  # status -> count

    async def place(self, http: aiohttp.ClientSession) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Idempotency-Key": uuid.uuid4().hex}
        try:
            async with http.post(self.url, json=self.body, headers=headers) as resp:
                if resp.status == 201:
                    self.acked[(await resp.json())["orderId"]] = time.monotonic()
                else:
                    self.refused[str(resp.status)] = self.refused.get(str(resp.status), 0) + 1
        except (aiohttp.ClientError, TimeoutError) as exc:  # counted: overload shows here
            self.refused[type(exc).__name__] = self.refused.get(type(exc).__name__, 0) + 1


# Asks only about orders not yet seen settled, so a poll costs what the backlog is, not what
# the whole run placed (a poll of every settled order swamped the shop it measured).
_SETTLED = (
    "SELECT order_id::text AS id FROM orders"
    " WHERE order_id = ANY($1::uuid[]) AND status <> 'PENDING'"
)


class _Poller:
    """Notes when each acknowledged order is first seen settled; `settled` is set once every
    one is, after placing is `done`."""

    def __init__(self, dsn: str, acked: dict[str, float]) -> None:
        self.dsn, self.acked = dsn, acked
        self.seen: dict[str, float] = {}
        self.done = False
        self.settled = asyncio.Event()

    async def run(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not self.settled.is_set():
                waiting = [i for i in self.acked if i not in self.seen]
                rows = await conn.fetch(_SETTLED, waiting) if waiting else []
                now = time.monotonic()
                for row in rows:
                    self.seen.setdefault(row["id"], now)
                if self.done and self.acked.keys() <= self.seen.keys():
                    self.settled.set()
                await asyncio.sleep(POLL_SECONDS)
        finally:
            await conn.close()


async def _one_rate(shop: Shop, plan: Plan, rate: int, product: dict[str, Any]) -> dict[str, Any]:
    customer = await asyncio.to_thread(sign_up, shop.ingress)
    orders = _Orders(shop, customer, product)
    dsn = database_dsn(shop.admin_dsn, by_name("order-service").database)
    poller = _Poller(dsn, orders.acked)
    polling = asyncio.create_task(poller.run())
    began = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        if rate > 0:
            tasks = []
            for n in range(int(rate * plan.kafka_seconds)):
                await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
                tasks.append(asyncio.create_task(orders.place(http)))
            await asyncio.gather(*tasks)
        else:

            async def client() -> None:
                while time.monotonic() - began < plan.kafka_seconds:
                    await orders.place(http)

            await asyncio.gather(*(client() for _ in range(MAX_CLIENTS)))
    placing = time.monotonic() - began
    poller.done = True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(poller.settled.wait(), plan.settle_seconds)
    poller.settled.set()  # stops polling, settled or not
    await polling
    seen = poller.seen
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT order_id::text AS id, status FROM orders WHERE user_id = $1",
            customer.user_id,
        )
    finally:
        await conn.close()
    stored = [r["id"] for r in rows]
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    lags = sorted(max(0.0, seen[i] - t) * 1000 for i, t in orders.acked.items() if i in seen)
    return {
        "requested_orders_per_s": rate or "max",
        "achieved_orders_per_s": round(len(orders.acked) / placing, 1),
        "acknowledged": len(orders.acked),
        "refused": orders.refused,
        "stored": len(stored),
        "statuses": statuses,
        "lost": len(orders.acked.keys() - set(stored)),
        "duplicated": len(stored) - len(set(stored)),
        "unacknowledged_but_stored": len(set(stored) - orders.acked.keys()),
        "unsettled": len(orders.acked.keys() - seen.keys()),
        "lag_ms": _percentiles(lags),
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    cuts = (
        statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    )
    return {"p50": round(cuts[49], 1), "p99": round(cuts[98], 1), "max": round(values[-1], 1)}


async def _run(shop: Shop, plan: Plan) -> dict[str, Any]:
    await top_up_stock(shop)
    product = (await asyncio.to_thread(catalog, shop.ingress))[0]
    out = {}
    for rate in plan.kafka_rates:
        print(f"  kafka lag: {rate or 'max'} orders/s for {plan.kafka_seconds:g} s", flush=True)
        out[str(rate or "max")] = await _one_rate(shop, plan, rate, product)
    return out


def run(shop: Shop, plan: Plan) -> dict[str, Any]:
    return asyncio.run(_run(shop, plan))
