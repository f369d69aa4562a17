"""Lossless order -> catalog stock sync over a real Kafka broker (issue: Kafka data sync)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from mesh.infra.kafka import KafkaBroker, start_kafka, stop_kafka
from mesh.infra.postgres import PostgresServer
from services.common.events import ORDER_EVENTS
from tests.integration.sync_stack import SyncStack, prepare, sync_stack
from tests.support.shop import free_base_port
from tests.support.waiting import eventually


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def stack(
    postgres_server: PostgresServer, kafka_broker: KafkaBroker
) -> AsyncIterator[SyncStack]:
    async with sync_stack(postgres_server, kafka_broker.bootstrap_servers, "ksync") as s:
        yield s


async def test_orders_decrement_stock_by_exactly_the_sum(stack: SyncStack) -> None:
    product, buyer = await stack.new_product(stock=50), user()
    quantities = [1, 2, 3, 4, 5]
    for qty in quantities:
        await stack.place(buyer, product, qty)
    assert await stack.settled(buyer, len(quantities)) == ["CONFIRMED"] * len(quantities)
    assert await stack.stock(product) == 50 - sum(quantities)
    shown = await (await stack.catalog.get(f"/catalogs/{product}")).json()
    assert shown["stock"] == 50 - sum(quantities)


async def test_order_above_stock_is_rejected_and_stock_unchanged(stack: SyncStack) -> None:
    product, buyer = await stack.new_product(stock=3), user()
    await stack.place(buyer, product, 4)
    assert await stack.settled(buyer, 1) == ["REJECTED"]
    assert await stack.stock(product) == 3


async def test_concurrent_orders_for_the_last_units(stack: SyncStack) -> None:
    product, buyer = await stack.new_product(stock=5), user()
    await asyncio.gather(*(stack.place(buyer, product, 1) for _ in range(12)))
    statuses = await stack.settled(buyer, 12)
    assert statuses.count("CONFIRMED") == 5 and statuses.count("REJECTED") == 7
    assert await stack.stock(product) == 0


async def test_duplicate_delivery_is_applied_once(stack: SyncStack) -> None:
    product, buyer = await stack.new_product(stock=20), user()
    placed = await stack.place(buyer, product, 3)
    await stack.settled(buyer, 1)
    conn = await asyncpg.connect(stack.order_dsn)
    try:
        row = await conn.fetchrow(
            "SELECT key, payload FROM outbox WHERE topic = $1 AND payload::jsonb->>'order_id' = $2",
            ORDER_EVENTS,
            placed["orderId"],
        )
    finally:
        await conn.close()
    assert row is not None
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap)
    await producer.start()
    try:
        for _ in range(2):  # the same event, delivered twice more
            await producer.send_and_wait(
                ORDER_EVENTS, row["payload"].encode(), key=row["key"].encode()
            )
    finally:
        await producer.stop()
    # Same key, same partition: once this later order settles, the duplicates were seen.
    await stack.place(buyer, product, 1)
    assert await stack.settled(buyer, 2) == ["CONFIRMED", "CONFIRMED"]
    assert await stack.stock(product) == 20 - 3 - 1


async def test_poison_message_goes_to_dlq_and_later_messages_still_flow(stack: SyncStack) -> None:
    product, buyer = await stack.new_product(stock=10), user()
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(ORDER_EVENTS, b"\x00not json", key=product.encode())
        await producer.send_and_wait(
            ORDER_EVENTS, b'{"event_type": "OrderPlaced", "qty": -1}', key=product.encode()
        )
    finally:
        await producer.stop()
    await stack.place(buyer, product, 2)
    assert await stack.settled(buyer, 1) == ["CONFIRMED"]
    assert await stack.stock(product) == 8

    consumer = AIOKafkaConsumer(
        ORDER_EVENTS + ".dlq", bootstrap_servers=stack.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        dead: list[tuple[bytes, dict[str, bytes]]] = []

        async def both_dead_lettered() -> bool:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                dead.extend(
                    (r.value, dict(r.headers)) for r in records if r.key == product.encode()
                )
            return len(dead) == 2

        await eventually(both_dead_lettered, 30)
    finally:
        await consumer.stop()
    assert dead[0][0] == b"\x00not json"
    assert b"invalid event" in dead[0][1]["dlq-error"]
    assert dead[0][1]["dlq-source-topic"] == ORDER_EVENTS.encode()


async def test_trace_continues_from_http_through_kafka(
    stack: SyncStack, spans: InMemorySpanExporter
) -> None:
    product, buyer = await stack.new_product(stock=5), user()
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    await stack.place(buyer, product, 1, headers={"traceparent": traceparent})
    await stack.settled(buyer, 1)

    def consumer_spans() -> dict[str, object]:
        return {
            s.name: s
            for s in spans.get_finished_spans()
            if s.kind is SpanKind.CONSUMER and format(s.context.trace_id, "032x") == trace_id
        }

    async def both_hops_traced() -> bool:
        return {"order-events process", "catalog-events process"} <= set(consumer_spans())

    await eventually(both_hops_traced, 10)
    in_trace = [
        s for s in spans.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id
    ]
    publish = next(s for s in in_trace if s.name == "order-events publish")
    process = next(s for s in in_trace if s.name == "order-events process")
    assert process.parent is not None and process.parent.span_id == publish.context.span_id


async def test_broker_down_orders_buffer_then_all_confirm(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    broker = start_kafka(run_dir)
    try:
        async with sync_stack(postgres_server, broker.bootstrap_servers, "kdown") as s:
            product, buyer = await s.new_product(stock=100), user()
            await s.place(buyer, product, 1)
            await s.settled(buyer, 1)
            stop_kafka(run_dir)

            async def not_ready() -> bool:
                return (await s.order.get("/health/ready")).status == 503

            await eventually(not_ready, 10)
            for qty in (2, 3, 4):  # accepted while the broker is down: the outbox buffers
                await s.place(buyer, product, qty)
            assert (await s.statuses(buyer)).count("PENDING") == 3
            start_kafka(run_dir)
            assert await s.settled(buyer, 4, timeout=90) == ["CONFIRMED"] * 4
            assert await s.stock(product) == 100 - (1 + 2 + 3 + 4)

            async def ready() -> bool:
                return (await s.order.get("/health/ready")).status == 200

            await eventually(ready, 30)
    finally:
        stop_kafka(run_dir)


async def test_catalog_killed_mid_stream_loses_and_duplicates_nothing(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    broker = start_kafka(run_dir)
    catalog_dsn, _ = await prepare(postgres_server, broker.bootstrap_servers, "kkill")
    env = {
        **os.environ,
        "MESHMART_PORT": str(free_base_port() + 1),
        "MESHMART_DATABASE_URL": catalog_dsn,
        "MESHMART_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
    }

    async def start_consumer() -> asyncio.subprocess.Process:
        """A real catalog-service process: the one that consumes order-events."""
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.catalog", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

    consumer = await start_consumer()
    try:
        async with sync_stack(
            postgres_server, broker.bootstrap_servers, "kkill", catalog_consumes=False
        ) as s:
            product, buyer, orders = await s.new_product(stock=1000), user(), 40
            for _ in range(orders // 2):
                await s.place(buyer, product, 1)

            async def some_confirmed() -> bool:
                return "CONFIRMED" in await s.statuses(buyer)

            await eventually(some_confirmed, 60)
            consumer.send_signal(signal.SIGKILL)  # no drain, no final offset commit
            await consumer.wait()
            for _ in range(orders // 2):  # orders are still taken; their events wait in Kafka
                await s.place(buyer, product, 1)
            assert "PENDING" in await s.statuses(buyer)
            consumer = await start_consumer()
            assert await s.settled(buyer, orders, timeout=120) == ["CONFIRMED"] * orders
            assert await s.stock(product) == 1000 - orders
            conn = await asyncpg.connect(catalog_dsn)
            try:
                reserved = await conn.fetchval(
                    "SELECT count(*) FROM outbox WHERE key = $1", product
                )
            finally:
                await conn.close()
            assert reserved == orders  # one StockReserved per order: nothing applied twice
    finally:
        if consumer.returncode is None:
            consumer.terminate()
            await consumer.wait()
        stop_kafka(run_dir)
