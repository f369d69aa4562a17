"""A real Zipkin server (in-memory storage) on 127.0.0.1, the trace collector of the local mode.

The server's executable jar comes from Maven Central (mesh/infra/jars/zipkin/pom.xml, fetched
once into .cache/zipkin/jar-<pom>/) and is extracted once (Spring Boot's `jarmode=tools
extract`) into .cache/zipkin/app-<pom>/: run from plain jars the JVM can map its classes from
an AppCDS archive (app-<pom>-<jdk>.jsa, written by the first graceful stop), which halves the
start time.
The server runs from <run_dir>/zipkin/ with mesh.infra.jvm's launcher: zipkin.log (the JVM's
output), zipkin.port (reused by the next start, so exporters keep their endpoint), zipkin.pid.

Zipkin listens on one port (HTTP API, UI, /health, and the gRPC collector); its Armeria server
binds it to 127.0.0.1 only (`armeria.ports[0].ip`). Spans are kept in memory: a restart
forgets them. start_zipkin and stop_zipkin block (a few seconds); from async code call them
through asyncio.to_thread.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mesh import paths
from mesh.infra.jvm import JvmFiles, JvmServer, Launch, first_error, heap_options, jvm_crashed
from mesh.infra.maven import MavenError, fetch_jars, find_java, pom_digest
from mesh.paths import JARS_DIR
from mesh.runtime.files import log_tail
from mesh.runtime.ports import http_ok

__all__ = [
    "ZipkinError",
    "ZipkinServer",
    "running_zipkin",
    "start_zipkin",
    "stop_zipkin",
    "zipkin_app",
    "zipkin_files",
]

POM_DIR = JARS_DIR / "zipkin"
CACHE_DIR = paths.CACHE_DIR / "zipkin"
_HEAP = "256m"
# The in-memory store evicts the oldest traces beyond this many spans (Zipkin's default, 500000,
# does not fit in the heap above).
_MAX_SPANS = 50_000
# On the JVM's command line: tells our JVM from another process that got its PID.
_MARKER = "-Dmeshmart.zipkin.dir="
# The environment variables the JVM inherits. Zipkin reads its whole configuration from the
# environment (KAFKA_BOOTSTRAP_SERVERS, RABBIT_ADDRESSES, ES_HOSTS, ... would switch on collectors
# and storages), so it gets only these and what launch() sets.
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


def zipkin_files(run_dir: Path) -> JvmFiles:
    """The server's folder in `run_dir`: <run_dir>/zipkin/."""
    return JvmFiles(run_dir.resolve() / "zipkin")


class _Zipkin(JvmServer[JvmFiles, ZipkinServer]):
    name = "Zipkin"
    error = ZipkinError

    def files(self, run_dir: Path) -> JvmFiles:
        return zipkin_files(run_dir)

    def is_own(self, argv: list[str], files: JvmFiles) -> bool:
        return f"{_MARKER}{files.root}" in argv

    def server(self, files: JvmFiles, ports: tuple[int, ...], pid: int) -> ZipkinServer:
        return ZipkinServer(files.root.parent, ports[0], pid)

    def address(self, server: ZipkinServer) -> str:
        return server.url

    def ready(self, server: ZipkinServer) -> bool:
        """GET /health answers 200: storage up, HTTP collector and API serving."""
        return http_ok(f"{server.url}/health")

    def launch(
        self, files: JvmFiles, ports: tuple[int, ...], java: str, progress: Callable[[str], None]
    ) -> Launch:
        app = zipkin_app(progress)
        port = ports[0]
        env = {k: v for k, v in os.environ.items() if k in _ENV_KEPT}
        env |= {"STORAGE_TYPE": "mem", "MEM_MAX_SPANS": str(_MAX_SPANS), "QUERY_PORT": str(port)}
        return Launch(
            # Writing the class-data archive warns of every class it skips (~80 lines): errors.
            options=[*heap_options(_HEAP), f"{_MARKER}{files.root}", "-Xlog:cds=error"],
            # Spring Boot arguments: they outrank every other source. Zipkin's own config lists
            # one port (armeria.ports[0]) with no address, i.e. all interfaces; a list given on
            # the command line replaces that list as a whole, so each field of the port is set.
            main=["-jar", str(app), *_armeria_port(port), "--spring.main.banner-mode=off"],
            classes=app.parent,
            title=f"Zipkin {_version(app)} on 127.0.0.1:{port}",
            env=env,
        )

    def failure(self, log: Path, offset: int) -> str:
        """The root cause of Spring's startup failure (the last "Caused by:", e.g.
        "...NativeIoException: bind(..) failed with error(-98): Address already in use"),
        else the first error of the output."""
        text = log_tail(log, offset, lines=100_000)
        causes = re.findall(r"^Caused by: (.+)$", text, flags=re.MULTILINE)
        if causes and not jvm_crashed(log, offset):
            return str(causes[-1]).strip()
        return first_error(log, offset) or "see the log"


def _armeria_port(port: int) -> list[str]:
    return [
        "--armeria.ports[0].ip=127.0.0.1",
        f"--armeria.ports[0].port={port}",
        "--armeria.ports[0].protocols[0]=http",
    ]


def running_zipkin(run_dir: Path) -> ZipkinServer | None:
    """The server of `run_dir` if its JVM is alive (it may still be starting), else None."""
    return _Zipkin().running(run_dir)


def start_zipkin(
    run_dir: Path, *, port: int | None = None, progress: Callable[[str], None] = print
) -> ZipkinServer:
    """Start the Zipkin server of `run_dir` on 127.0.0.1, or return the one already running;
    returns once GET /health answers 200. Raises ZipkinError."""
    return _Zipkin().start(run_dir, port=port, progress=progress)


def stop_zipkin(run_dir: Path, timeout: float = 30) -> bool:
    """Stop the server of `run_dir` (SIGTERM; SIGKILL after `timeout`); its spans are lost.
    Returns False if it was not running."""
    return _Zipkin().stop(run_dir, timeout)
