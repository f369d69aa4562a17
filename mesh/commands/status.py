"""`meshmart status`, `down` and `logs`: look at, and stop, a running `meshmart run`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from mesh.paths import DEFAULT_RUN_DIR
from mesh.runtime.processes import alive, wait_gone


def _state(run_dir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((run_dir / "state.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return state


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
    state = _state(args.run_dir)
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
    print(f"ingress  {state['ingress_url']}   zipkin {state['zipkin_url']}")
    print(f"{'WORKLOAD':<24}{'APP PID':>8}{'SIDECAR PID':>13}  {'INBOUND (mTLS)':<18}ADMIN")
    for name, w in state["workloads"].items():
        up = alive(w["app_pid"]) and alive(w["sidecar_pid"])
        print(
            f"{name:<24}{w['app_pid']:>8}{w['sidecar_pid']:>13}  {w['sidecar_inbound']:<18}"
            f"{w['sidecar_admin_url']}{'' if up else '  (DOWN)'}"
        )
    if loadgen := state.get("loadgen"):  # a client sidecar: no app, no inbound listener
        down = "" if alive(loadgen["sidecar_pid"]) else "  (DOWN)"
        print(f"{'loadgen':<24}{'-':>8}{loadgen['sidecar_pid']:>13}  {'-':<18}"
              f"{loadgen['sidecar_admin_url']}{down}")  # fmt: skip
    if console := state.get("console"):
        running = "" if alive(console["pid"]) else "  (DOWN)"
        print(f"console: {console['url']}, pid {console['pid']}{running}")
    if load := state.get("load"):
        running = "" if alive(load["pid"]) else "  (DOWN)"
        print(
            f"load: {load['rps']:g} req/s from {load['users']} shoppers, pid {load['pid']}{running}"
        )
    return 0


def _down(args: argparse.Namespace) -> int:
    state = _state(args.run_dir)
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
