"""A real Zipkin server (in-memory storage) on 127.0.0.1, the trace collector of the local mode.

The server's executable jar comes from Maven Central (mesh/jars/zipkin/pom.xml, fetched once into
.cache/zipkin/jar-<pom>/) and is extracted once (Spring Boot's `jarmode=tools extract`) into
.cache/zipkin/app-<pom>/: run from plain jars the JVM can map its classes from an AppCDS archive
(app-<pom>-<jdk>.jsa, written by the first graceful stop), which halves the start time.
Layout of one server, <run_dir>/zipkin/: zipkin.log (the JVM's output), zipkin.port (reused by
the next start, so exporters keep their endpoint), zipkin.pid.

Zipkin listens on one port (HTTP API, UI, /health, and the gRPC collector); its Armeria server
binds it to 127.0.0.1 only (`armeria.ports[0].ip`). Spans are kept in memory: a restart
forgets them. start_zipkin and stop_zipkin block (a few seconds); from async code call them
through asyncio.to_thread.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mesh import kafka_proc as proc
from mesh import paths
from mesh.maven import MavenError, fetch_jars, find_java, pom_digest
from mesh.paths import JARS_DIR

__all__ = [
    "ZipkinError",
    "ZipkinServer",
    "running_zipkin",
    "start_zipkin",
    "stop_zipkin",
    "zipkin_app",
]

POM_DIR = JARS_DIR / "zipkin"
CACHE_DIR = paths.CACHE_DIR / "zipkin"
_START_TIMEOUT = 60.0
_HEAP = "256m"
# The in-memory store evicts the oldest traces beyond this many spans (Zipkin's default, 500000,
# does not fit in the heap above).
_MAX_SPANS = 50_000
# On the JVM's command line: tells our JVM from another process that got its PID.
_MARKER = "-Dmeshmart.zipkin.dir="
# The environment variables the JVM inherits. Zipkin reads its whole configuration from the
# environment (KAFKA_BOOTSTRAP_SERVERS, RABBIT_ADDRESSES, ES_HOSTS, ... would switch on collectors
# and storages), so it gets only these and what _start sets.
_ENV_KEPT = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")


class ZipkinError(RuntimeError):
    """Fetching, starting, stopping or reaching the local Zipkin server failed."""


@dataclass(frozen=True)
class ZipkinServer:
    run_dir: Path
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def collector_endpoint(self) -> str:
        """Where exporters POST spans (Zipkin v2 JSON or proto3)."""
        return f"{self.url}/api/v2/spans"


@dataclass(frozen=True)
class _Layout:
    """The files of one server: everything lives in <run_dir>/zipkin/."""

    root: Path

    @classmethod
    def of(cls, run_dir: Path) -> _Layout:
        return cls(run_dir.resolve() / "zipkin")

    @property
    def log(self) -> Path:
        return self.root / "zipkin.log"

    @property
    def port_file(self) -> Path:
        return self.root / "zipkin.port"

    @property
    def pid_file(self) -> Path:
        return self.root / "zipkin.pid"

    @property
    def cds_pending(self) -> Path:
        return self.root / "cds.pending"

    def locked(self) -> contextlib.AbstractContextManager[None]:
        return proc.locked_dir(self.root)


def zipkin_app(progress: Callable[[str], None] = print) -> Path:
    """The server's application jar, in its extracted form (fetched and extracted on first use).

    Raises ZipkinError."""
    digest = pom_digest(POM_DIR)[:12]
    try:
        jars = fetch_jars(POM_DIR, CACHE_DIR / f"jar-{digest}", progress)
    except MavenError as exc:
        raise ZipkinError(str(exc)) from exc
    found = sorted(jars.glob("zipkin-server-*-exec.jar"))
    if len(found) != 1:
        raise ZipkinError(f"expected one zipkin-server-*-exec.jar in {jars}, found {len(found)}")
    app_dir = CACHE_DIR / f"app-{digest}"
    app = app_dir / found[0].name
    if not app.is_file():
        _extract(found[0], app_dir, progress)
    return app


def _extract(jar: Path, app_dir: Path, progress: Callable[[str], None]) -> None:
    """Unpack the Spring Boot jar into `app_dir` (the application jar and lib/), atomically: a
    concurrent extraction or an interrupted one never leaves a partial `app_dir`."""
    java = _java()
    progress(f"extracting {jar.name} (first run only)…")
    tmp = Path(tempfile.mkdtemp(prefix=f".{app_dir.name}.tmp-", dir=app_dir.parent))
    try:
        result = subprocess.run(
            [java, "-Djarmode=tools", "-jar", str(jar), "extract", "--destination",
             str(tmp / "app")],
            cwd=tmp, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip
        if result.returncode != 0 or not (tmp / "app" / jar.name).is_file():
            output = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise ZipkinError(f"extracting {jar} failed (exit {result.returncode}):\n{output}")
        (tmp / "app").chmod(0o755)
        try:
            (tmp / "app").rename(app_dir)
        except OSError:
            if not (app_dir / jar.name).is_file():  # else another process extracted it first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _java() -> str:
    try:
        return find_java()
    except MavenError as exc:
        raise ZipkinError(str(exc)) from exc


def _version(app: Path) -> str:
    match = re.fullmatch(r"zipkin-server-(.+)-exec\.jar", app.name)
    return match.group(1) if match else "?"


def _is_zipkin(pid: int, layout: _Layout) -> bool:
    """True if `pid` is a live JVM running the Zipkin server of this run folder."""
    argv = proc.cmdline(pid)
    if argv is None:
        return False
    return not argv or f"{_MARKER}{layout.root}" in argv


def _read_port(layout: _Layout) -> int | None:
    try:
        return int(layout.port_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def running_zipkin(run_dir: Path) -> ZipkinServer | None:
    """The server of `run_dir` if its JVM is alive (it may still be starting), else None."""
    layout = _Layout.of(run_dir)
    pid = proc.read_pid(layout)
    if pid is None or not _is_zipkin(pid, layout):
        return None
    port = _read_port(layout)
    if port is None:
        raise ZipkinError(f"Zipkin (pid {pid}) is running but {layout.port_file} is unreadable")
    return ZipkinServer(run_dir.resolve(), port, pid)


def start_zipkin(
    run_dir: Path, *, port: int | None = None, progress: Callable[[str], None] = print
) -> ZipkinServer:
    """Start the Zipkin server of `run_dir` on 127.0.0.1, or return the one already running;
    returns once GET /health answers 200. Raises ZipkinError."""
    layout = _Layout.of(run_dir)
    with layout.locked():
        server = running_zipkin(run_dir)
        if server is not None:  # possibly still starting (an interrupted start_zipkin)
            if port is not None and port != server.port:
                raise ZipkinError(
                    f"Zipkin is already running on {server.url}, not on port {port}"
                    f" (pid {server.pid}); stop it first"
                )
            offset = layout.log.stat().st_size if layout.log.exists() else 0
            _wait_ready(server, layout, offset, began=time.monotonic())
            progress(f"Zipkin already running on {server.url} (pid {server.pid})")
            return server
        return _start(layout, port, progress)


def _start(layout: _Layout, port: int | None, progress: Callable[[str], None]) -> ZipkinServer:
    app = zipkin_app(progress)
    java = _java()
    chosen = _choose_port(layout, port, progress)
    layout.port_file.write_text(f"{chosen}\n")
    proc.rotate_log(layout)
    jvm = [
        java, f"-Xmx{_HEAP}", "-Xms32m", "-XX:+UseSerialGC",
        # C1 only: starts faster; plenty for a local collector.
        "-XX:TieredStopAtLevel=1", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
        # IPv4 sockets: 127.0.0.1, not the IPv4-mapped ::ffff:127.0.0.1 of a dual-stack one.
        "-Djava.net.preferIPv4Stack=true", f"{_MARKER}{layout.root}",
        # Writing the class-data archive warns of every class it skips (~80 lines): errors only.
        "-Xlog:cds=error",
    ]  # fmt: skip
    # Spring Boot arguments: they outrank every other source. Zipkin's own config lists one port
    # (armeria.ports[0]) with no address, i.e. all interfaces; a list given on the command line
    # replaces that list as a whole, so each field of the port is set.
    main = [
        "-jar", str(app),
        "--armeria.ports[0].ip=127.0.0.1", f"--armeria.ports[0].port={chosen}",
        "--armeria.ports[0].protocols[0]=http", "--spring.main.banner-mode=off",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEPT}
    env |= {"STORAGE_TYPE": "mem", "MEM_MAX_SPANS": str(_MAX_SPANS), "QUERY_PORT": str(chosen)}
    progress(f"starting Zipkin {_version(app)} on 127.0.0.1:{chosen}")
    began = time.monotonic()
    while True:
        cds = proc.cds_options(layout, app.parent, java)
        server, offset = _launch(layout, [*jvm, *cds, *main], env, chosen)
        try:
            _wait_ready(server, layout, offset, began)
        except BaseException as exc:
            _terminate(layout, server.pid, timeout=10, keep_cds=False)  # a partial run's archive
            archive = proc.shared_archive(cds)
            if not (isinstance(exc, _Exited) and archive and proc.jvm_crashed(layout.log, offset)):
                raise
            # A damaged class-data archive makes the JVM crash (SIGBUS) instead of ignoring it.
            progress(f"removing the unusable class-data archive {archive} and starting again")
            archive.unlink(missing_ok=True)
            continue
        break
    progress(f"Zipkin ready on {server.url} ({time.monotonic() - began:.1f} s)")
    return server


def _choose_port(layout: _Layout, port: int | None, progress: Callable[[str], None]) -> int:
    if port is not None:
        if not proc.port_is_free(port):
            raise ZipkinError(f"127.0.0.1:{port} is already in use")
        return port
    remembered = _read_port(layout)
    if remembered is not None and proc.port_is_free(remembered):
        return remembered
    chosen = proc.free_port()
    if remembered is not None:
        progress(f"Zipkin's earlier port {remembered} is taken; using {chosen}")
    return chosen


def _launch(
    layout: _Layout, cmd: list[str], env: dict[str, str], port: int
) -> tuple[ZipkinServer, int]:
    """Start the JVM with its output appended to zipkin.log; returns the server and log offset."""
    with layout.log.open("ab") as log:
        offset = log.tell()
        child = subprocess.Popen(
            cmd, cwd=layout.root, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not hit by the terminal's Ctrl-C; stop_zipkin stops it
        )  # fmt: skip
    proc.CHILDREN[child.pid] = child
    layout.pid_file.write_text(f"{child.pid}\n")
    return ZipkinServer(layout.root.parent, port, child.pid), offset


class _Exited(ZipkinError):
    """The JVM exited while starting."""


def _wait_ready(server: ZipkinServer, layout: _Layout, offset: int, began: float) -> None:
    """Until GET /health answers 200 (storage up, HTTP collector and API serving)."""
    deadline = began + _START_TIMEOUT
    while True:
        if not proc.alive(server.pid):
            status = proc.describe_exit(server.pid)
            raise _Exited(
                f"Zipkin exited during startup{status}: {_reason(layout.log, offset)}\n"
                f"--- {layout.log} ---\n{_tail(layout.log, offset)}"
            )
        if _healthy(server):
            return
        if time.monotonic() > deadline:
            raise ZipkinError(
                f"Zipkin (pid {server.pid}) did not answer on {server.url}/health within "
                f"{_START_TIMEOUT:.0f} s\n--- {layout.log} ---\n{_tail(layout.log, offset)}"
            )
        time.sleep(0.1)


_STACK_FRAME = re.compile(r"^\s+(?:at |\.\.\. \d+ more)")


def _tail(log: Path, offset: int, lines: int = 25) -> str:
    """The end of this attempt's output, without Java stack frames."""
    kept = [
        line
        for line in proc.log_tail(log, offset, lines=2000).splitlines()
        if not _STACK_FRAME.match(line)
    ]
    return "\n".join(kept[-lines:])


