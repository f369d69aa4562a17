"""A Kafka consumer that commits only what it has durably applied, and never stalls.

Offsets are committed after the handler's database transaction committed, so a crash
re-delivers at most what was in flight (handlers are idempotent). A message that cannot be
decoded or validated, or whose handler fails for a non-transient reason, goes to
`<topic>.dlq` with the error, and the consumer moves on. Transient failures (database or
broker unreachable) pause the partition at that message and try it again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry import propagate, trace
from pydantic import BaseModel, TypeAdapter, ValidationError

from services.common.events import DLQ_SUFFIX
from services.common.kafka import KafkaPublisher

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

E = TypeVar("E", bound=BaseModel)
# Events of one batch applied at once; below the pool size, so requests still get connections.
PARALLEL = 4
TRANSIENT = (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)


class Retry(Exception):
    """Processing must be tried again later; nothing was committed for this message."""


class EventConsumer(Generic[E]):
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        group_id: str,
        topic: str,
        events: TypeAdapter[E],
        handle: Callable[[E], Awaitable[None]],
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
                for partition, messages in batches.items():
                    await self._process_batch(consumer, partition, messages)
                backoff = 0.5
            except (Retry, KafkaError, *TRANSIENT) as exc:
                log.warning("consumer paused", extra={"topic": self.topic, "error": repr(exc)})
                await _sleep_unless(stop, backoff)
                backoff = min(backoff * 2, 5.0)

    async def _process_batch(
        self, consumer: AIOKafkaConsumer, partition: TopicPartition, messages: list[ConsumerRecord]
    ) -> None:
        """Apply a fetched batch, up to PARALLEL events at once, then commit what is done.

        One event at a time left the consumer at ~50 events/s under HTTP load: each event's
        few database round trips queue behind the requests sharing the event loop. Applying
        several at once is safe because every handler is idempotent per event (a duplicate in
        the same batch waits on the first one's row lock, then changes nothing). On a Retry
        the offset stays at the first event not applied; events after it that were applied
        come again and are no-ops.
        """
        limit = asyncio.Semaphore(PARALLEL)

        async def one(message: ConsumerRecord) -> None:
            async with limit:
                await self._process(message)

        outcomes = await asyncio.gather(*(one(m) for m in messages), return_exceptions=True)
        failed = next((i for i, o in enumerate(outcomes) if isinstance(o, BaseException)), None)
        done = len(messages) if failed is None else failed
        if done:
            await consumer.commit({partition: messages[done - 1].offset + 1})
        if failed is not None:
            consumer.seek(partition, messages[failed].offset)
            raise outcomes[failed]  # type: ignore[misc]

    async def _process(self, message: ConsumerRecord) -> None:
        headers = {name: value.decode("utf-8", "replace") for name, value in message.headers}
        with tracer.start_as_current_span(
            f"{self.topic} process",
            context=propagate.extract(headers),
            kind=trace.SpanKind.CONSUMER,
        ) as span:
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("messaging.kafka.offset", message.offset)
            try:
                event = self.events.validate_json(message.value or b"")
            except (ValidationError, ValueError) as exc:
                await self._dead_letter(message, f"invalid event: {exc}")
                return
            try:
                await self.handle(event)
            except TRANSIENT as exc:
                raise Retry(repr(exc)) from exc
            except Exception as exc:
                log.exception("event handler failed", extra={"topic": self.topic})
                await self._dead_letter(message, f"handler failed: {type(exc).__name__}: {exc}")

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
