"""One launcher for the JVM servers of local mode (Kafka, Zipkin): files, start, readiness, stop.

A server lives in <run_dir>/<name>/: <name>.log (the JVM's output), <name>.port (its ports,
reused by the next start so clients reconnect to the same address) and <name>.pid. Starting
takes the folder's lock, returns the server already running if there is one, else chooses
ports, launches the JVM and waits until it is ready; stopping sends SIGTERM, then SIGKILL.

Each JVM maps its classes from an AppCDS archive written by its first graceful stop (start
~2 s -> ~1 s). A damaged archive makes the JVM crash instead of ignoring it, so a start that
dies that way removes the archive and tries once more without it.

A server kind (mesh.infra.kafka, mesh.infra.zipkin) says what is its own: how to recognise its
JVM, the command line, the readiness probe and what a server looks like to callers.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Generic, Protocol, TypeVar

from mesh.infra.maven import MavenError, find_java
from mesh.runtime import ports as loopback
from mesh.runtime import processes
from mesh.runtime.files import locked_dir, log_tail, read_numbers, rotate_log
from mesh.runtime.polling import wait_until

_START_TIMEOUT = 60.0
# What every JVM server of local mode runs with: small, quick to start, loopback only.
BASE_OPTIONS = (
    "-XX:+UseSerialGC",
    # C1 only: half the start time; plenty for a local server.
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    # IPv4 sockets: 127.0.0.1, not the IPv4-mapped ::ffff:127.0.0.1 of a dual-stack one.
    "-Djava.net.preferIPv4Stack=true",
)


def heap_options(heap: str) -> list[str]:
    """The heap fixed at `heap` and touched at start, as server JVMs are run (Kafka's own
    kafka-server-start.sh starts at its cap, -Xms1G -Xmx1G). A heap that grows on demand
    commits and touches new pages for many minutes instead, so the server's RSS climbs under a
    steady load with nothing leaking (docs/reliability.md, "Soak")."""
    return [f"-Xms{heap}", f"-Xmx{heap}", "-XX:+AlwaysPreTouch"]


@dataclass(frozen=True)
class JvmFiles:
    """The files of one server: everything lives in <run_dir>/<name>/."""

    root: Path

    @property
    def log(self) -> Path:  # the JVM's stdout and stderr
        return self.root / f"{self.root.name}.log"

    @property
    def port_file(self) -> Path:  # its ports, space-separated, the first the one users name
        return self.root / f"{self.root.name}.port"

    @property
    def pid_file(self) -> Path:
        return self.root / f"{self.root.name}.pid"

    @property
    def cds_pending(self) -> Path:  # the class-data archive this JVM writes when it exits
        return self.root / "cds.pending"

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """One start or stop at a time per server folder, across processes."""
        return locked_dir(self.root)

    def read_pid(self) -> int | None:
        numbers = read_numbers(self.pid_file)
        return numbers[0] if numbers else None

    def read_ports(self) -> tuple[int, ...] | None:
        return read_numbers(self.port_file)

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0


@dataclass(frozen=True)
class Launch:
    """How to run one server: the JVM's options, the main class or jar and its arguments."""

    options: list[str]  # after BASE_OPTIONS
    main: list[str]
    classes: Path  # the folder of jars; the class-data archive is kept beside it
    title: str  # "Kafka 4.4.0 on 127.0.0.1:9092 (controller 9093)", for the progress line
    env: Mapping[str, str] | None = None  # None: ours


class RunningJvm(Protocol):
    """What every server kind hands back: its JVM and the port users name."""

    @property
    def pid(self) -> int: ...

    @property
    def port(self) -> int: ...


_F = TypeVar("_F", bound=JvmFiles)
_S = TypeVar("_S", bound=RunningJvm)


