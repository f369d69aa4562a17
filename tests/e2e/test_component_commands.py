"""`meshmart kafka|zipkin up|status|down`, run as a user runs them, on the real servers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mesh.runtime.processes import alive
from tests.support.processes import processes_using

pytestmark = pytest.mark.integration


def _meshmart(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesh.cli", *args],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("component", ["kafka", "zipkin"])
def test_up_status_down(component: str, tmp_path: Path) -> None:
    run_dir = str(tmp_path / "run")
    title = {"kafka": "Kafka", "zipkin": "Zipkin"}[component]
    home = tmp_path / "run" / component

    down = _meshmart(component, "status", "--run-dir", run_dir)
    assert (down.returncode, down.stdout) == (3, f"{title} not running ({home})\n")

    up = _meshmart(component, "up", "--run-dir", run_dir)
    try:
        assert up.returncode == 0, up.stderr
        *progress, first, second = up.stdout.splitlines()
        assert any(line.startswith(f"starting {title} ") for line in progress), up.stdout
        assert progress[-1].startswith(f"{title} ready on "), up.stdout
        assert first.startswith(f"{title} running: ")
        assert second == f"  log {home / f'{component}.log'}"
        pid = int(first.rpartition(", pid ")[2])
        assert alive(pid)  # outlives the command that started it, as pg_ctl's server does

        described = f"{first}\n{second}\n"
        status = _meshmart(component, "status", "--run-dir", run_dir)
        assert (status.returncode, status.stdout) == (0, described)
        again = _meshmart(component, "up", "--run-dir", run_dir)  # the same server
        assert again.returncode == 0, again.stderr
        said, *rest = again.stdout.splitlines(keepends=True)
        assert said.startswith(f"{title} already running on ") and said.endswith(f"(pid {pid})\n")
        assert "".join(rest) == described
    finally:
        stopped = _meshmart(component, "down", "--run-dir", run_dir)
    assert (stopped.returncode, stopped.stdout) == (0, f"{title} stopped\n")
    assert processes_using(home) == []
    gone = _meshmart(component, "down", "--run-dir", run_dir)
    assert (gone.returncode, gone.stdout) == (0, f"{title} was not running\n")


def test_a_broker_that_exits_while_starting_is_one_line_naming_its_log(tmp_path: Path) -> None:
    """Storage of another node (node.id 2, the config says 1): Kafka refuses it and exits."""
    data = tmp_path / "run" / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text(
        "version=1\ncluster.id=0MR8_qH0TXSM1Deo48ZpLQ\nnode.id=2\n"
        "directory.id=bNqMBEYN5cpvKKR1pSerLA\n"
    )
    up = _meshmart("kafka", "up", "--run-dir", str(tmp_path / "run"))
    assert up.returncode == 1
    assert up.stderr.startswith(
        "meshmart kafka up: error: Kafka exited during startup (exit 1): "
        "java.lang.RuntimeException: Stored node id 2 doesn't match previous node id 1"
    ), up.stderr
    assert up.stderr.endswith(f"(log: {data.parent / 'kafka.log'})\n")
    assert len(up.stderr.splitlines()) == 1 and "Traceback" not in up.stderr
    assert processes_using(tmp_path / "run") == []
    assert not (data.parent / "kafka.pid").exists()
