"""`python -m bench.soak` (`make soak`): the shop under a steady mixed load for a long while,
judged on what must not drift: every process's RSS, open fds and TCP connections, Kafka
consumer lag, PostgreSQL connections, and errors (docs/reliability.md, "Soak").

.venv/bin/python -m bench.soak                                  # 30 min at 120 req/s
.venv/bin/python -m bench.soak --minutes 3 --warmup-minutes 1 --sample-seconds 10   # smoke

Exit status 0 when every verdict passes, 1 when one fails, 130 on Ctrl-C (no verdict).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import signal
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from bench import soak_judge, soak_report
from bench.shop import running_shop
from bench.soak_figures import Sample
from bench.soak_judge import Verdict
from bench.soak_limits import limits
from bench.soak_run import soak
from mesh.paths import CACHE_DIR
from mesh.paths import REPO_ROOT as REPO
from mesh.runtime.processes import terminate

DEFAULT_SHOP_ARGS = "--trace-sampling 1"  # Istio's default sampling, as `make bench` runs


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--minutes", type=_positive, default=30.0,
                        help="load duration, warm-up included (30)")  # fmt: skip
    parser.add_argument("--rps", type=_positive, default=120.0, help="requests per second (120)")
    parser.add_argument("--warmup-minutes", type=float, default=5.0,
                        help="not judged for growth: caches, pools and JIT settle (5)")  # fmt: skip
    parser.add_argument("--sample-seconds", type=_positive, default=30.0, help="(30)")
    parser.add_argument("--out-dir", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--run-dir", type=Path, default=CACHE_DIR / "soak-run")
    parser.add_argument("--shop-args", default=DEFAULT_SHOP_ARGS,
                        help=f"extra `meshmart run` arguments ({DEFAULT_SHOP_ARGS!r})")  # fmt: skip
    args = parser.parse_args(argv)
    if not 0 <= args.warmup_minutes < args.minutes:
        parser.error("--warmup-minutes must be from 0 to under --minutes")
    return args


def stop_leftovers(seen: dict[int, float]) -> list[str]:
    """Stop by PID whatever the shop left running; the start time tells a recycled PID apart."""
    left = []
    for pid, created in sorted(seen.items()):
        try:
            process = psutil.Process(pid)
            if process.create_time() != created or process.status() == psutil.STATUS_ZOMBIE:
                continue
            left.append(f"{process.name()} ({pid})")
        except psutil.NoSuchProcess:
            continue
        terminate(pid, timeout=10)
    return left


def _verdicts(result: dict[str, Any], warmup: float, left: list[str]) -> list[Verdict]:
    samples = [Sample.from_dict(s) for s in result["samples"]]
    bounds = soak_judge.Limits(**result["limits"])
    load = result["load"]
    return [
        *soak_judge.per_process(samples, warmup, bounds),
        *soak_judge.shared(samples, bounds),
        *soak_judge.outcome(load["errors"], load["requests"], result["drained"]),
        Verdict("stopped", "shop", not left, ", ".join(left) or "every process stopped"),
    ]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    # Ctrl-C raises KeyboardInterrupt wherever it lands, inside the event loop too: left to
    # asyncio.run, it only cancels the soak, and the shop stopping underneath (the terminal
    # sends it the same SIGINT) fails a probe first, which then surfaces instead.
    signal.signal(signal.SIGINT, _interrupt)
    shop_args = shlex.split(args.shop_args)
    seen: dict[int, float] = {}  # every PID sampled: whatever outlives the shop is stopped
    result: dict[str, Any] = {"meta": soak_report.meta(), "options": {
        "minutes": args.minutes, "rps": args.rps, "warmup_minutes": args.warmup_minutes,
        "sample_seconds": args.sample_seconds, "shop_args": shop_args}}  # fmt: skip
    left: list[str] = []
    print(f"==> soak: {args.minutes:g} min at {args.rps:g} req/s, "
          f"meshmart run {args.shop_args}", flush=True)  # fmt: skip
    try:
        with running_shop(args.run_dir, shop_args) as shop:
            services = [w["service"] for w in shop.state["workloads"].values()]
            result.update(asyncio.run(soak(shop, args, seen)))
            shared_area = result.pop("pg_shared_mib")
            result["limits"] = asdict(limits(args.rps, services, shared_area))
    except KeyboardInterrupt:
        print("\ninterrupted: the shop is stopped, no verdict", flush=True)
        return 130
    finally:
        left = stop_leftovers(seen)
        for entry in left:
            print(f"  stopped a leftover process: {entry}", flush=True)
    verdicts = _verdicts(result, args.warmup_minutes * 60, left)
    result["verdicts"] = [asdict(v) for v in verdicts]
    result["passed"] = all(v.passed for v in verdicts)
    print(soak_report.table(verdicts))
    json_path, md_path = soak_report.write(args.out_dir, result)
    print(f"wrote {json_path} and {md_path}")
    print("PASSED" if result["passed"] else "FAILED: see the table above")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
