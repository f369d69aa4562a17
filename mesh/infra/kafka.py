"""A real single-node Apache Kafka broker (KRaft: broker and controller in one JVM) on 127.0.0.1.

Jars come from Maven Central (mesh/infra/jars/kafka/pom.xml, fetched once into .cache/kafka/).
The broker runs from <run_dir>/kafka/ with mesh.infra.jvm's launcher: besides the launcher's
kafka.log, kafka.port ("<port> <controller port>") and kafka.pid, it keeps data/ (log.dirs and
the KRaft metadata log), server.properties and log4j2.properties (generated on each start).
Its class-data archive is .cache/kafka/libs-<pom>-<jdk>.jsa.

start_kafka and stop_kafka block (a few seconds); from async code they may be called directly
(readiness uses its own event loop in a thread) or through asyncio.to_thread.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError as ClientError
from aiokafka.errors import TopicAlreadyExistsError, for_code

from mesh import paths
from mesh.infra.jvm import JvmFiles, JvmServer, Launch, heap_options
from mesh.infra.maven import MavenError, fetch_jars, pom_digest
from mesh.paths import JARS_DIR
from mesh.runtime.ports import accepts

__all__ = [
    "KafkaBroker",
    "KafkaError",
    "KafkaFiles",
    "TopicSpec",
    "ensure_topics",
    "kafka_libs",
    "running_kafka",
    "start_kafka",
    "stop_kafka",
]

POM_DIR = JARS_DIR / "kafka"
CACHE_DIR = paths.CACHE_DIR / "kafka"
_T = TypeVar("_T")


class KafkaError(RuntimeError):
    """Fetching, starting, stopping or reaching the local Kafka broker failed."""


@dataclass(frozen=True)
class KafkaBroker:
    run_dir: Path
    port: int
    controller_port: int
    pid: int

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class KafkaFiles(JvmFiles):
    """The launcher's files plus the broker's own: everything lives in <run_dir>/kafka/."""

    @classmethod
    def of(cls, run_dir: Path) -> KafkaFiles:
        return cls(run_dir.resolve() / "kafka")

    @property
    def data(self) -> Path:  # log.dirs, and the KRaft metadata log (__cluster_metadata-0)
        return self.root / "data"

    @property
    def config(self) -> Path:  # server.properties, generated on each start
        return self.root / "server.properties"

    @property
    def log4j(self) -> Path:
        return self.root / "log4j2.properties"

    @property
    def formatted(self) -> bool:
        return (self.data / "meta.properties").is_file()


def kafka_libs(progress: Callable[[str], None] = print) -> Path:
    """The broker's jars (fetched with Maven on first use), one folder per version of the pom."""
    try:
        return fetch_jars(POM_DIR, CACHE_DIR / f"libs-{pom_digest(POM_DIR)[:12]}", progress)
    except MavenError as exc:
        raise KafkaError(str(exc)) from exc


class _Kafka(JvmServer[KafkaFiles, KafkaBroker]):
    name = "Kafka"
    error = KafkaError
    port_count = 2  # clients, controller

    def __init__(self, heap: str = "512m") -> None:
        self.heap = heap
        _check_heap(heap)  # a bad value fails before anything is done

    def files(self, run_dir: Path) -> KafkaFiles:
        return KafkaFiles.of(run_dir)

    def is_own(self, argv: list[str], files: KafkaFiles) -> bool:
        return "kafka.Kafka" in argv and str(files.config) in argv

    def server(self, files: KafkaFiles, ports: tuple[int, ...], pid: int) -> KafkaBroker:
        return KafkaBroker(files.root.parent, ports[0], ports[1], pid)

    def address(self, server: KafkaBroker) -> str:
        return server.bootstrap_servers

    def ready(self, server: KafkaBroker) -> bool:
        """Accepts connections and lists itself in a metadata response. A TCP connect first:
        the broker opens its listener only once it is ready to serve, and aiokafka logs an
        error for every refused connection."""
        return accepts(server.port) and _run(lambda: _lists_itself(server))

    def launch(
        self,
        files: KafkaFiles,
        ports: tuple[int, ...],
        java: str,
        progress: Callable[[str], None],
    ) -> Launch:
        libs = kafka_libs(progress)
        classpath = os.pathsep.join(str(j) for j in sorted(libs.glob("*.jar")))
        files.data.mkdir(parents=True, exist_ok=True)
        files.log4j.write_text(LOG4J2_PROPERTIES)
        files.config.write_text(server_properties(files, *ports))
        base = [f"-Dlog4j2.configurationFile={files.log4j}", "-cp", classpath]
        if not files.formatted:
            _format(files, java, base, progress)
        return Launch(
            options=heap_options(self.heap),
            main=[*base, "kafka.Kafka", str(files.config)],
            classes=libs,
            title=f"Kafka {_version(libs)} on 127.0.0.1:{ports[0]} (controller {ports[1]})",
        )


