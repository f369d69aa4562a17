"""The JVM launcher's skeleton (mesh.infra.jvm) on a fake `java`: a small Python server that
takes the JVM's options, writes its class-data archive at a graceful exit and crashes the way
the JVM does on a damaged one. The real Kafka and Zipkin run in tests/integration."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mesh.infra import jvm
from mesh.infra.jvm import JvmFiles, JvmServer, Launch
from mesh.runtime import ports
from mesh.runtime.processes import alive, cmdline
from tests.support.processes import processes_using

FAKE_JAVA = f"""\
#!{sys.executable}
import http.server, os, signal, sys

args = sys.argv[1:]
def option(prefix):
    return next((a[len(prefix):] for a in args if a.startswith(prefix)), None)

shared = option("-XX:SharedArchiveFile=")
if shared and open(shared).read() == "damaged":
    print("# A fatal error has been detected by the Java Runtime Environment:")
    print("#  SIGBUS (0x7) at pc=0x00007f, pid=1, tid=2")
    sys.exit(134)
if args[-1] == "fail":
    print("[2026-12-03] ERROR starting the fake server")
    print("java.lang.IllegalStateException: no config")
    sys.exit(1)

def stop(*_):
    if recorded := option("-XX:ArchiveClassesAtExit="):
        open(recorded, "w").write("classes")
    os._exit(0)

signal.signal(signal.SIGTERM, stop)

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *_):
        pass

