"""A real single-node Apache Kafka broker (KRaft: broker and controller in one JVM) on 127.0.0.1.

Jars come from Maven Central (mesh/jars/kafka/pom.xml, fetched once into .cache/kafka/).
Layout of one broker, <run_dir>/kafka/: data/ (log.dirs and the KRaft metadata log),
server.properties (generated on each start), kafka.log (the JVM's output), kafka.port (the ports,
reused by the next start so clients reconnect to the same address), kafka.pid.
The JVM is tuned to start fast on a small machine (serial GC, C1 only, and an AppCDS archive
of the broker's classes, .cache/kafka/libs-<pom>-<jdk>.jsa, written by the first graceful stop).

start_kafka and stop_kafka block (a few seconds); from async code they may be called directly
(they use their own event loop in a thread) or through asyncio.to_thread.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError as ClientError
from aiokafka.errors import TopicAlreadyExistsError, for_code

from mesh import kafka_proc as proc
from mesh import paths
from mesh.kafka_proc import KafkaError, Layout
from mesh.maven import MavenError, fetch_jars, find_java, pom_digest
from mesh.paths import JARS_DIR

__all__ = [
    "KafkaBroker",
    "KafkaError",
    "TopicSpec",
    "ensure_topics",
    "kafka_libs",
    "running_kafka",
    "start_kafka",
    "stop_kafka",
]

POM_DIR = JARS_DIR / "kafka"
CACHE_DIR = paths.CACHE_DIR / "kafka"
_START_TIMEOUT = 60.0
_T = TypeVar("_T")


@dataclass(frozen=True)
class KafkaBroker:
    run_dir: Path
    port: int
    controller_port: int
    pid: int

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"


def kafka_libs(progress: Callable[[str], None] = print) -> Path:
    """The broker's jars (fetched with Maven on first use), one folder per version of the pom."""
    try:
        return fetch_jars(POM_DIR, CACHE_DIR / f"libs-{pom_digest(POM_DIR)[:12]}", progress)
    except MavenError as exc:
        raise KafkaError(str(exc)) from exc


def running_kafka(run_dir: Path) -> KafkaBroker | None:
    """The broker of `run_dir` if its JVM is alive (it may still be starting), else None."""
    layout = Layout.of(run_dir)
    pid = proc.read_pid(layout)
    if pid is None or not proc.is_broker(pid, layout):
        return None
    ports = proc.read_ports(layout)
    if ports is None:
        raise KafkaError(f"Kafka (pid {pid}) is running but {layout.port_file} is unreadable")
    return KafkaBroker(run_dir.resolve(), ports[0], ports[1], pid)


def start_kafka(
    run_dir: Path,
    *,
    port: int | None = None,
    progress: Callable[[str], None] = print,
    heap: str = "512m",
) -> KafkaBroker:
    """Start the broker of `run_dir` (formatting its storage the first time), or return the one
    already running; returns once it answers metadata requests. Raises KafkaError."""
    layout = Layout.of(run_dir)
    _initial_heap(heap)  # a bad value fails before anything is done
    with layout.locked():
        broker = running_kafka(run_dir)
        if broker is not None:  # possibly still starting (an interrupted start_kafka)
            if port is not None and port != broker.port:
                raise KafkaError(
                    f"Kafka is already running on {broker.bootstrap_servers}, not on port {port}"
                    f" (pid {broker.pid}); stop it first"
                )
            offset = layout.log.stat().st_size if layout.log.exists() else 0
            _wait_ready(broker, layout, offset, began=time.monotonic())
            progress(f"Kafka already running on {broker.bootstrap_servers} (pid {broker.pid})")
            return broker
        return _start(layout, port, progress, heap)


def _start(
    layout: Layout, port: int | None, progress: Callable[[str], None], heap: str
) -> KafkaBroker:
    libs = kafka_libs(progress)
    try:
        java = find_java()
    except MavenError as exc:
        raise KafkaError(str(exc)) from exc
    classpath = os.pathsep.join(str(j) for j in sorted(libs.glob("*.jar")))
    chosen, controller = _choose_ports(layout, port, progress)
    layout.data.mkdir(parents=True, exist_ok=True)
    layout.log4j.write_text(proc.LOG4J2_PROPERTIES)
    layout.config.write_text(proc.server_properties(layout, chosen, controller))
    layout.port_file.write_text(f"{chosen} {controller}\n")
    base = [java, f"-Dlog4j2.configurationFile={layout.log4j}", "-cp", classpath]
    if not layout.formatted:
        _format(layout, base, progress)

    proc.rotate_log(layout)
    jvm = [
        java, f"-Xmx{heap}", *_initial_heap(heap), "-XX:+UseSerialGC",
        # C1 only: half the start time; plenty for a local broker.
        "-XX:TieredStopAtLevel=1", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
        # IPv4 sockets: 127.0.0.1, not the IPv4-mapped ::ffff:127.0.0.1 of a dual-stack one.
        "-Djava.net.preferIPv4Stack=true",
    ]  # fmt: skip
    main = [*base[1:], "kafka.Kafka", str(layout.config)]
    progress(f"starting Kafka {_version(libs)} on 127.0.0.1:{chosen} (controller {controller})")
    began = time.monotonic()
    while True:
        cds = proc.cds_options(layout, libs, java)
        broker, offset = _launch(layout, [*jvm, *cds, *main], chosen, controller)
        try:
            _wait_ready(broker, layout, offset, began)
        except BaseException as exc:
            _terminate(layout, broker.pid, timeout=10, keep_cds=False)  # a partial run's archive
            archive = proc.shared_archive(cds)
            if not (isinstance(exc, _Exited) and archive and proc.jvm_crashed(layout.log, offset)):
                raise
            # A damaged class-data archive makes the JVM crash (SIGBUS) instead of ignoring it.
            progress(f"removing the unusable class-data archive {archive} and starting again")
            archive.unlink(missing_ok=True)
            continue
        break
    progress(f"Kafka ready on {broker.bootstrap_servers} ({time.monotonic() - began:.1f} s)")
    return broker


