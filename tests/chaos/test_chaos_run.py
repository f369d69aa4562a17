"""The chaos run at CI size, on a shop of its own: shoppers order through the ingress while
apps, sidecars, Kafka and PostgreSQL are killed and routes fail, and afterwards nothing is
lost, doubled or unclean (mesh.chaos). `make chaos` runs it at full size
(MESHMART_CHAOS_SCALE=full), keeping its record in MESHMART_CHAOS_OUT."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from mesh.chaos.runner import SCALES, run
from mesh.infra.kafka import running_kafka
from mesh.infra.postgres import running_server
from mesh.infra.zipkin import running_zipkin
from mesh.paths import postgres_data_dir
from mesh.runtime.ports import free_port
from mesh.runtime.shop_state import read_state
from tests.support.processes import still_alive_after
from tests.support.shop import start_shop


def _every_pid(run_dir: Path) -> dict[str, int]:
    """Each process the shop runs now: the supervisor's children and the three servers."""
    state = read_state(run_dir)
    assert state is not None
    pids = {name: int(p["pid"]) for name, p in state["processes"].items()}
    servers = {
        "postgres": running_server(postgres_data_dir(run_dir)),
        "kafka": running_kafka(run_dir),
        "zipkin": running_zipkin(run_dir),
    }
    for name, server in servers.items():
        assert server is not None, f"{name} is not running after the chaos run"
        pids[name] = server.pid
    return pids


SCALE = SCALES[os.environ.get("MESHMART_CHAOS_SCALE", "ci")]


# One round takes two to three minutes on two cores; the shop's start and stop add one.
@pytest.mark.timeout(300 + 240 * SCALE.rounds)
def test_chaos_run_loses_nothing_and_every_error_is_clean(tmp_path: Path) -> None:
    scale = SCALE
    out_dir = Path(os.environ.get("MESHMART_CHAOS_OUT", tmp_path / "chaos"))
    run_dir = tmp_path / "run"
    args = ("--ingress-port", str(free_port()), "--replicas", "order=2", "--trace-sampling", "1")
    for proc in start_shop(run_dir, *args):
        outcome = run(run_dir, out_dir, scale)
        report = (out_dir / "report.txt").read_text()
        assert outcome.violations == [], report
        assert len(outcome.faults) >= 13 * scale.rounds, report
        assert len(outcome.operations) > 500, report
        pids = _every_pid(run_dir)
        # Ctrl-C, as a user stops it: everything it started, and the servers the run
        # restarted by hand (found by their pid files), stop; nothing is SIGKILLed.
        proc.send_signal(signal.SIGINT)
        assert proc.wait(90) == 0
    left = still_alive_after(list(pids.values()), 15)
    assert {name: pid for name, pid in pids.items() if pid in left} == {}
