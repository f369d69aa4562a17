"""Running `meshmart run` as a real process tree, the way a user starts it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from mesh.runtime.processes import stop_process

READY_LINE = "meshmart is up"
_OUTPUT: dict[int, tuple[list[str], threading.Thread]] = {}  # pid -> its lines and their reader


def free_base_port() -> int:
    """A base port whose next three ports are free (the services use base+1..base+3)."""
    for base in range(21000, 29000, 10):
        ports = [base + i for i in (1, 2, 3)]
        try:
            for port in ports:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range")


def start_shop(run_dir: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """Run `meshmart run ARGS` until it says it is up; Ctrl-C it afterwards if still running."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesh.cli", "run", "--run-dir", str(run_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "MESHMART_PG_DSN"},
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 90
        output = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if READY_LINE in line:
                break
        assert any(READY_LINE in line for line in output), "".join(output)
        # Keep reading what it prints (each restart is reported): a supervisor blocked on a
        # full pipe could restart nothing.
        reader = threading.Thread(target=output.extend, args=(proc.stdout,), daemon=True)
        reader.start()
        _OUTPUT[proc.pid] = (output, reader)
        yield proc
    finally:
        stop_process(proc, signal.SIGINT, timeout=60)
        if proc.pid in _OUTPUT:
            _OUTPUT[proc.pid][1].join(10)
        if proc.stdout is not None:
            proc.stdout.close()


def output(proc: subprocess.Popen[str]) -> str:
    """Everything a shop from start_shop printed, once it has exited."""
    lines, reader = _OUTPUT[proc.pid]
    reader.join(10)
    return "".join(lines)
