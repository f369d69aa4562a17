"""Transactional outbox: write events with the data, publish them after the commit.

`add_event` runs inside the caller's transaction, so an event exists if and only if the change
it announces was committed. `OutboxRelay` publishes unsent rows in id order, and marks them
sent only after the broker acknowledged them: a crash between the two re-sends a row, which
consumers recognise by its event id. Nothing is lost; duplicates are harmless.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Protocol

import asyncpg
from opentelemetry import propagate, trace
from opentelemetry.context import Context

from services.common.events import Event
from services.common.kafka import Message
from services.common.types import DbConnection

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


_INSERT = "INSERT INTO outbox (event_id, topic, key, payload, headers) VALUES ($1, $2, $3, $4, $5)"


def _row(topic: str, key: str, event: Event, context: Context | None) -> tuple[object, ...]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    carrier["event-type"] = type(event).__name__
    carrier["schema-version"] = str(event.schema_version)
    return (event.event_id, topic, key, event.model_dump_json(), json.dumps(carrier))


async def add_event(conn: DbConnection, topic: str, key: str, event: Event) -> None:
    """Queue `event` in the current transaction, with the current trace context."""
    await conn.execute(_INSERT, *_row(topic, key, event, None))


async def add_events(conn: DbConnection, events: Sequence[tuple[str, str, Event, Context]]) -> None:
    """Queue (topic, key, event, trace context) rows in the current transaction, in one
    pipelined round trip; each row carries its own context (a consumer span per event)."""
    if events:
        await conn.executemany(_INSERT, [_row(*entry) for entry in events])


class Publisher(Protocol):
    """What the relay needs from a Kafka producer: send all, and wait for the broker's acks."""

    async def publish_all(self, messages: Sequence[Message]) -> None: ...


class OutboxRelay:
    def __init__(self, pool: asyncpg.Pool, publisher: Publisher, batch_size: int = 100) -> None:
        self.pool = pool
        self.publisher = publisher
        self.batch_size = batch_size
        self._wake = asyncio.Event()

    def kick(self) -> None:
        """Publish soon: called after a transaction that added events commits."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish one batch of unsent rows; returns how many were sent."""
        async with self.pool.acquire() as conn, conn.transaction():
            # SKIP LOCKED: replicas running their own relays share the backlog instead of
            # sending the same rows; a row stays locked until it is marked sent (or rolled back).
            rows = await conn.fetch(
                "SELECT id, topic, key, payload, headers FROM outbox WHERE sent_at IS NULL"
                " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.batch_size,
            )
            if rows:
                await self.publisher.publish_all([self._message(row) for row in rows])
                await conn.execute(
                    "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])",
                    [row["id"] for row in rows],
                )
        return len(rows)

    def _message(self, row: asyncpg.Record) -> Message:
        """The row as a Kafka message, with a producer span as the consumer's parent."""
        stored: dict[str, str] = json.loads(row["headers"])
        parent = propagate.extract(stored)
        with tracer.start_as_current_span(
            f"{row['topic']} publish", context=parent, kind=trace.SpanKind.PRODUCER
        ) as span:
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("messaging.destination.name", row["topic"])
            headers = dict(stored)
            propagate.inject(headers)  # this span becomes the consumer's parent
            return Message(
                row["topic"],
                row["key"],
                row["payload"].encode("utf-8"),
                [(name, value.encode("utf-8")) for name, value in headers.items()],
            )

    async def run(self, stop: asyncio.Event, idle_seconds: float = 0.5) -> None:
        """Relay until `stop`; on a broker or database failure, wait and try again."""
        backoff = idle_seconds
        while not stop.is_set():
            try:
                sent = await self.relay_once()
                backoff = idle_seconds
            except Exception as exc:  # broker down, DB restarting: the rows wait for us
                log.warning("outbox relay paused", extra={"error": f"{type(exc).__name__}: {exc}"})
                sent, backoff = 0, min(backoff * 2, 5.0)
            if sent:
                continue
            self._wake.clear()
            sleeper = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({sleeper, stopper}, timeout=backoff, return_when="FIRST_COMPLETED")
            sleeper.cancel()
            stopper.cancel()

    async def unsent(self) -> int:
        count: int = await self.pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        return count
