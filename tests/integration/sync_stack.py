"""catalog-service and order-service wired to a real Kafka broker and real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mesh.infra.kafka import TopicSpec, ensure_topics
from mesh.infra.postgres import PostgresServer, database_dsn, ensure_databases
from services.catalog.app import create_app as create_catalog
from services.catalog.settings import CatalogSettings
from services.common.events import TOPIC_PARTITIONS
from services.order.app import create_app as create_order
from services.order.settings import OrderSettings
from tests.support.identity import as_user
from tests.support.waiting import eventually

Client = TestClient[web.Request, web.Application]
TOPICS = [TopicSpec(name, partitions) for name, partitions in TOPIC_PARTITIONS.items()]


@dataclass
class SyncStack:
    catalog: Client
    order: Client
    catalog_dsn: str
    order_dsn: str
    bootstrap: str

    async def new_product(self, stock: int, price: int = 100) -> str:
        product_id = f"P-{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(self.catalog_dsn)
        try:
            await conn.execute(
                "INSERT INTO catalog (product_id, product_name, unit_price, stock)"
                " VALUES ($1, 'Test product', $2, $3)",
                product_id,
                price,
                stock,
            )
        finally:
            await conn.close()
        return product_id

    async def stock(self, product_id: str) -> int:
        conn = await asyncpg.connect(self.catalog_dsn)
        try:
            stock: int = await conn.fetchval(
                "SELECT stock FROM catalog WHERE product_id = $1", product_id
            )
        finally:
            await conn.close()
        return stock

    async def place(
        self, user_id: str, product_id: str, qty: int, price: int = 100, **kwargs: Any
    ) -> dict[str, Any]:
        body = {"productId": product_id, "qty": qty, "unitPrice": price}
        headers = {**kwargs.pop("headers", {}), **as_user(user_id)}
        resp = await self.order.post(f"/{user_id}/orders", json=body, headers=headers, **kwargs)
        assert resp.status == 201, await resp.text()
        placed: dict[str, Any] = await resp.json()
        return placed

    async def statuses(self, user_id: str) -> list[str]:
        orders = await (await self.order.get(f"/{user_id}/orders", headers=as_user(user_id))).json()
        return [o["status"] for o in orders]

    async def settled(self, user_id: str, count: int, timeout: float = 60) -> list[str]:
        """Wait until the user's `count` orders all left PENDING; returns their statuses."""

        async def done() -> bool:
            statuses = await self.statuses(user_id)
            return len(statuses) == count and "PENDING" not in statuses

        await eventually(done, timeout)
        return await self.statuses(user_id)


async def prepare(postgres: PostgresServer, bootstrap: str, prefix: str) -> tuple[str, str]:
    names = [f"{prefix}_catalog", f"{prefix}_order"]
    await ensure_databases(postgres.admin_dsn, names)
    await ensure_topics(bootstrap, TOPICS)
    return database_dsn(postgres.admin_dsn, names[0]), database_dsn(postgres.admin_dsn, names[1])


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[Client]:
    async with TestClient(TestServer(app)) as client:
        yield client


@asynccontextmanager
async def sync_stack(
    postgres: PostgresServer, bootstrap: str, prefix: str, *, catalog_consumes: bool = True
) -> AsyncIterator[SyncStack]:
    """Both services in-process. With `catalog_consumes=False` the in-process catalog only
    serves HTTP (price checks), leaving order-events to a catalog process the test runs."""
    catalog_dsn, order_dsn = await prepare(postgres, bootstrap, prefix)
    catalog_settings = CatalogSettings(
        environment="test",
        database_url=catalog_dsn,
        kafka_bootstrap_servers=bootstrap if catalog_consumes else None,
    )
    async with serve(create_catalog(catalog_settings)) as catalog:
        order_settings = OrderSettings(
            environment="test",
            database_url=order_dsn,
            catalog_service_url=str(catalog.make_url("")),
            kafka_bootstrap_servers=bootstrap,
        )
        async with serve(create_order(order_settings)) as order:
            yield SyncStack(catalog, order, catalog_dsn, order_dsn, bootstrap)
