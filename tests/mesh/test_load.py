"""`meshmart load` against the real local mesh: the shopper mix flows through the ingress and
the sidecars, with a live line and a final table; bad options and no shop are clear errors."""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

import pytest

from mesh.envoy.process import stats
from mesh.runtime.polling import wait_until
from mesh.runtime.ports import free_port
from mesh.runtime.processes import alive
from tests.mesh.conftest import Mesh
from tests.support.processes import still_alive_after
from tests.support.shop import start_shop

OPERATIONS = ("browse catalog", "log in", "place order", "read own user", "sign up", "view product")


SERVICES = ("user-service", "catalog-service", "order-service")


def _inbound_2xx(mesh: Mesh, service: str) -> int:
    """Requests every sidecar of `service` answered with a 2xx, from its own Envoy stats."""
    return sum(
        sum(stats(int(w["sidecar_admin_url"].rsplit(":", 1)[1]), _INBOUND_2XX).values())
        for w in mesh.state["workloads"].values()
        if w["service"] == service
    )


_INBOUND_2XX = "^http.inbound_8080.downstream_rq_2xx$"


def test_the_shopper_mix_flows_through_the_mesh(mesh: Mesh) -> None:
    before = {
        s: _inbound_2xx(mesh, s) for s in ("user-service", "catalog-service", "order-service")
    }
    run = mesh.meshmart("load", "--rps", "20", "--users", "4", "--duration", "6")
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"meshmart load: 4 shoppers, 20 req/s in all, against {mesh.ingress} for 6 s"
    live = [line for line in lines if re.match(r"\s+\d+\.\d s\s+\d+\.\d req/s", line)]
    assert len(live) >= 2, run.stdout
    rows = {
        m.group(1): (int(m.group(2)), int(m.group(3)))
        for line in lines
        if (m := re.match(r"(\w[\w ]*?)\s{2,}(\d+)\s+(\d+)\s+\d+\.\d", line))
    }
    assert set(OPERATIONS) <= set(rows), run.stdout
    assert all(requests > 0 and failed == 0 for requests, failed in rows.values()), run.stdout
    assert lines[-1] == "errors by status: none"
    after = {s: _inbound_2xx(mesh, s) for s in before}
    # Each service's sidecars answered the shoppers' requests to it, through the mesh.
    assert after["user-service"] - before["user-service"] >= rows["read own user"][0]
    assert after["catalog-service"] - before["catalog-service"] >= rows["browse catalog"][0]
    assert after["order-service"] - before["order-service"] >= rows["place order"][0]


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("--rps", "0", "must be above 0"),
        ("--rps", "fast", "expected a number"),
        ("--users", "0", "expected a whole number from 1"),
        ("--duration", "-1", "must be 0 (until Ctrl-C) or more"),
        ("--url", "127.0.0.1:8080", "expected http://HOST:PORT"),
    ],
)
def test_bad_options_are_refused_by_name(mesh: Mesh, option: str, value: str, reason: str) -> None:
    run = mesh.meshmart("load", option, value)
    assert run.returncode == 2
    assert f"argument {option}: {reason}" in run.stderr


def test_no_running_shop_is_one_clear_line(tmp_path: Path, mesh: Mesh) -> None:
    run = Mesh(mesh.proc, tmp_path, {}).meshmart("load", "--duration", "1")
    assert run.returncode == 1
    assert run.stderr == f"meshmart load: error: no `meshmart run` is running from {tmp_path}\n"


def _ordered(shop: Mesh) -> bool:
    return _inbound_2xx(shop, "order-service") > 0


def test_run_with_load_keeps_traffic_flowing_and_stops_it(tmp_path: Path) -> None:
    """`meshmart run --with-load`: traffic reaches the services with nobody sending any, and
    Ctrl-C stops the generator with the rest, its final table in its log."""
    run_dir = tmp_path / "run"
    for proc in start_shop(run_dir, "--ingress-port", str(free_port()), "--with-load", "10"):
        state = json.loads((run_dir / "state.json").read_text())
        load = state["load"]
        assert (load["rps"], load["users"]) == (10, 5) and alive(load["pid"])
        shop = Mesh(proc, run_dir, state)
        assert wait_until(partial(_ordered, shop), 30), "no request reached order-service"
        status = shop.meshmart("status")
        assert f"load: 10 req/s from 5 shoppers, pid {load['pid']}\n" in status.stdout
    assert still_alive_after([load["pid"]], 10) == []
    log = Path(load["log"]).read_text()
    # The final table, written on SIGTERM, counts what the shoppers sent.
    assert re.search(r"^total\s+[1-9]", log, re.M) and "errors by status:" in log, log
