"""`meshmart canary SERVICE --to VERSION`: a Flagger-style progressive rollout.

Steps the canary's weight (default 10 → 25 → 50 → 100), waits an interval at each step,
reads the canary's request success rate and p99 latency as its sidecars report them (local)
or from Prometheus' istio_requests_total / istio_request_duration_milliseconds (kind), and
promotes, or rolls back to 100% of the stable version when a threshold is crossed. Exits 0
when promoted, 1 when rolled back (including when there was too little traffic to judge).
Locally it brings its own traffic, `meshmart load --via mesh` (from the loadgen sidecar, so
the weights apply to it), unless `--load 0` (mesh.canary.traffic).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mesh.canary.analysis import Thresholds
from mesh.canary.metrics import EnvoyMetrics, MetricsSource, PrometheusMetrics
from mesh.canary.rollout import Applier, KubectlApplier, LocalApplier, Plan, run_canary
from mesh.canary.traffic import WARM_UP_SECONDS, rate_for, shopper_traffic
from mesh.commands.load import loadgen_target
from mesh.control.topology import NAMESPACE
from mesh.control.workloads import by_name
from mesh.istio.loader import IstioConfigError
from mesh.paths import DEFAULT_RUN_DIR
from mesh.runtime.shop_state import read_state


def _steps(text: str) -> list[int]:
    steps = [int(part) for part in text.split(",")]
    if not steps or steps != sorted(steps) or steps[-1] != 100 or steps[0] <= 0:
        raise argparse.ArgumentTypeError("steps must rise to 100, e.g. 10,25,50,100")
    return steps


def _interval(text: str) -> float:
    seconds = float(text)
    if seconds < 2:  # Envoy flushes latency histograms every second: shorter sees nothing
        raise argparse.ArgumentTypeError("--interval must be at least 2 seconds")
    return seconds


def _load(text: str) -> float | None:
    """None for "auto"; 0 for none; else requests per second."""
    if text == "auto":
        return None
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, 0 or a rate, got {text!r}") from None
    if rate < 0:
        raise argparse.ArgumentTypeError(f"expected auto, 0 or a rate, got {text!r}")
    return rate


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("canary", help="progressive canary rollout with analysis")
    parser.add_argument("service")
    parser.add_argument("--to", required=True, dest="canary", help="canary subset, e.g. v2")
    parser.add_argument("--from", default="v1", dest="stable", help="stable subset (v1)")
    parser.add_argument("--steps", type=_steps, default=[10, 25, 50, 100])
    parser.add_argument("--interval", type=_interval, default=30.0, help="seconds per step (>= 2)")
    parser.add_argument("--min-success", type=float, default=99.0, help="percent (99)")
    parser.add_argument("--max-p99-ms", type=float, default=500.0)
    parser.add_argument("--min-requests", type=int, default=20)
    parser.add_argument(
        "--load", type=_load, default=None, metavar="auto|0|RPS",
        help="local: shopper traffic from the loadgen sidecar (meshmart load --via mesh) during "
        "the rollout; auto (default) picks "
        "a rate that gives the first step twice --min-requests; 0: only the traffic there is",
    )  # fmt: skip
    parser.add_argument("--target", choices=("local", "kind"), default="local")
    parser.add_argument("--prometheus-url", default="http://127.0.0.1:9090")
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    parser.set_defaults(func=run)


def _local_metrics(run_dir: Path, service: str, version: str) -> EnvoyMetrics:
    state = read_state(run_dir)
    if state is None:
        raise IstioConfigError(f"no `meshmart run` running from {run_dir}")
    admin = [
        w["sidecar_admin_url"]
        for w in state.get("workloads", {}).values()
        if w["service"] == service and w["version"] == version
    ]
    if not admin:
        raise IstioConfigError(
            f"no {service} {version} workload is running (start with --replicas "
            f"{service.removesuffix('-service')}:{version}=1)"
        )
    return EnvoyMetrics(admin)


@contextmanager
def _traffic(args: argparse.Namespace) -> Iterator[str | None]:
    """Local mode: `meshmart load` for the rollout's length, unless --load 0; yields what to
    say about it (None: no traffic of our own)."""
    rate = args.load
    if args.target != "local" or rate == 0:
        yield None
        return
    if rate is None:
        rate = rate_for(args.min_requests, args.interval, args.steps[0])
    log = args.run_dir / "logs" / "canary-load.log"
    with shopper_traffic(loadgen_target(args.run_dir), rate, log) as pid:
        yield (
            f"traffic: meshmart load --via mesh at {rate:g} req/s (pid {pid}, {log}); "
            f"warming up {WARM_UP_SECONDS:g} s"
        )


def run(args: argparse.Namespace) -> int:
    try:
        service = by_name(args.service).name
    except KeyError as exc:
        print(f"meshmart canary: error: {exc.args[0]}", file=sys.stderr)
        return 2
    plan = Plan(
        service, NAMESPACE, args.stable, args.canary, args.steps, args.interval,
        Thresholds(args.min_success, args.max_p99_ms, args.min_requests),
    )  # fmt: skip
    applier: Applier
    metrics: MetricsSource
    try:
        if args.target == "local":
            metrics = _local_metrics(args.run_dir.resolve(), service, args.canary)
            applier = LocalApplier(args.run_dir)
        else:
            workload = f"{service}-{args.canary}"
            metrics = PrometheusMetrics(args.prometheus_url, workload, NAMESPACE)
            applier = KubectlApplier()
        print(
            f"canary {service}: {args.stable} -> {args.canary}, steps {args.steps}, "
            f"success >= {args.min_success:g}%, p99 <= {args.max_p99_ms:g} ms, "
            f">= {args.min_requests} requests per step"
        )
        with _traffic(args) as traffic:
            if traffic:
                print(traffic, flush=True)
                time.sleep(WARM_UP_SECONDS)
            promoted = run_canary(plan, applier, metrics, args.run_dir / "canary")
    except (IstioConfigError, OSError, RuntimeError, ValueError) as exc:
        print(f"meshmart canary: error: {exc}", file=sys.stderr)
        return 2
    return 0 if promoted else 1
