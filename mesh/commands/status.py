"""`meshmart status`, `down` and `logs`: look at, and stop, a running `meshmart run`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from mesh.infra.kafka import running_kafka
from mesh.infra.postgres import running_server
from mesh.infra.zipkin import running_zipkin
from mesh.paths import DEFAULT_RUN_DIR, postgres_data_dir
from mesh.runtime.processes import alive, wait_gone
from mesh.runtime.shop_state import read_state


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = subparsers.add_parser("status", help="what `meshmart run` is running")
    status.add_argument("--json", action="store_true")
    down = subparsers.add_parser("down", help="stop a running `meshmart run`")
    logs = subparsers.add_parser("logs", help="a service's app and sidecar logs")
    logs.add_argument("service")
    logs.add_argument("-n", "--lines", type=int, default=40)
    for parser, func in ((status, _status), (down, _down), (logs, _logs)):
        parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
        parser.set_defaults(func=func)


def _status(args: argparse.Namespace) -> int:
    state = read_state(args.run_dir)
    if state is None or not alive(state["supervisor_pid"]):
        print("meshmart is not running" + ("" if args.json else f" (run dir {args.run_dir})"))
        return 3
    if args.json:
        print(json.dumps(state, indent=2))
        return 0
    if state["mode"] == "direct":
        for name, svc in state["services"].items():
            print(f"{name:<20} {svc['url']:<28} pid {svc['pid']}")
        return 0
    processes: dict[str, dict[str, Any]] = state.get("processes", {})
    print(f"ingress  {state['ingress_url']}   zipkin {state['zipkin_url']}")
    print(f"{'WORKLOAD':<24}{'APP PID':>8}{'SIDECAR PID':>13}{'RESTARTS':>10}  "
          f"{'INBOUND (mTLS)':<18}ADMIN")  # fmt: skip
    for name, w in state["workloads"].items():
        names = [name, f"{name}-envoy"]
        print(
            f"{name:<24}{w['app_pid']:>8}{w['sidecar_pid']:>13}"
            f"{_restarts(processes, names):>10}  {w['sidecar_inbound']:<18}"
            f"{w['sidecar_admin_url']}{_down_note(processes, names)}"
        )
    if loadgen := state.get("loadgen"):  # a client sidecar: no app, no inbound listener
        names = ["loadgen-envoy"]
        print(
            f"{'loadgen':<24}{'-':>8}{loadgen['sidecar_pid']:>13}{_restarts(processes, names):>10}"
            f"  {'-':<18}{loadgen['sidecar_admin_url']}{_down_note(processes, names)}"
        )
    children = {  # by the supervisor's process names
        "istio-ingressgateway": f"ingress gateway: pid {state['ingress']['pid']}",
        "console": f"console: {c['url']}, pid {c['pid']}" if (c := state.get("console")) else "",
        "load": f"load: {lo['rps']:g} req/s from {lo['users']} shoppers, pid {lo['pid']}"
        if (lo := state.get("load"))
        else "",
    }
    for name, line in children.items():
        if line:
            print(f"{line}, restarts {_restarts(processes, [name])}{_down_note(processes, [name])}")
    for server, pid, command in _servers(state, args.run_dir):
        print(
            f"{server}: pid {pid}"
            if pid
            else f"{server}: DOWN (meshmart run does not restart it; "
            f"`meshmart {command} up --run-dir {args.run_dir}` starts it again)"
        )
    return 0


def _restarts(processes: dict[str, dict[str, Any]], names: list[str]) -> int:
    return sum(processes.get(name, {}).get("restarts", 0) for name in names)


def _down_note(processes: dict[str, dict[str, Any]], names: list[str]) -> str:
    """ "  DOWN: killed by SIGKILL, restarting" for a child the supervisor is restarting."""
    notes = [
        f"{name}: {p['last_exit']}"
        for name in names
        if (p := processes.get(name)) and p["state"] != "running"
    ]
    return f"  DOWN ({'; '.join(notes)}; restarting)" if notes else ""


def _servers(state: dict[str, Any], run_dir: Path) -> list[tuple[str, int | None, str]]:
    """PostgreSQL, Kafka and Zipkin with their live PIDs (None when down), found by their pid
    files as `meshmart db|kafka|zipkin up` finds them: the supervisor does not restart them (a
    server may outlive the run), so one a user started again has a new PID."""
    servers: list[tuple[str, int | None, str]] = []
    if not os.environ.get("MESHMART_PG_DSN"):  # an external server is not ours to report
        postgres = running_server(postgres_data_dir(run_dir))
        servers.append(("postgresql", postgres.pid if postgres else None, "db"))
    kafka = running_kafka(run_dir)
    servers.append(("kafka", kafka.pid if kafka else None, "kafka"))
    if "zipkin_url" in state:
        zipkin = running_zipkin(run_dir)
        servers.append(("zipkin", zipkin.pid if zipkin else None, "zipkin"))
    return servers


def _down(args: argparse.Namespace) -> int:
    state = read_state(args.run_dir)
    if state is None or not alive(state["supervisor_pid"]):
        print("meshmart is not running")
        return 0
    pid = state["supervisor_pid"]
    os.kill(pid, signal.SIGTERM)  # the supervisor stops everything it started, by PID
    if not wait_gone(pid, 90):
        print(f"meshmart run (pid {pid}) did not stop within 90 s", file=sys.stderr)
        return 1
    print("meshmart stopped")
    return 0


def _logs(args: argparse.Namespace) -> int:
    logs = args.run_dir / "logs"
    service = args.service.removesuffix("-service")
    files = sorted(logs.glob(f"{service}-service*.log")) + sorted(logs.glob(f"{service}*.log"))
    if not files:
        print(f"no logs for {args.service!r} in {logs}", file=sys.stderr)
        return 1
    for path in dict.fromkeys(files):
        print(f"==> {path} <==")
        print("\n".join(path.read_text(errors="replace").splitlines()[-args.lines :]))
    return 0
