"""Kafka's side of the graph: each topic's end offsets and each consumer group's commits.

A group's lag on a partition is end offset minus committed offset (what `kafka-consumer-groups
--describe` prints as LAG); a topic's rate is how fast its end offsets grow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

Partition = tuple[str, int]


@dataclass(frozen=True)
class KafkaSnapshot:
    at: float
    end_offsets: dict[Partition, int] = field(default_factory=dict)
    committed: dict[str, dict[Partition, int]] = field(default_factory=dict)  # group -> offsets

    def topics(self) -> list[str]:
        return sorted({topic for topic, _ in self.end_offsets})

    def lag(self, group: str, topic: str) -> int:
        """Messages of `topic` the group has not committed yet (nothing committed: all)."""
        done = self.committed.get(group, {})
        return sum(
            max(0, end - done.get(partition, 0))
            for partition, end in self.end_offsets.items()
            if partition[0] == topic
        )

    def consumed_topics(self, group: str) -> list[str]:
        return sorted({topic for topic, _ in self.committed.get(group, {})})

    def messages(self, topic: str) -> int:
        return sum(end for (name, _), end in self.end_offsets.items() if name == topic)


class KafkaReader:
    """One admin client and one offset-reading consumer, opened on first use."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap_servers, request_timeout_ms=3000
            )
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                enable_auto_commit=False,
                request_timeout_ms=3000,
            )
            await admin.start()
            await consumer.start()
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def read(self) -> KafkaSnapshot:
        """KafkaError or OSError if the broker is away; the next read reconnects."""
        try:
            admin, consumer = await self._clients()
            topics = [t for t in await admin.list_topics() if not t.startswith("__")]
            partitions = [
                TopicPartition(topic["topic"], p["partition"])
                for topic in await admin.describe_topics(topics)
                for p in topic["partitions"]
            ]
            ends = await consumer.end_offsets(partitions) if partitions else {}
            committed: dict[str, dict[Partition, int]] = {}
            for group, *_ in await admin.list_consumer_groups():
                offsets = await admin.list_consumer_group_offsets(group)
                committed[group] = {
                    (tp.topic, tp.partition): meta.offset
                    for tp, meta in offsets.items()
                    if meta.offset >= 0
                }
        except BaseException:
            await self.close()
            raise
        return KafkaSnapshot(
            time.monotonic(),
            {(tp.topic, tp.partition): end for tp, end in ends.items()},
            committed,
        )

    async def close(self) -> None:
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()
