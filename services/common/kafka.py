"""aiokafka adapters: an idempotent publisher for the outbox relay and DLQ, and its health.

The producer connects lazily and reconnects after failures, so a service starts (and keeps
taking orders into its outbox) while the broker is down, and catches up when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

log = logging.getLogger(__name__)

# Bound how long a relay transaction can wait on an unreachable broker before backing off.
REQUEST_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class Message:
    topic: str
    key: str
    value: bytes
    headers: list[tuple[str, bytes]]


class KafkaPublisher:
    def __init__(self, bootstrap_servers: str, client_id: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap_servers,
                    client_id=self.client_id,
                    enable_idempotence=True,  # broker drops resends of a batch: no duplicates
                    acks="all",
                    request_timeout_ms=REQUEST_TIMEOUT_MS,
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def publish(
        self, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        producer = await self._connected()
        try:
            await producer.send_and_wait(topic, value, key=key.encode("utf-8"), headers=headers)
        except Exception:
            await self._reset()
            raise

    async def publish_all(self, messages: Sequence[Message]) -> None:
        """Send every message, then wait for all the broker's acks: the producer packs what
        is queued for a partition into one request, instead of a round trip per message.
        Idempotence keeps each partition's order; any failure fails the whole call."""
        producer = await self._connected()
        try:
            sent = [
                await producer.send(m.topic, m.value, key=m.key.encode("utf-8"), headers=m.headers)
                for m in messages
            ]
            await asyncio.gather(*sent)
        except Exception:
            await self._reset()
            raise

    async def check(self) -> None:
        """Readiness: the broker answers a metadata request."""
        producer = await self._connected()
        await producer.client.fetch_all_metadata()

    async def _reset(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def stop(self) -> None:
        await self._reset()
