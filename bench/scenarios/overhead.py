"""Scenario 1: what each proxy hop adds to GET /catalogs at fixed rates (and what it costs)."""

from __future__ import annotations

from typing import Any

from bench.fortio import load
from bench.plan import Plan
from bench.sampler import sampling
from bench.scenarios.paths import PATHS
from bench.shop import Shop

PERCENTILES = ("p50", "p90", "p99")


def run(shop: Shop, plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {"rates": {}}
    for rate in plan.rates:
        per_path: dict[str, Any] = {}
        for name, target_of in PATHS.items():
            print(f"  overhead: {name} at {rate} rps", flush=True)
            with sampling(shop.kinds()) as window:
                result = load(
                    target_of(shop), qps=rate, seconds=plan.fixed_seconds,
                    connections=plan.connections,
                )  # fmt: skip
            per_path[name] = {**result.as_dict(), "usage": window.as_dict(result.actual_qps)}
        base = per_path["app"]["latency_ms"]
        for entry in per_path.values():
            entry["added_ms"] = {p: round(entry["latency_ms"][p] - base[p], 3) for p in PERCENTILES}
        out["rates"][str(rate)] = per_path
    return out
