"""A whole local mesh run: loopback only, and `meshmart down` stops every process it started."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mesh.runtime.ports import free_port
from tests.support.processes import listening_sockets_of, only_loopback, still_alive_after
from tests.support.shop import start_shop


def test_everything_listens_on_loopback_and_down_stops_it_all(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    for proc in start_shop(run_dir, "--ingress-port", str(free_port())):
        state = json.loads((run_dir / "state.json").read_text())
        pids = {
            "ingress": state["ingress"]["pid"],
            "kafka": state["kafka_pid"],
            "zipkin": state["zipkin_pid"],
            "postgres": int(
                (run_dir / "postgres" / "data" / "postmaster.pid").read_text().split()[0]
            ),
        }
        for name, w in state["workloads"].items():
            pids[name] = w["app_pid"]
            pids[f"{name}-envoy"] = w["sidecar_pid"]
        pids["loadgen-envoy"] = state["loadgen"]["sidecar_pid"]  # a client sidecar, no app
        for name, pid in pids.items():
            addresses = listening_sockets_of(pid)
            assert only_loopback(addresses), f"{name} listens on {addresses}"
        for w in state["workloads"].values():
            assert listening_sockets_of(w["app_pid"]) == [], "apps are reachable only via sidecars"

        down = subprocess.run(
            [sys.executable, "-m", "mesh.cli", "down", "--run-dir", str(run_dir)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert down.returncode == 0, down.stderr
        assert proc.wait(30) == 0
        left = still_alive_after(list(pids.values()), 15)
        assert {n: p for n, p in pids.items() if p in left} == {}
        assert not (run_dir / "state.json").exists()
