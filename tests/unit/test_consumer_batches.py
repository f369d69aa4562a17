"""EventConsumer's batches, with a fake broker: one handler call per fetched batch, the
poison event alone in the DLQ, a transient failure rewinding the whole batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import BaseModel, TypeAdapter

from services.common.consumer import Delivery, EventConsumer, Retry
from services.common.kafka import KafkaPublisher

TOPIC = "order-events"
PARTITION = TopicPartition(TOPIC, 0)


class Placed(BaseModel):
    n: int


class FakeConsumer:
    def __init__(self) -> None:
        self.committed: dict[TopicPartition, int] = {}
        self.position: int | None = None
        self.positions: dict[TopicPartition, int] = {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.update(offsets)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.position = offset
        self.positions[partition] = offset


class FakeDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def publish(
        self, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        self.sent.append((topic, value))


def record(offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, b"k", value, None, 1, len(value), [])


def batch(*values: bytes, first: int = 10) -> list[ConsumerRecord[bytes, bytes]]:
    return [record(first + i, v) for i, v in enumerate(values)]


class Harness:
    def __init__(self, fail_on: int | None = None, error: Exception | None = None) -> None:
        self.calls: list[list[int]] = []
        self.fail_on, self.error = fail_on, error
        self.dlq = FakeDeadLetters()
        self.broker = FakeConsumer()
        self.consumer = EventConsumer(
            bootstrap_servers="unused:9092", group_id="test", topic=TOPIC,
            events=TypeAdapter(Placed), handle=self.handle,
            dlq=cast(KafkaPublisher, self.dlq),
        )  # fmt: skip

    async def handle(self, deliveries: Sequence[Delivery[Placed]]) -> None:
        numbers = [d.event.n for d in deliveries]
        self.calls.append(numbers)
        if self.fail_on in numbers and self.error is not None:
            raise self.error

    async def process(self, messages: list[ConsumerRecord[bytes, bytes]]) -> None:
        broker = cast(AIOKafkaConsumer, self.broker)
        await self.consumer._process_batch(broker, PARTITION, cast(Any, messages))


async def test_a_fetched_batch_is_one_handler_call_then_one_commit() -> None:
    h = Harness()
    await h.process(batch(b'{"n": 1}', b'{"n": 2}', b'{"n": 3}'))
    assert h.calls == [[1, 2, 3]]
    assert h.broker.committed == {PARTITION: 13}
    assert h.dlq.sent == []


async def test_an_undecodable_message_goes_to_the_dlq_and_the_rest_is_applied() -> None:
    h = Harness()
    await h.process(batch(b'{"n": 1}', b"\x00not json", b'{"n": 3}'))
    assert h.calls == [[1, 3]]
    assert h.dlq.sent == [(TOPIC + ".dlq", b"\x00not json")]
    assert h.broker.committed == {PARTITION: 13}


async def test_a_failing_event_is_found_alone_and_only_it_is_dead_lettered() -> None:
    h = Harness(fail_on=2, error=ValueError("bad event"))
    await h.process(batch(b'{"n": 1}', b'{"n": 2}', b'{"n": 3}'))
    assert h.calls == [[1, 2, 3], [1], [2], [3]]  # the batch, then one by one
    assert h.dlq.sent == [(TOPIC + ".dlq", b'{"n": 2}')]
    assert h.broker.committed == {PARTITION: 13}


async def test_a_transient_failure_rewinds_the_whole_batch_and_commits_nothing() -> None:
    h = Harness(fail_on=2, error=OSError("database restarting"))
    with pytest.raises(Retry):
        await h.process(batch(b'{"n": 1}', b'{"n": 2}', b'{"n": 3}'))
    assert h.calls == [[1, 2, 3]]
    assert h.broker.position == 10 and h.broker.committed == {}
    assert h.dlq.sent == []


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.exceptions.InternalClientError("unexpected message"),
    ],
    ids=type,
)
async def test_a_database_restart_rewinds_the_batch_instead_of_dead_lettering(
    error: Exception,
) -> None:
    """What a PostgreSQL fast restart raises mid-batch (found by the chaos run, which saw
    every event in flight dead-lettered and its order left PENDING)."""
    h = Harness(fail_on=2, error=error)
    with pytest.raises(Retry):
        await h.process(batch(b'{"n": 1}', b'{"n": 2}', b'{"n": 3}'))
    assert h.calls == [[1, 2, 3]]
    assert h.broker.position == 10 and h.broker.committed == {}
    assert h.dlq.sent == []


async def test_a_mistake_in_the_code_is_not_retried_for_ever() -> None:
    """asyncpg's DataError (a wrong argument type) is an InterfaceError but no lost
    connection: the event goes to the DLQ and the partition moves on."""
    h = Harness(fail_on=2, error=asyncpg.exceptions.DataError("invalid input for query argument"))
    await h.process(batch(b'{"n": 1}', b'{"n": 2}', b'{"n": 3}'))
    assert h.dlq.sent == [(TOPIC + ".dlq", b'{"n": 2}')]
    assert h.broker.committed == {PARTITION: 13}


async def test_a_retry_sends_every_uncommitted_partition_back_not_only_the_failing_one() -> None:
    """getmany() returns batches of several partitions and moves past all of them: when one
    batch must be retried, the batches after it were not applied and must come again."""
    h = Harness(fail_on=2, error=asyncpg.CannotConnectNowError("shutting down"))
    first, second, third = (TopicPartition(TOPIC, p) for p in range(3))
    fetched = {
        first: batch(b'{"n": 1}', first=5),
        second: batch(b'{"n": 2}', first=20),  # meets the database restart
        third: batch(b'{"n": 3}', first=40),  # never reached
    }
    broker = cast(AIOKafkaConsumer, h.broker)
    with pytest.raises(Retry):
        await h.consumer._process_fetched(broker, cast(Any, fetched))
    assert h.broker.committed == {first: 6}
    assert h.broker.positions == {second: 20, third: 40}
    assert h.calls == [[1], [2]] and h.dlq.sent == []
