"""`python -m bench` (`make bench`): every scenario of docs/benchmarks.md, then the report.

.venv/bin/python -m bench                 # full run (~20 min), writes bench/results/ and
                                          # the generated part of docs/benchmarks.md
.venv/bin/python -m bench --smoke --out-dir /tmp/b --no-docs   # a minute: the harness only
.venv/bin/python -m bench --only overhead,throughput --shop-args=""   # a subset; the old
                                          # defaults (for a "before" run on an older commit)
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report
from bench.machine import describe
from bench.plan import FULL, SMOKE, Plan
from bench.scenarios import (
    kafka_lag,
    options,
    overhead,
    profile,
    protocol,
    serialisation,
    startup,
    throughput,
)
from bench.shop import running_shop
from mesh.paths import CACHE_DIR
from mesh.paths import REPO_ROOT as REPO

SCENARIOS = (
    "startup", "overhead", "throughput", "kafka", "profile", "options", "protocol",
    "serialisation", "tracing", "proxy", "processes",
)  # fmt: skip
# Istio's default trace sampling (1 %); the demo profile's 100 % is measured beside it.
DEFAULT_SHOP_ARGS = "--trace-sampling 1"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="tiny durations: proves the harness")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--out-dir", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--run-dir", type=Path, default=CACHE_DIR / "bench-run")
    parser.add_argument(
        "--shop-args",
        default=DEFAULT_SHOP_ARGS,
        help=f"extra `meshmart run` arguments (default {DEFAULT_SHOP_ARGS!r})",
    )
    parser.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(
            f"--only: unknown scenario(s) {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(SCENARIOS)}"
        )
    return args


def _fresh(run_dir: Path) -> Path:
    """A clean run dir per shop: no leftover database or topic skews a figure."""
    shutil.rmtree(run_dir, ignore_errors=True)
    return run_dir


def _attempt(scenarios: dict[str, Any], name: str, measure: Callable[[], Any]) -> None:
    """Run one scenario; a failure is recorded (and printed) and the others still run."""
    try:
        scenarios[name] = measure()
    except Exception as exc:
        print(f"  {name} FAILED: {type(exc).__name__}: {exc}", flush=True)
        scenarios[name] = {"error": f"{type(exc).__name__}: {exc}"}


def run(args: argparse.Namespace, plan: Plan) -> dict[str, Any]:
    only = set(args.only.split(","))
    shop_args = shlex.split(args.shop_args)
    results: dict[str, Any] = {"meta": describe(), "plan": plan.name, "shop_args": shop_args}
    scenarios: dict[str, Any] = results.setdefault("scenarios", {})
    # Whole-mesh variants, GET /catalogs through the ingress at max rate; the main shop is
    # the baseline of each, the others get one shop each.
    variants = {
        "tracing": ("1 %", "100 %", [*shop_args, "--trace-sampling", "100"]),
        "proxy": ("concurrency 1", "concurrency 2", [*shop_args, "--proxy-concurrency", "2"]),
        "processes": (
            "catalog x1",
            "catalog x2 (two replicas)",
            [*shop_args, "--replicas", "catalog=2"],
        ),
    }
    wanted = [name for name in variants if name in only]
    main = only & {"startup", "overhead", "throughput", "kafka", "profile", "options", "protocol",
                   *wanted}  # fmt: skip
    if "serialisation" in only:
        scenarios["serialisation"] = serialisation.run(100 if plan is SMOKE else 20_000)
    if main:
        print(f"==> shop: meshmart run {args.shop_args}", flush=True)
        with running_shop(_fresh(args.run_dir / "main"), shop_args) as shop:
            if "startup" in only:
                _attempt(scenarios, "startup", lambda: startup.measure(shop))
            if "overhead" in only:
                _attempt(scenarios, "overhead", lambda: overhead.run(shop, plan))
            if "throughput" in only:
                _attempt(scenarios, "throughput", lambda: throughput.run(shop, plan))
            if "kafka" in only:
                _attempt(scenarios, "kafka", lambda: kafka_lag.run(shop, plan))
            if "profile" in only:
                _attempt(scenarios, "profile", lambda: profile.run(shop, plan, shop.run_dir))
            if "options" in only:
                _attempt(scenarios, "options", lambda: options.app_options(shop, plan))
            if "protocol" in only:
                _attempt(scenarios, "protocol", lambda: protocol.run(shop, plan))
            for name in wanted:
                baseline = variants[name][0]
                print(f"  {name}: {baseline}", flush=True)
                scenarios[name] = {baseline: {"shop_args": shop_args,
                                              **options.proxy_option(shop, plan)}}  # fmt: skip
    for name in wanted:
        _, label, variant_args = variants[name]
        print(f"==> shop: meshmart run {shlex.join(variant_args)}", flush=True)
        with running_shop(_fresh(args.run_dir / "variant"), variant_args) as shop:
            scenarios[name][label] = {"shop_args": variant_args, **options.proxy_option(shop, plan)}
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    plan = SMOKE if args.smoke else FULL
    began = time.monotonic()
    results = run(args, plan)
    results["meta"]["seconds"] = round(time.monotonic() - began, 1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{results['meta']['date'][:10]}-{results['meta']['commit']}"
    if plan is SMOKE:
        stem += "-smoke"
    json_path = args.out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    markdown = report.render(results)
    (args.out_dir / f"{stem}.md").write_text(markdown)
    print(f"wrote {json_path} and {json_path.with_suffix('.md')}")
    if not args.no_docs:
        docs = REPO / "docs" / "benchmarks.md"
        report.update_docs(docs, markdown)
        print(f"updated the generated section of {docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