def _launch(
    layout: Layout, cmd: list[str], port: int, controller_port: int
) -> tuple[KafkaBroker, int]:
    """Start the JVM with its output appended to kafka.log; returns the broker and log offset."""
    with layout.log.open("ab") as log:
        offset = log.tell()
        child = subprocess.Popen(
            cmd, cwd=layout.root, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # not hit by the terminal's Ctrl-C; stop_kafka stops it
        )  # fmt: skip
    proc.CHILDREN[child.pid] = child
    layout.pid_file.write_text(f"{child.pid}\n")
    return KafkaBroker(layout.root.parent, port, controller_port, child.pid), offset


def _initial_heap(heap: str) -> list[str]:
    """-Xms64m when the heap allows: the JVM's default (1/64 of RAM) only inflates the RSS."""
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", heap)
    if match is None:
        raise KafkaError(f"heap {heap!r}: expected a size like 512m or 1g")
    scale = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[match.group(2).lower()]
    return ["-Xms64m"] if int(match.group(1)) * scale >= 64 * 2**20 else []


def _version(libs: Path) -> str:
    jar = next(libs.glob("kafka_2.13-*.jar"), None)
    return jar.name.removeprefix("kafka_2.13-").removesuffix(".jar") if jar else "?"


def _choose_ports(
    layout: Layout, port: int | None, progress: Callable[[str], None]
) -> tuple[int, int]:
    remembered = proc.read_ports(layout)
    if port is not None:
        if not proc.port_is_free(port):
            raise KafkaError(f"127.0.0.1:{port} is already in use")
        chosen = port
    elif remembered is not None and proc.port_is_free(remembered[0]):
        chosen = remembered[0]
    else:
        chosen = proc.free_port()
        if remembered is not None:
            progress(f"Kafka's earlier port {remembered[0]} is taken; using {chosen}")
    if remembered is not None and remembered[1] != chosen and proc.port_is_free(remembered[1]):
        return chosen, remembered[1]
    controller = proc.free_port()
    while controller == chosen:
        controller = proc.free_port()
    return chosen, controller


def _cluster_id() -> str:
    """A random cluster id in Kafka's Uuid form (url-safe base64, 22 chars, no leading '-')."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _format(layout: Layout, base: list[str], progress: Callable[[str], None]) -> None:
    cluster_id = _cluster_id()
    progress(f"formatting Kafka storage in {layout.data} (cluster id {cluster_id})")
    cmd = [base[0], "-Dmeshmart.log.level=WARN", *base[1:], "kafka.tools.StorageTool", "format",
           "--cluster-id", cluster_id, "--config", str(layout.config)]  # fmt: skip
    result = subprocess.run(
        cmd, cwd=layout.root, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    if result.returncode != 0 or not layout.formatted:
        output = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise KafkaError(f"formatting Kafka storage in {layout.data} failed:\n{output}")


class _Exited(KafkaError):
    """The JVM exited while starting."""


def _wait_ready(broker: KafkaBroker, layout: Layout, offset: int, began: float) -> None:
    """Until the broker accepts connections and lists itself in a metadata response."""
    deadline = began + _START_TIMEOUT
    while True:
        if not proc.alive(broker.pid):
            status = proc.describe_exit(broker.pid)
            reason = proc.first_error(layout.log, offset) or "see the log"
            raise _Exited(
                f"Kafka exited during startup{status}: {reason}\n"
                f"--- {layout.log} ---\n{proc.log_tail(layout.log, offset, lines=25)}"
            )
        if _accepts(broker.port) and _run(lambda: _lists_itself(broker)):
            return
        if time.monotonic() > deadline:
            raise KafkaError(
                f"Kafka (pid {broker.pid}) did not answer on {broker.bootstrap_servers} within "
                f"{_START_TIMEOUT:.0f} s\n--- {layout.log} ---\n"
                f"{proc.log_tail(layout.log, offset, lines=25)}"
            )
        time.sleep(0.1)


def _accepts(port: int) -> bool:
    """A TCP connect first: the broker opens its listener only once it is ready to serve, and
    aiokafka logs an error for every refused connection."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


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


def stop_kafka(run_dir: Path, timeout: float = 30) -> bool:
    """Stop the broker of `run_dir` (SIGTERM: controlled shutdown; SIGKILL after `timeout`).
    Returns False if it was not running."""
    layout = Layout.of(run_dir)
    with layout.locked():
        pid = proc.read_pid(layout)
        if pid is None or not proc.is_broker(pid, layout):
            layout.pid_file.unlink(missing_ok=True)
            return False
        _terminate(layout, pid, timeout)
        return True


def _terminate(layout: Layout, pid: int, timeout: float, *, keep_cds: bool = True) -> None:
    if proc.alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    graceful = proc.wait_gone(pid, timeout)
    if not graceful:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not proc.wait_gone(pid, 10):
            raise KafkaError(f"Kafka (pid {pid}) for {layout.root} did not stop")
    proc.finish_cds(layout, keep=graceful and keep_cds)
    layout.pid_file.unlink(missing_ok=True)


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
