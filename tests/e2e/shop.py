"""Helpers to run `meshmart run` as a real process tree, the way a user starts it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

READY_LINE = "meshmart is up"


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


def listening_addresses(ports: set[int]) -> set[tuple[str, int]]:
    """(address, port) of LISTEN sockets on `ports`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port = local.rsplit(":", 1)
            if state == "0A" and int(port, 16) in ports:
                found.add((address, int(port, 16)))
    return found


def pid_alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status  # a zombie waiting for its parent has already exited


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
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


_LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def listening_sockets_of(pid: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp) of the TCP sockets `pid` listens on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                found.append(fields[1].rsplit(":", 1)[0])
    return found


def only_loopback(addresses: list[str]) -> bool:
    return all(a in _LOOPBACK for a in addresses)