def running_kafka(run_dir: Path) -> KafkaBroker | None:
    """The broker of `run_dir` if its JVM is alive (it may still be starting), else None."""
    return _Kafka().running(run_dir)


def start_kafka(
    run_dir: Path,
    *,
    port: int | None = None,
    progress: Callable[[str], None] = print,
    heap: str = "512m",
) -> KafkaBroker:
    """Start the broker of `run_dir` (formatting its storage the first time), or return the one
    already running; returns once it answers metadata requests. Raises KafkaError."""
    return _Kafka(heap).start(run_dir, port=port, progress=progress)


def stop_kafka(run_dir: Path, timeout: float = 30) -> bool:
    """Stop the broker of `run_dir` (SIGTERM: controlled shutdown; SIGKILL after `timeout`).
    Returns False if it was not running."""
    return _Kafka().stop(run_dir, timeout)


def server_properties(files: KafkaFiles, port: int, controller_port: int) -> str:
    """A single-node KRaft broker+controller on 127.0.0.1 only."""
    return f"""\
# Generated by meshmart (mesh/infra/kafka.py) on every start: edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={files.data}
# One broker: every internal topic has a single replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
num.partitions=3
# meshmart creates its topics explicitly (mesh.infra.kafka.ensure_topics).
auto.create.topics.enable=false
# After a crash (kill -9), the restarted broker cannot register until the controller has
# fenced its old registration: 9 s by default. Heartbeats are cheap on loopback.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
# Consumers join at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
"""


# Root level from -Dmeshmart.log.level (the storage tool runs at WARN); config dumps only at WARN.
LOG4J2_PROPERTIES = """\
status = warn
# Keep logging through the broker's own shutdown (log4j would stop at the first hook).
shutdownHook = disable
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${sys:meshmart.log.level:-INFO}
rootLogger.appenderRef.out.ref = STDOUT
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
"""


def _check_heap(heap: str) -> None:
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", heap)
    if match is None:
        raise KafkaError(f"heap {heap!r}: expected a size like 512m or 1g")
    scale = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[match.group(2).lower()]
    if int(match.group(1)) * scale < 64 * 2**20:
        raise KafkaError(f"heap {heap!r}: the broker needs at least 64m")


def _version(libs: Path) -> str:
    jar = next(libs.glob("kafka_2.13-*.jar"), None)
    return jar.name.removeprefix("kafka_2.13-").removesuffix(".jar") if jar else "?"


def _cluster_id() -> str:
    """A random cluster id in Kafka's Uuid form (url-safe base64, 22 chars, no leading '-')."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _format(files: KafkaFiles, java: str, base: list[str], progress: Callable[[str], None]) -> None:
    cluster_id = _cluster_id()
    progress(f"formatting Kafka storage in {files.data} (cluster id {cluster_id})")
    cmd = [java, "-Dmeshmart.log.level=WARN", *base, "kafka.tools.StorageTool", "format",
           "--cluster-id", cluster_id, "--config", str(files.config)]  # fmt: skip
    result = subprocess.run(
        cmd, cwd=files.root, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    if result.returncode != 0 or not files.formatted:
        output = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise KafkaError(f"formatting Kafka storage in {files.data} failed:\n{output}")


async def _lists_itself(broker: KafkaBroker) -> bool:
    client = AIOKafkaClient(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=5000)
    try:
        await client.bootstrap()
        return any(b.port == broker.port for b in client.cluster.brokers())
    except ClientError:
        return False
    finally:
        await client.close()


def _run(make: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to completion from sync code, even if this thread's loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kafka-ready") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", self.name) or self.name in {".", ".."}:
            raise ValueError(f"invalid Kafka topic name {self.name!r}")
        if self.partitions < 1:
            raise ValueError(f"topic {self.name}: partitions must be >= 1")


async def ensure_topics(bootstrap: str, topics: Iterable[TopicSpec]) -> list[str]:
    """Create each topic that does not exist yet (replication factor 1); returns those created.
    Existing topics are left as they are."""
    specs: dict[str, TopicSpec] = {}
    for topic in topics:
        specs.setdefault(topic.name, topic)  # the first spec of a name wins
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in specs.values() if t.name not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(t.name, t.partitions, 1, topic_configs=dict(t.config)) for t in missing]
        )
    finally:
        await admin.close()
    # (name, error_code[, error_message]) per topic, depending on the response version
    failed = {entry[0]: entry for entry in response.topic_errors if entry[1] != 0}
    for name, code, *message in failed.values():
        if code != TopicAlreadyExistsError.errno:  # created concurrently: fine
            detail = f": {message[0]}" if message and message[0] else ""
            raise KafkaError(
                f"creating Kafka topic {name} failed: {for_code(code).__name__}{detail}"
            )
    return [t.name for t in missing if t.name not in failed]
