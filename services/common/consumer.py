"""A Kafka consumer that commits only what it has durably applied, and never stalls.

Each fetched batch of a partition goes to the handler at once, so the handler can apply it in
one transaction (a handful of round trips for the batch instead of a few per event). Offsets
are committed after that transaction committed, so a crash re-delivers at most what was in
flight (handlers are idempotent). A message that cannot be decoded or validated goes to
`<topic>.dlq` with the error; when a batch fails for a non-transient reason, its events are
applied one by one and only the one that fails goes to the DLQ, and the consumer moves on.
Transient failures (database or broker unreachable) pause the partition at the batch's first
message and try again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from pydantic import BaseModel, TypeAdapter, ValidationError

from services.common.db_errors import DATABASE_UNAVAILABLE, database_unavailable
from services.common.events import DLQ_SUFFIX
from services.common.kafka import KafkaPublisher

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

E = TypeVar("E", bound=BaseModel)
# Unreachable broker or database: the batch is tried again later, never dead-lettered. The
# database's list is the one the HTTP middleware answers 503 for; a PostgreSQL restart used to
# send every event in flight to the DLQ with "CannotConnectNowError: the database system is
# shutting down", leaving their orders PENDING (found by the chaos run).
TRANSIENT = (OSError, asyncio.TimeoutError, *DATABASE_UNAVAILABLE)


class Retry(Exception):
    """Processing must be tried again later; nothing was committed for this message."""


@dataclass(frozen=True)
class Delivery(Generic[E]):
    """One event of a batch, and the trace context of its own consumer span: events a
    handler writes for it (outbox rows) carry that context, so each trace goes on."""

    event: E
    context: otel_context.Context


Handler = Callable[[Sequence[Delivery[E]]], Awaitable[None]]


class EventConsumer(Generic[E]):
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        group_id: str,
        topic: str,
        events: TypeAdapter[E],
        handle: Handler[E],
        dlq: KafkaPublisher,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self.topic = topic
        self.events = events
        self.handle = handle
        self.dlq = dlq
        self._consumer: AIOKafkaConsumer | None = None

    async def _connected(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                self.topic,
                bootstrap_servers=self.bootstrap_servers,
                group_id=self.group_id,
                client_id=self.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            try:
                await consumer.start()
            except BaseException:
                await consumer.stop()
                raise
            self._consumer = consumer
        return self._consumer

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                consumer = await self._connected()
                batches = await consumer.getmany(timeout_ms=500, max_records=100)
                await self._process_fetched(consumer, batches)
                backoff = 0.5
            except (Retry, KafkaError, *TRANSIENT) as exc:
                log.warning("consumer paused", extra={"topic": self.topic, "error": repr(exc)})
                await _sleep_unless(stop, backoff)
                backoff = min(backoff * 2, 5.0)

    async def _process_fetched(
        self,
        consumer: AIOKafkaConsumer,
        batches: dict[TopicPartition, list[ConsumerRecord]],
    ) -> None:
        """Each partition's batch in turn. When one fails, every batch not yet committed goes
        back to its first offset: getmany() already moved those partitions past them, and a
        later commit there would skip them for good (found by the chaos run: an order left
        PENDING because its event, fetched beside a batch that met a PostgreSQL restart,
        was never applied)."""
        committed: set[TopicPartition] = set()
        try:
            for partition, messages in batches.items():
                await self._process_batch(consumer, partition, messages)
                committed.add(partition)
        except BaseException:
            for partition, messages in batches.items():
                if partition not in committed:
                    consumer.seek(partition, messages[0].offset)
            raise

    async def _process_batch(
        self, consumer: AIOKafkaConsumer, partition: TopicPartition, messages: list[ConsumerRecord]
    ) -> None:
        """Apply a fetched batch, then commit its last offset.

        One event at a time, each in its own transaction, left the stock sync at ~120 events/s
        on this machine: events for one product serialise on its row lock, and each held it
        for several round trips. On a Retry nothing is committed and the partition goes back
        to the batch's first offset: what was applied comes again and changes nothing (a
        poison message before the failure may reach the DLQ twice).
        """
        try:
            await self._apply_batch(messages)
        except Retry:
            consumer.seek(partition, messages[0].offset)
            raise
        await consumer.commit({partition: messages[-1].offset + 1})

    async def _apply_batch(self, messages: list[ConsumerRecord]) -> None:
        valid: list[tuple[ConsumerRecord, E]] = []
        for message in messages:
            try:
                valid.append((message, self.events.validate_json(message.value or b"")))
            except (ValidationError, ValueError) as exc:
                with trace.use_span(self._span(message), end_on_exit=True):
                    await self._dead_letter(message, f"invalid event: {exc}")
        if not valid:
            return
        try:
            await self._apply(valid)
        except Retry:
            raise
        except Exception:
            log.warning("batch failed: applying its events one by one", exc_info=True)
            for one in valid:
                try:
                    await self._apply([one])
                except Retry:
                    raise
                except Exception as exc:
                    log.exception("event handler failed", extra={"topic": self.topic})
                    await self._dead_letter(one[0], f"handler failed: {type(exc).__name__}: {exc}")

    async def _apply(self, batch: list[tuple[ConsumerRecord, E]]) -> None:
        """The handler over `batch`, each event under its own consumer span."""
        spans = [self._span(message) for message, _ in batch]
        deliveries = [
            Delivery(event, trace.set_span_in_context(span))
            for (_, event), span in zip(batch, spans, strict=True)
        ]
        try:
            await self.handle(deliveries)
        except Exception as exc:
            if isinstance(exc, OSError | asyncio.TimeoutError) or database_unavailable(exc):
                raise Retry(repr(exc)) from exc
            raise
        finally:
            for span in spans:
                span.end()

    def _span(self, message: ConsumerRecord) -> trace.Span:
        """The message's consumer span, a child of the producer span in its headers."""
        headers = {name: value.decode("utf-8", "replace") for name, value in message.headers}
        span = tracer.start_span(
            f"{self.topic} process",
            context=propagate.extract(headers),
            kind=trace.SpanKind.CONSUMER,
        )
        span.set_attribute("messaging.system", "kafka")
        span.set_attribute("messaging.kafka.offset", message.offset)
        return span

    async def _dead_letter(self, message: ConsumerRecord, error: str) -> None:
        log.warning(
            "event sent to the dead-letter topic",
            extra={"topic": self.topic, "offset": message.offset, "error": error[:500]},
        )
        headers = [
            *message.headers,
            ("dlq-error", error[:2000].encode("utf-8")),
            ("dlq-source-topic", self.topic.encode()),
            ("dlq-source-partition", str(message.partition).encode()),
            ("dlq-source-offset", str(message.offset).encode()),
        ]
        key = (message.key or b"").decode("utf-8", "replace")
        try:
            await self.dlq.publish(self.topic + DLQ_SUFFIX, key, message.value or b"", headers)
        except KafkaError as exc:
            raise Retry(f"dead-letter publish failed: {exc!r}") from exc

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
