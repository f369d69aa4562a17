"""The processes the local runtime starts, and the one place that asks whether a PID is alive.

Two kinds: a `Child` belongs to the supervisor's session (an app, an Envoy) and is stopped with
it; a server started with `spawn` (a JVM) may outlive the command that started it, as pg_ctl's
server does, and is found again by its pid file. Liveness, command lines and termination go
through psutil, so a zombie or an exited PID never counts as running.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from mesh.runtime.files import log_tail
from mesh.runtime.polling import wait_until


@dataclass
class Child:
    name: str
    argv: list[str]
    env: Mapping[str, str]
    log_file: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    started_at: float = 0.0  # time.monotonic() of the last start

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.started_at = time.monotonic()
        with self.log_file.open("ab") as log:
            # A session of its own: Ctrl-C in the terminal reaches only the supervisor, which
            # then stops each child in order instead of everything dying at once.
            self.process = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_clear_signal_mask,
            )

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float) -> int | None:
        """SIGTERM (graceful drain), then SIGKILL after `timeout`; returns the exit code."""
        return None if self.process is None else stop_process(self.process, timeout=timeout)

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_file, lines=lines)


def _clear_signal_mask() -> None:
    """In the child, before exec. The supervisor blocks SIGINT and SIGTERM while it restarts a
    child, and exec keeps the signal mask: without this, a restarted app or Envoy would never
    see the SIGTERM that stops it gracefully and would be SIGKILLed at the timeout."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def stop_process(
    process: subprocess.Popen[Any], sig: int = signal.SIGTERM, *, timeout: float
) -> int:
    """`sig` (SIGTERM: drain; SIGINT: what Ctrl-C sends), then SIGKILL after `timeout` seconds;
    returns the exit code. A process that already exited is only reaped."""
    if process.poll() is not None:
        return process.returncode
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(5)


def python_module(module: str) -> list[str]:
    return [sys.executable, "-m", module]


# Servers this process spawned: polled (which reaps them) so a stopped one leaves no zombie,
# and so that its exit status can be reported.
_SPAWNED: dict[int, subprocess.Popen[bytes]] = {}
_EXIT_CODES: dict[int, int] = {}


def spawn(cmd: list[str], log: Path, *, cwd: Path, env: Mapping[str, str] | None = None) -> int:
    """Start a background server in a session of its own (the terminal's Ctrl-C does not reach
    it; its stop function stops it), its output appended to `log`; returns its PID."""
    with log.open("ab") as out:
        child = subprocess.Popen(
            cmd, cwd=cwd, env=None if env is None else dict(env), stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    _SPAWNED[child.pid] = child
    return child.pid


@atexit.register
def _release_spawned() -> None:
    """A server may outlive the command that started it (`meshmart kafka up`): let go of it
    without subprocess's "still running" ResourceWarning."""
    for child in _SPAWNED.values():
        if child.poll() is None:
            child.returncode = 0  # not waited for on purpose; init adopts it
    _SPAWNED.clear()


def alive(pid: int, name: str | None = None) -> bool:
    """`pid` runs (a zombie does not count) and, with `name`, is that program (so a recycled
    PID does not count either)."""
    child = _SPAWNED.get(pid)
    if child is not None:  # ours: polling reaps it, so it never lingers as a zombie
        if child.poll() is None:
            return True
        _EXIT_CODES[pid] = child.returncode
        del _SPAWNED[pid]
        return False
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and (name is None or process.name() == name)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # someone else's process: it exists
        return name is None


def cmdline(pid: int) -> list[str] | None:
    """The argv of a live process; None if it is gone or a zombie, [] if it cannot be read."""
    if not alive(pid):
        return None
    try:
        return psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return []


def exit_text(code: int) -> str:
    """Why a child ended: "exit 1", or "killed by SIGKILL" (Popen's negative code)."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit {code}"


def describe_exit(pid: int) -> str:
    """ " (exit 1)" or " (killed by SIGABRT)" for a spawned server seen exiting, else ""."""
    code = _EXIT_CODES.pop(pid, None)
    return "" if code is None else f" ({exit_text(code)})"


def wait_gone(pid: int, timeout: float, name: str | None = None) -> bool:
    return wait_until(lambda: not alive(pid, name), timeout, interval=0.05)


def terminate(pid: int, timeout: float, name: str | None = None) -> bool:
    """SIGTERM, then SIGKILL after `timeout`; True if the process exited before the SIGKILL.
    Raises TimeoutError if it is still there 10 s after the SIGKILL."""
    for sig, grace in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        if alive(pid, name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if wait_gone(pid, grace, name):
            return sig == signal.SIGTERM
    raise TimeoutError(f"pid {pid} did not exit after SIGKILL")