class JvmServer(abc.ABC, Generic[_F, _S]):
    """One kind of JVM server; `_S` is what callers get back (a broker, a trace collector)."""

    name: ClassVar[str]  # "Kafka"
    error: ClassVar[type[RuntimeError]]  # what start and stop raise
    port_count: ClassVar[int] = 1

    @abc.abstractmethod
    def files(self, run_dir: Path) -> _F: ...

    @abc.abstractmethod
    def is_own(self, argv: list[str], files: _F) -> bool:
        """Is this command line our JVM of this folder (not another process with its PID)?"""

    @abc.abstractmethod
    def server(self, files: _F, ports: tuple[int, ...], pid: int) -> _S: ...

    @abc.abstractmethod
    def address(self, server: _S) -> str: ...

    @abc.abstractmethod
    def ready(self, server: _S) -> bool:
        """Does the server serve yet (called every 0.1 s while it starts)?"""

    @abc.abstractmethod
    def launch(
        self, files: _F, ports: tuple[int, ...], java: str, progress: Callable[[str], None]
    ) -> Launch:
        """Fetch the jars, prepare the folder (config, storage), say how to run the JVM."""

    def failure(self, log: Path, offset: int) -> str:
        """Why the JVM exited while starting, from its output after `offset`."""
        return first_error(log, offset) or "see the log"

    # --- the shared skeleton ---------------------------------------------------------------

    def running(self, run_dir: Path) -> _S | None:
        """The server of `run_dir` if its JVM is alive (it may still be starting), else None."""
        files = self.files(run_dir)
        pid = self._own_pid(files)
        if pid is None:
            return None
        ports = files.read_ports()
        if ports is None or len(ports) != self.port_count:
            raise self.error(
                f"{self.name} (pid {pid}) is running but {files.port_file} is unreadable"
            )
        return self.server(files, ports, pid)

    def start(self, run_dir: Path, *, port: int | None, progress: Callable[[str], None]) -> _S:
        """Start the server of `run_dir`, or return the one already running; returns once it
        is ready. Raises `error`."""
        files = self.files(run_dir)
        with files.locked():
            server = self.running(run_dir)
            if server is None:
                return self._start(files, port, progress)
            # Possibly still starting (an interrupted start).
            address = self.address(server)
            if port is not None and port != server.port:
                raise self.error(
                    f"{self.name} is already running on {address}, not on port {port}"
                    f" (pid {server.pid}); stop it first"
                )
            if exited := self._wait_ready(server, files, files.log_size(), time.monotonic()):
                raise self.error(exited)
            progress(f"{self.name} already running on {address} (pid {server.pid})")
            return server

    def stop(self, run_dir: Path, timeout: float = 30) -> bool:
        """SIGTERM (a graceful shutdown), SIGKILL after `timeout`; False if it was not running."""
        files = self.files(run_dir)
        with files.locked():
            pid = self._own_pid(files)
            if pid is None:
                files.pid_file.unlink(missing_ok=True)
                return False
            self._terminate(files, pid, timeout)
            return True

    def _own_pid(self, files: _F) -> int | None:
        pid = files.read_pid()
        if pid is None:
            return None
        argv = processes.cmdline(pid)
        if argv is None or (argv and not self.is_own(argv, files)):
            return None
        return pid  # [] (unreadable): trust the pid file

    def _start(self, files: _F, port: int | None, progress: Callable[[str], None]) -> _S:
        try:
            java = find_java()
        except MavenError as exc:
            raise self.error(str(exc)) from exc
        ports = self._choose_ports(files, port, progress)
        files.port_file.write_text(" ".join(map(str, ports)) + "\n")
        launch = self.launch(files, ports, java, progress)
        rotate_log(files.log)
        progress(f"starting {launch.title}")
        began = time.monotonic()
        while True:
            cds = cds_options(files, launch.classes, java)
            cmd = [java, *BASE_OPTIONS, *launch.options, *cds, *launch.main]
            offset = files.log_size()
            pid = processes.spawn(cmd, files.log, cwd=files.root, env=launch.env)
            files.pid_file.write_text(f"{pid}\n")
            server = self.server(files, ports, pid)
            try:
                exited = self._wait_ready(server, files, offset, began)
            except BaseException:
                self._terminate(files, pid, timeout=10, keep_cds=False)  # a partial archive
                raise
            if exited is None:
                break
            self._terminate(files, pid, timeout=10, keep_cds=False)
            archive = shared_archive(cds)
            if archive is None or not jvm_crashed(files.log, offset):
                raise self.error(exited)
            progress(f"removing the unusable class-data archive {archive} and starting again")
            archive.unlink(missing_ok=True)
        progress(f"{self.name} ready on {self.address(server)} ({time.monotonic() - began:.1f} s)")
        return server

    def _wait_ready(self, server: _S, files: _F, offset: int, began: float) -> str | None:
        """None once ready; why, if the JVM exited first. Raises `error` if it is not ready
        within 60 s of `began`."""
        remaining = began + _START_TIMEOUT - time.monotonic()

        def gone() -> bool:
            return not processes.alive(server.pid)

        if wait_until(lambda: self.ready(server), remaining, unless=gone):
            return None
        tail = startup_tail(files.log, offset)
        if not gone():
            raise self.error(
                f"{self.name} (pid {server.pid}) did not answer on {self.address(server)} within "
                f"{_START_TIMEOUT:.0f} s\n--- {files.log} ---\n{tail}"
            )
        return (
            f"{self.name} exited during startup{processes.describe_exit(server.pid)}: "
            f"{self.failure(files.log, offset)}\n--- {files.log} ---\n{tail}"
        )

    def _choose_ports(
        self, files: _F, port: int | None, progress: Callable[[str], None]
    ) -> tuple[int, ...]:
        """The port asked for, else the remembered ones while free, else new ones."""
        remembered = files.read_ports() or ()
        owner = str(files.root)

        def usable(candidate: int) -> bool:
            return loopback.port_is_free(candidate) and loopback.claim(candidate, owner)

        if port is not None:
            if not usable(port):
                raise self.error(f"127.0.0.1:{port} is already in use")
            chosen = [port]
        elif remembered and usable(remembered[0]):
            chosen = [remembered[0]]
        else:
            chosen = [loopback.free_port(owner)]
            if remembered:
                progress(f"{self.name}'s earlier port {remembered[0]} is taken; using {chosen[0]}")
        for earlier in remembered[1 : self.port_count]:
            if earlier not in chosen and usable(earlier):
                chosen.append(earlier)
        while len(chosen) < self.port_count:
            if (extra := loopback.free_port(owner)) not in chosen:
                chosen.append(extra)
        return tuple(chosen[: self.port_count])

    def _terminate(self, files: _F, pid: int, timeout: float, *, keep_cds: bool = True) -> None:
        try:
            graceful = processes.terminate(pid, timeout)
        except TimeoutError:
            raise self.error(f"{self.name} (pid {pid}) for {files.root} did not stop") from None
        finish_cds(files, keep=graceful and keep_cds)
        files.pid_file.unlink(missing_ok=True)


