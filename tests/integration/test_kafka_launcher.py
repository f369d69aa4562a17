"""The local Kafka launcher against a real broker (Apache Kafka jars from Maven Central, Java 17).

Also the aiokafka features the services rely on, against this broker version (Kafka 4 removed
old protocol versions): admin create_topics, idempotent produce, group join and manual commit.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from mesh.infra.kafka import (
    POM_DIR,
    KafkaBroker,
    TopicSpec,
    ensure_topics,
    kafka_libs,
    running_kafka,
    start_kafka,
    stop_kafka,
)
from mesh.infra.maven import fetch_jars
from tests.support.processes import listening_addresses, processes_using, quiet

pytestmark = pytest.mark.integration

HEADERS = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
           ("event-type", b"OrderCreated")]  # fmt: skip


def _topic() -> str:
    return f"launcher-{uuid.uuid4().hex[:8]}"


def _idempotent_producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")


async def _consume(bootstrap: str, topic: str, group: str, count: int) -> list[ConsumerRecord]:
    """`count` records read as member of `group` (manual commit), committed before returning."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    try:
        records: list[ConsumerRecord] = []
        async with asyncio.timeout(30):
            while len(records) < count:
                batches = await consumer.getmany(timeout_ms=500)
                records += [r for batch in batches.values() for r in batch]
        await consumer.commit()
        return records
    finally:
        await consumer.stop()


async def _read_all(bootstrap: str, topic: str, partitions: int, count: int) -> list[bytes]:
    """`count` values from the start of every partition, without a group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        values: list[bytes] = []
        async with asyncio.timeout(30):
            while len(values) < count:
                batches = await consumer.getmany(timeout_ms=500)
                values += [r.value for batch in batches.values() for r in batch]
        return values
    finally:
        await consumer.stop()


async def test_produce_and_consume_with_headers(kafka_broker: KafkaBroker) -> None:
    bootstrap, topic = kafka_broker.bootstrap_servers, _topic()
    spec = TopicSpec(topic, 3, {"retention.ms": "3600000"})
    assert await ensure_topics(bootstrap, [spec, TopicSpec(topic, 1)]) == [topic]
    assert await ensure_topics(bootstrap, [spec]) == []  # already there: a no-op

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert len(described["partitions"]) == 3
    assert {p["leader"] for p in described["partitions"]} == {1}

    producer = _idempotent_producer(bootstrap)
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(topic, f"order-{i}".encode(), key=b"P-1", headers=HEADERS)
    finally:
        await producer.stop()

    records = await _consume(bootstrap, topic, "launcher-group", 3)
    assert [r.value for r in records] == [b"order-0", b"order-1", b"order-2"]  # one key: in order
    assert {r.key for r in records} == {b"P-1"}
    assert all(list(r.headers) == HEADERS for r in records)
    # The group committed: a new member of it has nothing left to read.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="launcher-group")
    await consumer.start()
    try:
        tp = TopicPartition(topic, records[0].partition)
        assert await consumer.committed(tp) == 3
    finally:
        await consumer.stop()


def test_listens_only_on_loopback(kafka_broker: KafkaBroker) -> None:
    ports = {kafka_broker.port, kafka_broker.controller_port}
    # 127.0.0.1 only, nothing on 0.0.0.0 or ::
    assert listening_addresses(ports) == {("127.0.0.1", port) for port in ports}
    config = (kafka_broker.run_dir / "kafka" / "server.properties").read_text()
    assert f"advertised.listeners=PLAINTEXT://127.0.0.1:{kafka_broker.port}\n" in config


def test_second_start_returns_the_running_broker(kafka_broker: KafkaBroker) -> None:
    assert start_kafka(kafka_broker.run_dir, progress=quiet) == kafka_broker
    assert running_kafka(kafka_broker.run_dir) == kafka_broker


def test_jars_are_not_fetched_again(monkeypatch: pytest.MonkeyPatch) -> None:
    libs = kafka_libs(quiet)
    monkeypatch.setenv("PATH", "/nonexistent")  # no mvn (nor java): must not be needed
    assert fetch_jars(POM_DIR, libs, progress=pytest.fail) == libs
    assert any(libs.glob("kafka_2.13-4.*.jar"))


async def test_stop_and_restart_keep_port_data_and_group(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = start_kafka(run_dir, progress=quiet)
    try:
        bootstrap, topic = first.bootstrap_servers, _topic()
        await ensure_topics(bootstrap, [TopicSpec(topic, 2)])
        producer = _idempotent_producer(bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"before", key=b"k", headers=HEADERS)
            assert [r.value for r in await _consume(bootstrap, topic, "g", 1)] == [b"before"]

            assert stop_kafka(run_dir) is True
            assert processes_using(run_dir) == []  # nor a zombie: its /proc entry is gone
            assert not psutil.pid_exists(first.pid)
            assert running_kafka(run_dir) is None
            assert stop_kafka(run_dir) is False

            second = start_kafka(run_dir, progress=quiet)
            assert (second.port, second.controller_port) == (first.port, first.controller_port)
            assert second.pid != first.pid
            # The producer opened before the restart reconnects to the same address.
            await producer.send_and_wait(topic, b"after", key=b"k")
        finally:
            await producer.stop()
        assert await ensure_topics(bootstrap, [TopicSpec(topic, 2)]) == []  # data dir kept
        # The group resumes after its committed offset; the earlier record is still stored.
        assert [r.value for r in await _consume(bootstrap, topic, "g", 1)] == [b"after"]
        assert await _read_all(bootstrap, topic, 2, 2) == [b"before", b"after"]
    finally:
        stop_kafka(run_dir)
    assert processes_using(run_dir) == []
