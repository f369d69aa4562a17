"""`meshmart load` against the real local mesh: the shopper mix flows through the ingress and
from the loadgen sidecar, with a live line and a final table; in-mesh load follows the
services' VirtualServices and is let in by loadgen's own policy; bad options and no shop are
clear errors."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path

import pytest

from mesh.envoy.process import stats
from mesh.paths import ISTIO_DIR
from mesh.runtime.polling import wait_until
from mesh.runtime.ports import free_port
from mesh.runtime.processes import alive
from tests.mesh.conftest import Mesh
from tests.support.processes import still_alive_after
from tests.support.shop import start_shop

OPERATIONS = ("browse catalog", "log in", "place order", "read own user", "sign up", "view product")


SERVICES = ("user-service", "catalog-service", "order-service")
ORDER = "order-service.meshmart.svc.cluster.local"


def _admin(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _inbound_2xx(mesh: Mesh, service: str, version: str | None = None) -> int:
    """Requests every sidecar of `service` (of `version`) answered with a 2xx, from its own
    Envoy stats."""
    return sum(
        sum(stats(_admin(w["sidecar_admin_url"]), _INBOUND_2XX).values())
        for w in mesh.state["workloads"].values()
        if w["service"] == service and version in (None, w["version"])
    )


_INBOUND_2XX = "^http.inbound_8080.downstream_rq_2xx$"


def _loadgen_sent(mesh: Mesh) -> dict[str, int]:
    """2xx answers per outbound cluster (`outbound|8080|v1|<host>`) of the loadgen sidecar."""
    found = stats(_admin(mesh.state["loadgen"]["sidecar_admin_url"]), "upstream_rq_2xx$")
    return {
        name.removeprefix("cluster.").removesuffix(".upstream_rq_2xx"): count
        for name, count in found.items()
        if name.startswith("cluster.outbound|")
    }


def _loadgen_has_sent(mesh: Mesh) -> bool:
    return sum(_loadgen_sent(mesh).values()) > 0


def _rows(stdout: str) -> dict[str, tuple[int, int]]:
    """The final table: operation -> (requests, failed)."""
    return {
        m.group(1): (int(m.group(2)), int(m.group(3)))
        for line in stdout.splitlines()
        if (m := re.match(r"(\w[\w ]*?)\s{2,}(\d+)\s+(\d+)\s+\d+\.\d", line))
    }


def test_the_shopper_mix_flows_through_the_mesh(mesh: Mesh) -> None:
    """The default, `--via both`: half the shoppers through the ingress, half from loadgen."""
    before = {s: _inbound_2xx(mesh, s) for s in SERVICES}
    sent_before = _loadgen_sent(mesh)
    run = mesh.meshmart("load", "--rps", "20", "--users", "4", "--duration", "6")
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == (
        "meshmart load: 4 shoppers, 20 req/s in all: 2 from loadgen, "
        f"2 through the ingress {mesh.ingress}, for 6 s"
    )
    live = [line for line in lines if re.match(r"\s+\d+\.\d s\s+\d+\.\d req/s", line)]
    # One every 2 s; a loaded machine may delay the printer past the 6 s, but never all of them.
    assert live, run.stdout
    rows = _rows(run.stdout)
    assert set(OPERATIONS) <= set(rows), run.stdout
    assert all(requests > 0 and failed == 0 for requests, failed in rows.values()), run.stdout
    assert lines[-1] == "errors by status: none"
    after = {s: _inbound_2xx(mesh, s) for s in before}
    # Each service's sidecars answered the shoppers' requests to it, through the mesh.
    assert after["user-service"] - before["user-service"] >= rows["read own user"][0]
    assert after["catalog-service"] - before["catalog-service"] >= rows["browse catalog"][0]
    assert after["order-service"] - before["order-service"] >= rows["place order"][0]
    # The in-mesh half left through the loadgen sidecar, to every service the shopper calls.
    sent = _loadgen_sent(mesh)
    for service in SERVICES:
        host = f"{service}.meshmart.svc.cluster.local"
        grew = [c for c in sent if c.endswith(f"|{host}") and sent[c] > sent_before.get(c, 0)]
        assert grew, (service, sent)


def test_in_mesh_orders_follow_the_virtual_service_the_ingress_ignores(mesh: Mesh) -> None:
    """With every order-service call routed to v2, in-mesh load reaches v2 only: loadgen's
    orders and user-service's reads alike (through the ingress a third of them would land
    on v1, whatever the weights); the v1 replica sees nothing, and sees loadgen as the caller."""
    applied = mesh.meshmart("apply", "-f", str(ISTIO_DIR / "virtual-service-order-v2.yaml"))
    assert applied.returncode == 0, applied.stderr
    try:
        v1, v2 = (
            _inbound_2xx(mesh, "order-service", "v1"),
            _inbound_2xx(mesh, "order-service", "v2"),
        )
        sent_before = _loadgen_sent(mesh)
        run = mesh.meshmart(
            "load", "--via", "mesh", "--rps", "20", "--users", "4", "--duration", "5"
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.stdout.startswith(
            "meshmart load: 4 shoppers, 20 req/s in all: 4 from loadgen, for 5 s\n"
        )
        rows = _rows(run.stdout)
        placed, reads = rows["place order"][0], rows["read own user"][0]
        assert placed > 0 and rows["place order"][1] == 0, run.stdout
        assert _inbound_2xx(mesh, "order-service", "v1") == v1
        assert _inbound_2xx(mesh, "order-service", "v2") - v2 >= placed + reads
        sent = _loadgen_sent(mesh)
        assert (
            sent[f"outbound|8080|v2|{ORDER}"] - sent_before.get(f"outbound|8080|v2|{ORDER}", 0)
            == placed
        )
        assert sent.get(f"outbound|8080|v1|{ORDER}", 0) == sent_before.get(
            f"outbound|8080|v1|{ORDER}", 0
        )
    finally:
        back = mesh.meshmart("apply", "-f", str(ISTIO_DIR / "virtual-service-all-v1.yaml"))
        assert back.returncode == 0, back.stderr
    log = (mesh.run_dir / "logs" / "order-service-v2-0.log").read_text()
    assert '"caller": "spiffe://cluster.local/ns/meshmart/sa/loadgen"' in log


def _status_via_loadgen(mesh: Mesh) -> tuple[int, str]:
    to_order = mesh.state["loadgen"]["outbound"][ORDER]
    try:
        with urllib.request.urlopen(f"http://{to_order}/health/live", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_loadgen_is_let_in_by_its_own_policy(mesh: Mesh, tmp_path: Path) -> None:
    """authorization-policy-loadgen.yaml is what admits it: with order-service's loadgen
    policy naming another principal, order-service's sidecar answers loadgen 403 (RBAC)."""
    status = mesh.meshmart("status")
    sidecar = mesh.state["loadgen"]["sidecar_pid"]
    # WORKLOAD, APP PID (none), SIDECAR PID, RESTARTS, INBOUND (none), ADMIN
    loadgen_row = rf"^loadgen\s+-\s+{sidecar}\s+0\s+-\s+http://127"
    assert re.search(loadgen_row, status.stdout, re.M), status.stdout
    assert _status_via_loadgen(mesh)[0] == 200
    other = tmp_path / "authorization-policy-order-not-loadgen.yaml"
    other.write_text(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        "metadata: {name: order-service-loadgen, namespace: meshmart}\n"
        "spec:\n  selector: {matchLabels: {app: order-service}}\n  action: ALLOW\n"
        "  rules: [{from: [{source: {principals: [cluster.local/ns/meshmart/sa/fortio]}}]}]\n"
    )
    assert mesh.meshmart("apply", "-f", str(other)).returncode == 0
    try:
        # A connection pooled before the apply may carry one more answer under the old policy.
        assert wait_until(lambda: _status_via_loadgen(mesh) == (403, "RBAC: access denied"), 10)
    finally:
        restored = mesh.meshmart(
            "apply", "-f", str(ISTIO_DIR / "authorization-policy-loadgen.yaml")
        )
        assert restored.returncode == 0, restored.stderr
    assert wait_until(lambda: _status_via_loadgen(mesh)[0] == 200, 10)


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


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--users", "1"), "--via both needs --users 2 or more"),
        (
            ("--via", "mesh", "--url", "http://127.0.0.1:1"),
            "--url names an ingress, which --via mesh does not use",
        ),
    ],
)
def test_ways_in_that_cannot_work_are_refused(
    mesh: Mesh, args: tuple[str, ...], reason: str
) -> None:
    run = mesh.meshmart("load", *args)
    assert (run.returncode, run.stderr) == (2, f"meshmart load: error: {reason}\n")


def test_no_running_shop_is_one_clear_line(tmp_path: Path, mesh: Mesh) -> None:
    run = Mesh(mesh.proc, tmp_path).meshmart("load", "--duration", "1")
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
        shop = Mesh(proc, run_dir)
        assert wait_until(partial(_ordered, shop), 30), "no request reached order-service"
        status = shop.meshmart("status")
        assert f"load: 10 req/s from 5 shoppers, pid {load['pid']}, restarts 0\n" in status.stdout
        # In-mesh, from the loadgen sidecar, so the VirtualServices shape it.
        assert wait_until(partial(_loadgen_has_sent, shop), 30), "nothing left loadgen"
    assert still_alive_after([load["pid"]], 10) == []
    log = Path(load["log"]).read_text()
    # The final table, written on SIGTERM, counts what the shoppers sent.
    assert re.search(r"^total\s+[1-9]", log, re.M) and "errors by status:" in log, log
    assert "5 shoppers, 10 req/s in all: 5 from loadgen, until Ctrl-C" in log, log