# --- what the JVM's output says ----------------------------------------------------------------

_EXCEPTION = re.compile(r"(?:Caused by: )?[\w$.]+(?:Exception|Error)(?::\s.*)?")
_JVM_CRASH = "A fatal error has been detected by the Java Runtime Environment"
_STACK_FRAME = re.compile(r"^\s+(?:at |\.\.\. \d+ more)")


def jvm_crashed(log: Path, offset: int) -> bool:
    """The JVM itself failed (hs_err report), as a damaged class-data archive makes it do."""
    return _JVM_CRASH in log_tail(log, offset, lines=100_000)


def first_error(log: Path, offset: int) -> str | None:
    """What went wrong, from the JVM's output after `offset`: the first ERROR line, or rather
    the exception under it (e.g. "java.lang.RuntimeException: Error: node ID not found")."""
    lines = [line.strip() for line in log_tail(log, offset, lines=100_000).splitlines()]
    if any(_JVM_CRASH in line for line in lines):
        signal_line = next((line for line in lines if re.match(r"#\s+SIG[A-Z]+ ", line)), "")
        return f"the JVM crashed {signal_line.lstrip('# ')}".strip()
    for i, line in enumerate(lines):
        if re.search(r"\b(ERROR|FATAL)\b", line) or _EXCEPTION.fullmatch(line):
            exception = next((c for c in lines[i : i + 3] if _EXCEPTION.fullmatch(c)), None)
            return exception or re.sub(r"^\[[^]]*\]\s*", "", line)
    return None


def startup_tail(log: Path, offset: int, lines: int = 25) -> str:
    """The end of this attempt's output, without Java stack frames."""
    kept = [
        line
        for line in log_tail(log, offset, lines=2000).splitlines()
        if not _STACK_FRAME.match(line)
    ]
    return "\n".join(kept[-lines:])


# --- AppCDS ------------------------------------------------------------------------------------


def java_key(java: str) -> str:
    """Identifies the JDK, so a class-data archive is only used by the JVM that wrote it."""
    real = os.path.realpath(java)
    st = os.stat(real)
    return hashlib.sha256(f"{real}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:10]


def cds_options(files: JvmFiles, classes: Path, java: str) -> list[str]:
    """AppCDS: map the classes of an earlier run, or record them at exit.

    The archive is written when the JVM exits; it is moved into place only after a graceful
    exit, so a killed JVM never leaves a half-written archive behind.
    """
    discard_cds_pending(files)
    archive = classes.with_name(f"{classes.name}-{java_key(java)}.jsa")
    if archive.is_file():
        return [f"-XX:SharedArchiveFile={archive}"]
    tmp = archive.with_name(f"{archive.name}.{os.getpid()}-{time.monotonic_ns()}.tmp")
    files.cds_pending.write_text(f"{tmp}\n{archive}\n")
    return [f"-XX:ArchiveClassesAtExit={tmp}"]


def shared_archive(cds_options: list[str]) -> Path | None:
    """The class-data archive file named in JVM options from `cds_options`, if any."""
    prefix = "-XX:SharedArchiveFile="
    return next((Path(o.removeprefix(prefix)) for o in cds_options if o.startswith(prefix)), None)


def finish_cds(files: JvmFiles, keep: bool) -> None:
    """After the JVM exited: keep the archive it wrote (after a graceful exit) or drop it."""
    try:
        tmp, archive = (Path(p) for p in files.cds_pending.read_text().split())
    except (FileNotFoundError, ValueError):
        files.cds_pending.unlink(missing_ok=True)
        return
    if keep and tmp.is_file() and tmp.stat().st_size > 0:
        tmp.replace(archive)
    discard_cds_pending(files)


def discard_cds_pending(files: JvmFiles) -> None:
    with contextlib.suppress(FileNotFoundError):
        if tmp := files.cds_pending.read_text().split("\n")[0].strip():
            Path(tmp).unlink(missing_ok=True)
    files.cds_pending.unlink(missing_ok=True)
