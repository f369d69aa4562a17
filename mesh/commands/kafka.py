"""`meshmart kafka [up|down|status]`: the local single-node Apache Kafka broker (KRaft)."""

from __future__ import annotations

from pathlib import Path

from mesh.commands.component import Component
from mesh.kafka import KafkaError, running_kafka, start_kafka, stop_kafka
from mesh.kafka_proc import Layout
from mesh.maven import MavenError


def _up(run_dir: Path) -> str:
    broker = start_kafka(run_dir)
    return f"bootstrap servers: {broker.bootstrap_servers} (pid {broker.pid})"


def _status(run_dir: Path) -> str | None:
    broker = running_kafka(run_dir)
    if broker is None:
        return None
    return (
        f"Kafka running: {broker.bootstrap_servers}, pid {broker.pid}\n"
        f"  controller 127.0.0.1:{broker.controller_port}, log {Layout.of(run_dir).log}"
    )


KAFKA = Component(
    command="kafka",
    title="Kafka",
    help="start or stop the local Kafka broker",
    description="up (default): start a single-node Apache Kafka broker (KRaft) on 127.0.0.1, "
    "fetching its jars from Maven Central on first use. down: stop it. status: is it running.",
    errors=(KafkaError, MavenError, OSError),
    home=lambda run_dir: Layout.of(run_dir).root,
    log=lambda run_dir: Layout.of(run_dir).log,
    up=_up,
    down=stop_kafka,
    status=_status,
)
register = KAFKA.register
