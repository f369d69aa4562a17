"""What the suites check about processes and sockets, with psutil (not /proc by hand).

Whether a PID is alive is mesh.runtime.processes.alive: the tests ask the same question the
launchers do."""

from __future__ import annotations

from pathlib import Path

import psutil

from mesh.runtime.polling import wait_until
from mesh.runtime.processes import alive

LOOPBACK = {"127.0.0.1", "::1"}


def listening_addresses(ports: set[int]) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets listening on `ports`, on this machine."""
    return {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port in ports
    }


def listening_sockets_of(pid: int) -> list[str]:
    """Local addresses of the TCP sockets `pid` listens on."""
    return [
        c.laddr.ip
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    ]


def only_loopback(addresses: list[str]) -> bool:
    return all(a in LOOPBACK for a in addresses)


def processes_using(path: Path) -> list[int]:
    """PIDs of the live processes whose command line mentions `path` (a zombie's is empty)."""
    pids = []
    for process in psutil.process_iter():
        try:
            if any(str(path) in arg for arg in process.cmdline()):
                pids.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue  # exited meanwhile, or not ours to read
    return pids


def still_alive_after(pids: list[int], timeout: float) -> list[int]:
    """Those of `pids` still running once all have exited or `timeout` seconds have passed."""
    wait_until(lambda: not any(alive(p) for p in pids), timeout)
    return [p for p in pids if alive(p)]


def quiet(_line: str) -> None:
    """A launcher's progress callback for tests that do not read its progress lines."""