print("fake server up", flush=True)
http.server.HTTPServer(("127.0.0.1", int(args[-1])), Health).serve_forever()
"""


class FakeError(RuntimeError):
    pass


@dataclass(frozen=True)
class FakeServer:
    port: int
    pid: int


class Fake(JvmServer[JvmFiles, FakeServer]):
    name = "Fake"
    error = FakeError

    def __init__(self, classes: Path, *, fail: bool = False) -> None:
        self.classes = classes
        self.fail = fail

    def files(self, run_dir: Path) -> JvmFiles:
        return JvmFiles(run_dir.resolve() / "fake")

    def is_own(self, argv: list[str], files: JvmFiles) -> bool:
        return f"-Dfake.dir={files.root}" in argv

    def server(self, files: JvmFiles, ports: tuple[int, ...], pid: int) -> FakeServer:
        return FakeServer(ports[0], pid)

    def address(self, server: FakeServer) -> str:
        return f"127.0.0.1:{server.port}"

    def ready(self, server: FakeServer) -> bool:
        return ports.http_ok(f"http://127.0.0.1:{server.port}/health")

    def launch(
        self, files: JvmFiles, ports: tuple[int, ...], java: str, progress: Callable[[str], None]
    ) -> Launch:
        return Launch(
            options=[f"-Dfake.dir={files.root}"],
            main=["fail" if self.fail else str(ports[0])],
            classes=self.classes,
            title=f"Fake on 127.0.0.1:{ports[0]}",
        )


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fake]:
    """The fake server kind; whatever a test leaves running in tmp_path/run is stopped."""
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text(FAKE_JAVA)
    java.chmod(0o755)
    monkeypatch.setattr(jvm, "find_java", lambda: str(java))
    (tmp_path / "libs").mkdir()
    server = Fake(tmp_path / "libs")
    yield server
    server.stop(tmp_path / "run")
    assert processes_using(tmp_path) == []


def _archive(fake: Fake) -> Path:
    [archive] = fake.classes.parent.glob("libs-*.jsa")
    return archive


def test_start_reuse_stop_and_restart_on_the_same_port(fake: Fake, tmp_path: Path) -> None:
    run_dir, said = tmp_path / "run", []
    first = fake.start(run_dir, port=None, progress=said.append)
    assert said[0] == f"starting Fake on 127.0.0.1:{first.port}"
    assert said[-1].startswith(f"Fake ready on 127.0.0.1:{first.port} (")
    assert fake.running(run_dir) == first
    assert fake.start(run_dir, port=None, progress=said.append) == first
    assert said[-1] == f"Fake already running on 127.0.0.1:{first.port} (pid {first.pid})"
    with pytest.raises(FakeError, match=r"already running on .*, not on port 1 \(pid \d+\); stop"):
        fake.start(run_dir, port=1, progress=said.append)

    assert fake.stop(run_dir) is True
    assert not alive(first.pid)  # reaped, not a zombie
    assert processes_using(run_dir) == []
    assert fake.running(run_dir) is None
    assert fake.stop(run_dir) is False
    assert _archive(fake).read_text() == "classes"  # kept after the graceful exit

    second = fake.start(run_dir, port=None, progress=said.append)
    try:
        assert second.port == first.port and second.pid != first.pid
        assert f"-XX:SharedArchiveFile={_archive(fake)}" in (cmdline(second.pid) or [])
    finally:
        fake.stop(run_dir)


def test_a_damaged_class_data_archive_is_removed_and_the_start_retried(
    fake: Fake, tmp_path: Path
) -> None:
    run_dir, said = tmp_path / "run", []
    fake.start(run_dir, port=None, progress=said.append)
    fake.stop(run_dir)
    archive = _archive(fake)
    archive.write_text("damaged")

    server = fake.start(run_dir, port=None, progress=said.append)
    try:
        assert f"removing the unusable class-data archive {archive} and starting again" in said
        assert fake.running(run_dir) == server
        assert not archive.exists()
    finally:
        fake.stop(run_dir)
    assert archive.read_text() == "classes"  # recorded again by the clean run


def test_a_jvm_that_exits_while_starting_is_reported_with_its_log(
    fake: Fake, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    failing = Fake(fake.classes, fail=True)
    with pytest.raises(FakeError) as failure:
        failing.start(run_dir, port=None, progress=lambda _line: None)
    first_line, *rest = str(failure.value).splitlines()
    assert first_line == (
        "Fake exited during startup (exit 1): java.lang.IllegalStateException: no config"
    )
    assert rest[0] == f"--- {run_dir.resolve() / 'fake' / 'fake.log'} ---"
    assert "ERROR starting the fake server" in rest[1]
    assert failing.running(run_dir) is None
    assert not (run_dir / "fake" / "fake.pid").exists()
    assert list(fake.classes.parent.glob("*.jsa*")) == []  # no archive from a failed run


def test_a_port_in_use_is_refused_before_anything_starts(fake: Fake, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(FakeError, match=f"^127.0.0.1:{port} is already in use$"):
            fake.start(tmp_path / "run", port=port, progress=lambda _line: None)
    assert not (tmp_path / "run" / "fake" / "fake.pid").exists()


def test_a_pid_file_naming_another_process_is_not_the_server(fake: Fake, tmp_path: Path) -> None:
    files = fake.files(tmp_path / "run")
    files.root.mkdir(parents=True)
    files.pid_file.write_text("1\n")  # init: alive, but not our JVM
    files.port_file.write_text("5\n")
    assert fake.running(tmp_path / "run") is None
    assert fake.stop(tmp_path / "run") is False
    assert not files.pid_file.exists()


@pytest.mark.parametrize("text", ["", "x y\n", "1 2\n"])
def test_a_running_server_with_an_unreadable_port_file_is_an_error(
    fake: Fake, tmp_path: Path, text: str
) -> None:
    run_dir = tmp_path / "run"
    server = fake.start(run_dir, port=None, progress=lambda _line: None)
    try:
        fake.files(run_dir).port_file.write_text(text)
        unreadable = rf"^Fake \(pid {server.pid}\) is running but .* is unreadable$"
        with pytest.raises(FakeError, match=unreadable):
            fake.running(run_dir)
    finally:
        fake.stop(run_dir)


def test_a_port_another_server_was_given_is_never_reused(fake: Fake, tmp_path: Path) -> None:
    """PostgreSQL, Kafka and Zipkin choose their ports side by side, before any of them has
    bound one: a remembered port that another server in this process was given is taken."""
    given = ports.free_port(owner="the PostgreSQL starting beside it")
    files = fake.files(tmp_path / "run")
    files.root.mkdir(parents=True)
    files.port_file.write_text(f"{given}\n")
    said: list[str] = []
    server = fake.start(tmp_path / "run", port=None, progress=said.append)
    try:
        assert server.port != given
        assert said[0] == f"Fake's earlier port {given} is taken; using {server.port}"
    finally:
        fake.stop(tmp_path / "run")


def test_free_ports_are_never_handed_out_twice_in_one_process() -> None:
    chosen = [ports.free_port() for _ in range(300)]
    assert len(set(chosen)) == len(chosen)
    assert ports.claim(chosen[0], "someone else") is False
    owned = ports.free_port(owner="kafka")
    assert ports.claim(owned, "kafka") is True  # its own port again, after a restart
