"""What `meshmart run` does when a child exits: it restarts it, after kubelet's back-off, and
reports the restart (real child processes, no servers)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from mesh.runtime.processes import Child, exit_text
from mesh.runtime.restarts import MAX_DELAY_SECONDS, Restarts
from mesh.runtime.supervisor import Supervisor


class Seen(Exception):
    """Raised from on_change to end watch(), which otherwise runs until a signal."""


def _child(tmp_path: Path, name: str, code: str) -> Child:
    return Child(name, [sys.executable, "-c", code], {}, tmp_path / "logs" / f"{name}.log")


def test_a_child_that_exits_is_restarted_and_reported(tmp_path: Path) -> None:
    said: list[str] = []
    reports: list[dict[str, dict[str, object]]] = []
    sup = Supervisor(tmp_path, progress=said.append)
    try:
        crashing = sup.start(_child(tmp_path, "app", "print('boom'); raise SystemExit(3)"))
        steady = sup.start(_child(tmp_path, "sidecar", "import time; time.sleep(60)"))
        first_pid, steady_pid = crashing.pid, steady.pid

        def on_change() -> None:
            reports.append(sup.report())
            if len(reports) == 3:  # exit, restart, second exit
                raise Seen

        began = time.monotonic()
        with pytest.raises(Seen):
            sup.watch(on_change, interval=0.02)
        exited, restarted, exited_again = reports
        assert exited["app"] == {
            "pid": first_pid, "restarts": 0, "last_exit": "exit 3", "state": "restarting",
        }  # fmt: skip
        assert restarted["app"]["state"] == "running" and restarted["app"]["restarts"] == 1
        assert restarted["app"]["pid"] != first_pid
        # the second exit waits for the doubled delay: 1 s, then 2 s before the next restart
        assert exited_again["app"]["restarts"] == 1 and exited_again["app"]["state"] == "restarting"
        assert time.monotonic() - began >= 1.0
        assert steady.pid == steady_pid and exited_again["sidecar"]["restarts"] == 0
        assert said[0].startswith(f"app (pid {first_pid}) exit 3; restarting in 1 s\n")
        assert "boom" in said[0]  # the log tail says why
        assert said[1] == f"restarted app (pid {restarted['app']['pid']}, restart 1)"
        assert said[2].startswith("app (pid") and "restarting in 2 s" in said[2]
    finally:
        sup.close()
    assert steady.exited() is not None  # close() stops the current process of every child


def test_the_back_off_doubles_to_its_cap_and_is_forgotten_after_a_minute_up() -> None:
    restarts = Restarts()
    delays = []
    for _ in range(7):
        delays.append(restarts.exited("exit 1", now=100.0, up_since=99.0))
        restarts.restarted()
    assert delays == [1, 2, 4, 8, 16, MAX_DELAY_SECONDS, MAX_DELAY_SECONDS]
    assert restarts.count == 7
    assert restarts.exited("exit 1", now=500.0, up_since=430.0) == 1  # up 70 s: back to 1 s
    assert restarts.due == 501.0


def test_exit_text_names_the_signal() -> None:
    assert exit_text(-signal.SIGKILL) == "killed by SIGKILL"
    assert exit_text(3) == "exit 3"
    assert exit_text(0) == "exit 0"


def test_a_restarted_child_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    """The restart happens with SIGINT and SIGTERM blocked in the supervisor; the new process
    must not inherit that mask, or its stop waits for the SIGKILL."""
    marker = tmp_path / "crashed-once"
    code = (
        f"import pathlib, time; marker = pathlib.Path({str(marker)!r})\n"
        "if not marker.exists(): marker.touch(); raise SystemExit(3)\n"
        "time.sleep(60)"
    )
    sup = Supervisor(tmp_path, progress=lambda _: None)
    app = sup.start(_child(tmp_path, "app", code))
    seen: list[dict[str, dict[str, object]]] = []

    def on_change() -> None:
        seen.append(sup.report())
        if len(seen) == 2:  # the exit, then the restart
            raise Seen

    try:
        with pytest.raises(Seen):
            sup.watch(on_change, interval=0.02)
        assert seen[1]["app"]["restarts"] == 1
        began = time.monotonic()
        assert app.stop(timeout=10) == -signal.SIGTERM  # not -SIGKILL after 10 s
        assert time.monotonic() - began < 5
    finally:
        sup.close()
