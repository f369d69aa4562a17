"""`meshmart run`: PostgreSQL, Kafka, Zipkin and the shop behind Envoy sidecars, until Ctrl-C.

The default is the local mesh: each app listens on a private unix socket behind its own
Envoy sidecar (mTLS between sidecars), and clients come in through the ingress Envoy.
`--direct` runs the apps on loopback ports without any mesh (for debugging the services).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from mesh.commands.console import DEFAULT_PORT as DEFAULT_CONSOLE_PORT
from mesh.commands.console import console_command
from mesh.commands.load import positive_number
from mesh.control.topology import Topology
from mesh.control.workloads import SERVICES, by_name
from mesh.infra.kafka import KafkaBroker, KafkaError
from mesh.infra.maven import MavenError
from mesh.infra.postgres import PostgresError
from mesh.infra.zipkin import ZipkinError, ZipkinServer
from mesh.istio.loader import IstioConfigError
from mesh.load import DEFAULT_USERS, load_command
from mesh.load.plan import Plan, through_sidecar
from mesh.paths import DEFAULT_RUN_DIR
from mesh.runtime.appenv import app_env
from mesh.runtime.localmesh import start_local_mesh
from mesh.runtime.ports import free_port, port_is_free
from mesh.runtime.processes import Child, python_module
from mesh.runtime.shop_state import state_file, write_state
from mesh.runtime.supervisor import Supervisor

EXPECTED = (PostgresError, KafkaError, MavenError, ZipkinError, IstioConfigError, RuntimeError)


class Stop(Exception):
    """Ctrl-C or SIGTERM: shut everything down."""


def _replicas(values: list[str]) -> dict[tuple[str, str], int]:
    """`order=2`, `order-service:v2=1` → {(service, version): count}; one v1 each by default."""
    counts = {(s.name, "v1"): 1 for s in SERVICES}
    for value in values:
        target, _, count = value.partition("=")
        service, _, version = target.partition(":")
        try:
            counts[(by_name(service).name, version or "v1")] = int(count)
        except (KeyError, ValueError):
            raise argparse.ArgumentTypeError(
                f"--replicas {value!r}: expected SERVICE[:VERSION]=N"
            ) from None
    return {k: v for k, v in counts.items() if v > 0}


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a percentage from 0 to 100, got {text!r}")
    return value


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of threads from 1 to 64, got {text!r}")
    return int(text)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("run", help="run the whole shop locally", description=__doc__)
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    parser.add_argument("--ingress-port", type=int, default=8080)
    parser.add_argument(
        "--replicas", action="append", default=[], metavar="SERVICE[:VERSION]=N",
        help="e.g. --replicas order=2 --replicas order:v2=1 (default: one v1 of each)",
    )  # fmt: skip
    parser.add_argument("--direct", action="store_true", help="no mesh: apps on loopback ports")
    parser.add_argument(
        "--base-port", type=int, default=8100, help="--direct: apps on base+1, base+2, base+3"
    )
    parser.add_argument("--pg-bin", type=Path, default=None)
    parser.add_argument(
        "--trace-sampling", type=_percent, default=100.0, metavar="PERCENT",
        help="share of requests traced, decided at the edge (default 100, Istio's demo "
        "profile; Istio's own default is 1)",
    )  # fmt: skip
    parser.add_argument(
        "--test-endpoints",
        action="store_true",
        help="mount POST /test/fault on each app's socket (fault-injection tests)",
    )
    parser.add_argument(
        "--proxy-concurrency", type=_workers, default=1, metavar="N",
        help="worker threads per Envoy (Istio's proxy concurrency; default 1, see "
        "docs/benchmarks.md)",
    )  # fmt: skip
    parser.add_argument(
        "--with-load", type=positive_number, nargs="?", const=2.0, default=None, metavar="RPS",
        help="keep shopper traffic flowing from the loadgen sidecar (meshmart load --via mesh; "
        "2 req/s if no RPS is given), so the mesh has something to show from the start and "
        "canary weights apply to it",
    )  # fmt: skip
    parser.add_argument(
        "--console-port", type=int, default=DEFAULT_CONSOLE_PORT, metavar="PORT",
        help=f"loopback port of the mesh console (default {DEFAULT_CONSOLE_PORT}, Kiali's; a "
        "free one if it is taken)",
    )  # fmt: skip
    parser.add_argument(
        "--app-access-log", action="store_true",
        help="apps log every request too (the sidecars always do; direct mode always does)",
    )  # fmt: skip
    parser.set_defaults(func=run)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    began = time.monotonic()
    sup = Supervisor(args.run_dir)
    try:
        replicas = _replicas(args.replicas)
        if args.direct and args.with_load:
            raise argparse.ArgumentTypeError("--with-load drives the mesh: not with --direct")
        # the console first: its imports overlap the servers' start (it waits for state.json)
        console = None if args.direct else _start_console(sup, args.console_port)
        admin_dsn, broker, zipkin = sup.infrastructure(args.pg_bin, zipkin=not args.direct)
        describe: Callable[[], dict[str, Any]]
        if zipkin is None:
            urls = _direct(sup, admin_dsn, broker, args.base_port, args.trace_sampling)
            describe = partial(_direct_state, sup, urls, broker)
        else:
            topology = start_local_mesh(
                sup,
                admin_dsn,
                broker,
                zipkin,
                replicas=replicas,
                ingress_port=args.ingress_port,
                test_endpoints=args.test_endpoints,
                trace_sampling_percent=args.trace_sampling,
                proxy_concurrency=args.proxy_concurrency,
                app_access_log=args.app_access_log,
            )
            load = None
            if args.with_load and (loadgen := _client_state(topology, sup)) is not None:
                load = _start_load(sup, loadgen["outbound"], args.with_load)
            extras = {"console": console, "load": load}
            describe = partial(_mesh_state, sup, topology, broker, zipkin, extras)
        publish = partial(_publish, sup, describe)
        publish()
        if console is not None:
            _wait_console(sup, console)
        _print_summary(describe(), sup, time.monotonic() - began)
        sup.watch(on_change=publish)
    except Stop as stop:
        print(f"\n{stop}: stopping", flush=True)
        return 0
    except argparse.ArgumentTypeError as exc:
        print(f"meshmart run: error: {exc}", file=sys.stderr)
        return 2
    except EXPECTED as exc:
        print(f"meshmart run: error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sup.close()
        state_file(sup.run_dir).unlink(missing_ok=True)


@dataclass(frozen=True)
class Extra:
    """A child beside the mesh (the console, the load generator) and what state.json says of
    it; its PID is read when state.json is written, so a restart shows there."""

    child: Child
    details: dict[str, Any]

    def state(self) -> dict[str, Any]:
        return {"pid": self.child.pid, **self.details}


def _publish(sup: Supervisor, describe: Callable[[], dict[str, Any]]) -> None:
    """state.json: written when the shop is up and again after each exit and restart, with the
    live PIDs and each child's restarts."""
    state = {**describe(), "supervisor_pid": os.getpid(), "processes": sup.report()}
    write_state(sup.run_dir, state)


