"""What the shop's databases and dead-letter topics hold at one moment of a chaos run.

Read straight from PostgreSQL and Kafka, not through the API: the checker compares what the
clients were told with what was really stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.common.events import DLQ_SUFFIX, TOPIC_PARTITIONS

# Keys of take_snapshot's `dsns`: the databases of the services that hold orders and stock.
ORDER_DB = "order-service"
CATALOG_DB = "catalog-service"
DLQ_TOPICS = tuple(topic for topic in TOPIC_PARTITIONS if topic.endswith(DLQ_SUFFIX))
SETTLED = frozenset({"CONFIRMED", "REJECTED"})
DLQ_READ_SECONDS = 30.0

# The order's Idempotency-Key is not a column of `orders`: it is the key whose stored first
# response is this order (idempotency_keys.response_body holds the 201 body). Columns are
# named as StoredOrder's fields.
_ORDERS = """
SELECT o.order_id::text AS order_id, o.user_id, o.status, o.product_id,
       o.qty AS quantity, k.idempotency_key
FROM orders o
LEFT JOIN idempotency_keys k
  ON k.user_id = o.user_id AND k.response_status = 201
 AND (k.response_body::jsonb ->> 'orderId') = o.order_id::text
"""


@dataclass(frozen=True)
class StoredOrder:
    order_id: str
    user_id: str
    status: str  # PENDING, CONFIRMED or REJECTED
    product_id: str
    quantity: int
    idempotency_key: str | None  # None: stored without a key

    @property
    def settled(self) -> bool:
        return self.status in SETTLED


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: str
    headers: dict[str, str]

    @property
    def position(self) -> tuple[str, int, int]:
        return self.topic, self.partition, self.offset


@dataclass(frozen=True)
class Snapshot:
    # An order created twice would need two ids; so one id per row and a dict are exact.
    orders: dict[str, StoredOrder] = field(default_factory=dict)
    stock: dict[str, int] = field(default_factory=dict)  # product id -> units left
    unsent_outbox: dict[str, int] = field(default_factory=dict)  # database -> unsent rows
    dead_letters: tuple[DeadLetter, ...] = ()
    taken_at: float = 0.0  # time.monotonic()


async def take_snapshot(dsns: Mapping[str, str], bootstrap_servers: str) -> Snapshot:
    """Orders from dsns[ORDER_DB], stock from dsns[CATALOG_DB], unsent outbox rows from every
    database that has an outbox, and every message in the dead-letter topics."""
    taken_at = time.monotonic()
    orders = await _orders(dsns[ORDER_DB])
    stock = await _stock(dsns[CATALOG_DB])
    unsent = {
        name: count for name, dsn in dsns.items() if (count := await _unsent(dsn)) is not None
    }
    dead = await read_dead_letters(bootstrap_servers)
    return Snapshot(orders, stock, unsent, dead, taken_at)


async def _orders(dsn: str) -> dict[str, StoredOrder]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(_ORDERS)
    finally:
        await conn.close()
    return {row["order_id"]: StoredOrder(**dict(row)) for row in rows}


async def _stock(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT product_id, stock FROM catalog")
    finally:
        await conn.close()
    return {row["product_id"]: row["stock"] for row in rows}


async def _unsent(dsn: str) -> int | None:
    """Outbox rows not yet marked sent; None for a database without an outbox."""
    conn = await asyncpg.connect(dsn)
    try:
        if await conn.fetchval("SELECT to_regclass('outbox')") is None:
            return None
        count: int = await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        return count
    finally:
        await conn.close()


async def read_dead_letters(bootstrap_servers: str) -> tuple[DeadLetter, ...]:
    """Every message of every DLQ topic, from the beginning to the end offsets read now.
    A topic that does not exist yet holds nothing."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        existing = await consumer.topics()
        # The partition counts the shop creates its topics with: a fresh consumer's
        # partitions_for_topic() answers None until it has fetched that topic's metadata,
        # which made an earlier version of this read see no dead letter at all.
        partitions = [
            TopicPartition(topic, p)
            for topic in DLQ_TOPICS
            if topic in existing
            for p in range(TOPIC_PARTITIONS[topic])
        ]
        if not partitions:
            return ()
        consumer.assign(partitions)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        # An explicit seek: after end_offsets(), aiokafka's seek_to_beginning() left the
        # position at the end here, so the read found nothing (checked on a real broker).
        for tp, first in (await consumer.beginning_offsets(partitions)).items():
            consumer.seek(tp, first)
        async with asyncio.timeout(DLQ_READ_SECONDS):
            return await _read_until(consumer, ends)
    finally:
        await consumer.stop()


async def _read_until(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]
) -> tuple[DeadLetter, ...]:
    found: list[DeadLetter] = []
    for tp, end in ends.items():
        # Log compaction or retention may leave gaps: position, not a count, says when done.
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=500)
            found += [_dead_letter(r) for r in batches.get(tp, []) if r.offset < end]
    return tuple(found)


def _dead_letter(record: ConsumerRecord) -> DeadLetter:
    headers = {name: value.decode("utf-8", "replace") for name, value in record.headers}
    key = (record.key or b"").decode("utf-8", "replace")
    return DeadLetter(record.topic, record.partition, record.offset, key, headers)