def _reason(log: Path, offset: int) -> str:
    """What went wrong: the root cause of Spring's startup failure (the last "Caused by:",
    e.g. "...NativeIoException: bind(..) failed with error(-98): Address already in use"),
    else the first error of the output."""
    text = proc.log_tail(log, offset, lines=100_000)
    causes = re.findall(r"^Caused by: (.+)$", text, flags=re.MULTILINE)
    if causes and not proc.jvm_crashed(log, offset):
        return str(causes[-1]).strip()
    return proc.first_error(log, offset) or "see the log"


# No proxy, whatever $http_proxy says: the server is on loopback.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _healthy(server: ZipkinServer) -> bool:
    try:
        with _DIRECT.open(f"{server.url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):  # refused, 503 while starting, timeout
        return False


def stop_zipkin(run_dir: Path, timeout: float = 30) -> bool:
    """Stop the server of `run_dir` (SIGTERM; SIGKILL after `timeout`); its spans are lost.
    Returns False if it was not running."""
    layout = _Layout.of(run_dir)
    with layout.locked():
        pid = proc.read_pid(layout)
        if pid is None or not _is_zipkin(pid, layout):
            layout.pid_file.unlink(missing_ok=True)
            return False
        _terminate(layout, pid, timeout)
        return True


def _terminate(layout: _Layout, pid: int, timeout: float, *, keep_cds: bool = True) -> None:
    try:
        graceful = proc.terminate(pid, timeout)
    except TimeoutError:
        raise ZipkinError(f"Zipkin (pid {pid}) for {layout.root} did not stop") from None
    proc.finish_cds(layout, keep=graceful and keep_cds)
    layout.pid_file.unlink(missing_ok=True)