def _start_console(sup: Supervisor, port: int) -> Extra:
    """`meshmart console` as a child: it reads state.json once written."""
    if not port_is_free(port):
        port = free_port("console")  # Kiali's 20001 is taken (a second shop?): any free one
    log = sup.run_dir / "logs" / "console.log"
    child = sup.start(Child("console", console_command(port, sup.run_dir), {}, log))
    return Extra(child, {"url": f"http://127.0.0.1:{port}", "log": str(log)})


def _wait_console(sup: Supervisor, console: Extra) -> None:
    ready = partial(_http_ok, f"{console.details['url']}/api/openapi.json")
    try:
        sup.wait_ready(console.child, ready, "console")
    except RuntimeError as exc:  # the shop works without its console: say so and go on
        print(f"meshmart run: warning: {exc}", file=sys.stderr)


def _start_load(sup: Supervisor, loadgen: dict[str, str], rps: float) -> Extra:
    """`meshmart load --via mesh` as one more child: stopped first (SIGTERM), its table in its
    log. In-mesh, so the VirtualServices' weights and faults shape it (the ingress ignores them)."""
    log = sup.run_dir / "logs" / "load.log"
    argv = load_command(Plan((through_sidecar(loadgen),), rps, DEFAULT_USERS, 0))
    child = sup.start(Child("load", argv, {}, log))
    return Extra(child, {"rps": rps, "users": DEFAULT_USERS, "log": str(log)})


