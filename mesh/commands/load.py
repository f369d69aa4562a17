"""`meshmart load`: a steady shopper mix against a running `meshmart run`, through its ingress
and from inside the mesh (the `loadgen` workload's sidecar).

Locust, as a library, runs `--users` shoppers who share `--rps` requests per second: they
browse the catalog, view products, read their own user with its orders and place orders with
Idempotency-Keys, each after signing up and logging in. A live line every 2 s (rate, p50,
p99, errors by status) and a table at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mesh.load import DEFAULT_USERS, load_command
from mesh.load.plan import Plan, Target, through_ingress, through_sidecar
from mesh.paths import DEFAULT_RUN_DIR
from mesh.runtime.shop_state import read_state

VIA_HELP = (
    "where the shoppers come in: `ingress` (the edge: its JWT policy and gateway routes), "
    "`mesh` (the loadgen workload's sidecar calls each service directly, so the services' "
    "VirtualServices apply: canary weights and faults, which the ingress ignores), or `both` "
    "(the default, the shoppers split between the two: every edge of the mesh carries "
    "traffic, the edge's checks and the in-mesh routing alike)"
)


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (until Ctrl-C) or more, got {text}")
    return value


def _url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected http://HOST:PORT, got {text!r}")
    return text


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("load", help="shopper traffic, through the ingress and in-mesh",
                                   description=__doc__)  # fmt: skip
    parser.add_argument("--rps", type=positive_number, default=5.0,
                        help="requests per second in all (5)")  # fmt: skip
    parser.add_argument("--users", type=_count, default=DEFAULT_USERS, help="shoppers (5)")
    parser.add_argument("--duration", type=_seconds, default=60.0,
                        help="seconds; 0 runs until Ctrl-C (60)")  # fmt: skip
    parser.add_argument("--via", choices=("ingress", "mesh", "both"), default="both",
                        help=VIA_HELP)  # fmt: skip
    parser.add_argument("--url", type=_url, help="the ingress (default: the running shop's)")
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    parser.set_defaults(func=run)


def _shop(run_dir: Path) -> dict[str, Any]:
    """The state of the `meshmart run` of `run_dir`; ValueError saying why there is none."""
    state = read_state(run_dir)
    if state is None:
        raise ValueError(f"no `meshmart run` is running from {run_dir}")
    if state.get("mode") != "mesh":
        raise ValueError("the shop runs in direct mode: meshmart load needs the mesh")
    return state


def ingress_url(run_dir: Path) -> str:
    return str(_shop(run_dir)["ingress_url"])


def loadgen_target(run_dir: Path) -> Target:
    """Each service at the loadgen sidecar's outbound listener for it."""
    loadgen = _shop(run_dir).get("loadgen")
    if not loadgen:
        raise ValueError(f"the `meshmart run` of {run_dir} has no loadgen sidecar")
    return through_sidecar(loadgen["outbound"])


def targets(run_dir: Path, via: str, url: str | None = None) -> tuple[Target, ...]:
    """The ways in `via` names, in-mesh first (it takes the odd shopper of `both`)."""
    ways = [loadgen_target(run_dir)] if via in ("mesh", "both") else []
    if via in ("ingress", "both"):
        ways.append(through_ingress(url or ingress_url(run_dir)))
    return tuple(ways)


def run(args: argparse.Namespace) -> int:
    if args.url and args.via == "mesh":
        print("meshmart load: error: --url names an ingress, which --via mesh does not use",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        ways = targets(args.run_dir, args.via, args.url)
    except ValueError as exc:
        print(f"meshmart load: error: {exc}", file=sys.stderr)
        return 1
    if args.users < len(ways):
        print(f"meshmart load: error: --via {args.via} needs --users {len(ways)} or more",
              file=sys.stderr)  # fmt: skip
        return 2
    # A process of its own (the same PID: Ctrl-C reaches it): Locust patches the standard
    # library for gevent as it is imported, before anything else imports ssl.
    argv = load_command(Plan(ways, args.rps, args.users, args.duration))
    os.execv(argv[0], argv)  # noqa: S606 - our own interpreter, no shell
