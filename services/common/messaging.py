"""Kafka for a service app: the outbox relay and one consumer, started and drained with it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, TypeAdapter

from services.common.consumer import EventConsumer, Handler
from services.common.db import DB_POOL
from services.common.health import READINESS_CHECKS
from services.common.kafka import KafkaPublisher
from services.common.outbox import OutboxRelay
from services.common.settings import ServiceSettings
from services.common.types import CleanupContext

log = logging.getLogger(__name__)

OUTBOX_RELAY = web.AppKey("outbox_relay", OutboxRelay)
E = TypeVar("E", bound=BaseModel)
DRAIN_SECONDS = 5.0


def kick_relay(app: web.Application) -> None:
    """After a commit that added outbox rows: publish now rather than at the next poll."""
    relay = app.get(OUTBOX_RELAY)
    if relay is not None:
        relay.kick()


def messaging_context(
    settings: ServiceSettings,
    *,
    topic: str,
    events: TypeAdapter[E],
    handler: Callable[[web.Application], Handler[E]],
) -> CleanupContext:
    """Relay this service's outbox and consume `topic` with `handler(app)`, if Kafka is set."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        if not settings.kafka_bootstrap_servers:
            log.warning("Kafka not configured: events wait in the outbox until it is")
            yield
            return
        publisher = KafkaPublisher(settings.kafka_bootstrap_servers, settings.service_name)
        relay = OutboxRelay(app[DB_POOL], publisher)
        consumer = EventConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.service_name,
            topic=topic,
            events=events,
            handle=handler(app),
            dlq=publisher,
        )
        app[OUTBOX_RELAY] = relay
        app[READINESS_CHECKS]["kafka"] = publisher.check
        stop = asyncio.Event()
        tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(consumer.run(stop))]
        yield
        stop.set()
        await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
        for task in tasks:
            task.cancel()
        # Last flush of what requests committed while we were draining; what is left stays
        # in the outbox for the next start.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(relay.relay_once(), DRAIN_SECONDS)
        await consumer.stop()
        await publisher.stop()

    return context