def _mesh_state(
    sup: Supervisor,
    topology: Topology,
    broker: KafkaBroker,
    zipkin: ZipkinServer,
    extras: dict[str, Extra | None],
) -> dict[str, Any]:
    pids = {c.name: c.pid for c in sup.children}
    return {
        "mode": "mesh",
        "ingress_url": f"http://127.0.0.1:{topology.ingress.port}",
        "ingress": {
            "admin_url": f"http://127.0.0.1:{topology.ingress.admin_port}",
            "pid": pids[topology.ingress.name],
        },
        "zipkin_url": zipkin.url,
        "zipkin_pid": zipkin.pid,
        "kafka_bootstrap_servers": broker.bootstrap_servers,
        "kafka_pid": broker.pid,
        "workloads": {
            w.name: {
                "service": w.service,
                "version": w.version,
                "app_socket": str(w.app_socket),
                "app_pid": pids[w.name],
                "sidecar_inbound": f"127.0.0.1:{w.inbound_port}",
                "sidecar_admin_url": f"http://127.0.0.1:{w.admin_port}",
                "sidecar_pid": pids[f"{w.name}-envoy"],
                "spiffe_id": w.spiffe_id,
                "outbound": {h: f"127.0.0.1:{p}" for h, p in w.outbound_ports.items()},
            }
            for w in topology.workloads
        },
        # The client-only sidecar `meshmart load --via mesh` sends its shoppers through.
        "loadgen": _client_state(topology, sup),
        **{name: extra.state() for name, extra in extras.items() if extra is not None},
    }


def _client_state(topology: Topology, sup: Supervisor) -> dict[str, Any] | None:
    loadgen = topology.loadgen
    if loadgen is None:
        return None
    sidecar = next(c for c in sup.children if c.name == f"{loadgen.name}-envoy")
    return {
        "sidecar_admin_url": f"http://127.0.0.1:{loadgen.admin_port}",
        "sidecar_pid": sidecar.pid,
        "spiffe_id": loadgen.spiffe_id,
        "outbound": {h: f"127.0.0.1:{p}" for h, p in loadgen.outbound_ports.items()},
    }


def _direct(
    sup: Supervisor, admin_dsn: str, broker: KafkaBroker, base_port: int, sampling: float
) -> dict[str, str]:
    """Each app on a loopback port, no sidecars; returns each service's URL."""
    urls = {spec.name: f"http://127.0.0.1:{base_port + i + 1}" for i, spec in enumerate(SERVICES)}
    for number, spec in enumerate(SERVICES, start=1):
        env = app_env(
            spec,
            run_dir=sup.run_dir,
            admin_dsn=admin_dsn,
            kafka_bootstrap_servers=broker.bootstrap_servers,
            listen={"MESHMART_PORT": str(base_port + number)},
            peers=urls,
        )
        env["MESHMART_TRACE_SAMPLING_PERCENT"] = str(sampling)
        log = sup.run_dir / "logs" / f"{spec.name}.log"
        child = sup.start(Child(spec.name, python_module(spec.package), env, log))
        sup.wait_ready(child, partial(_http_ok, f"{urls[spec.name]}/health/ready"), spec.name)
    return urls


def _direct_state(sup: Supervisor, urls: dict[str, str], broker: KafkaBroker) -> dict[str, Any]:
    return {
        "mode": "direct",
        "services": {c.name: {"pid": c.pid, "url": urls[c.name]} for c in sup.children},
        "kafka_bootstrap_servers": broker.bootstrap_servers,
        "kafka_pid": broker.pid,
    }


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback only
            return bool(resp.status == 200)
    except OSError:
        return False


def _print_summary(state: dict[str, Any], sup: Supervisor, seconds: float) -> None:
    print(f"\nmeshmart is up ({state['mode']} mode, {seconds:.1f} s). Press Ctrl-C to stop.")
    if state["mode"] == "mesh":
        print(f"  shop (ingress)   {state['ingress_url']}/catalog-service/catalogs")
        print(f"  zipkin           {state['zipkin_url']}")
        print(f"  ingress admin    {state['ingress']['admin_url']}")
        for name, w in state["workloads"].items():
            print(f"  {name:<16} sidecar admin {w['sidecar_admin_url']}")
        if loadgen := state.get("loadgen"):
            print(f"  {'loadgen':<16} sidecar admin {loadgen['sidecar_admin_url']} (no app)")
        if console := state.get("console"):
            print(f"  console          {console['url']}   (the mesh graph, Istio config)")
        if load := state.get("load"):
            print(f"  load             {load['rps']:g} req/s from {load['users']} shoppers "
                  f"(pid {load['pid']}, {load['log']})")  # fmt: skip
    else:
        for name, s in state["services"].items():
            print(f"  {name:<16} {s['url']}")
    print(f"  logs             {sup.run_dir / 'logs'}  (meshmart logs SERVICE)", flush=True)
