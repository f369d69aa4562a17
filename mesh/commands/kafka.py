"""`meshmart kafka [up|down|status]`: the local single-node Apache Kafka broker (KRaft)."""

from __future__ import annotations

from mesh.commands.component import Component
from mesh.infra.kafka import (
    KafkaBroker,
    KafkaError,
    KafkaFiles,
    running_kafka,
    start_kafka,
    stop_kafka,
)
from mesh.infra.maven import MavenError


def _describe(broker: KafkaBroker) -> str:
    return f"bootstrap servers {broker.bootstrap_servers}, controller {broker.controller_port}"


KAFKA = Component(
    command="kafka",
    title="Kafka",
    help="start or stop the local Kafka broker",
    description="up (default): start a single-node Apache Kafka broker (KRaft) on 127.0.0.1, "
    "fetching its jars from Maven Central on first use. down: stop it. status: is it running.",
    errors=(KafkaError, MavenError, OSError),
    files=KafkaFiles.of,
    start=start_kafka,
    stop=stop_kafka,
    running=running_kafka,
    describe=_describe,
)
register = KAFKA.register
