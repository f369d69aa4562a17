"""Before/after table of two results files against issue 11's targets (Markdown on stdout).

.venv/bin/python -m bench.compare bench/results/BEFORE.json bench/results/AFTER.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Getter = Callable[[dict[str, Any]], Any]


def _get(*path: str) -> Getter:
    def get(scenarios: dict[str, Any]) -> Any:
        value: Any = scenarios
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value

    return get


def _at_1000(path: str, *keys: str) -> Getter:
    return _get("overhead", "rates", "1000", path, *keys)


def _rps(endpoint: str, way: str) -> Getter:
    return _get("throughput", endpoint, way, "actual_qps")


ROWS: list[tuple[str, str, Getter]] = [
    ("GET /catalogs through ingress + sidecar (mTLS), rps", ">= 2,500",
     _rps("GET /catalogs", "ingress")),
    ("GET /catalogs straight to the app, rps", ">= 4,000", _rps("GET /catalogs", "direct")),
    ("GET /catalogs/{id} through the ingress, rps", "", _rps("GET /catalogs/{id}", "ingress")),
    ("GET /users/{id} (fan-out) through the ingress, rps", ">= 1,000",
     _rps("GET /users/{id} (fan-out to order-service)", "ingress")),
    ("POST /{userId}/orders through the ingress, rps", ">= 1,000",
     _rps("POST /{userId}/orders", "ingress")),
    ("ingress + sidecar at 1000 rps asked: rps served", "1000",
     _at_1000("ingress+sidecar", "actual_qps")),
    ("  added p90 over the app, ms", "<= 1.0",
     _at_1000("ingress+sidecar", "added_ms", "p90")),
    ("ingress + sidecar at 500 rps: rps served", "500",
     _get("overhead", "rates", "500", "ingress+sidecar", "actual_qps")),
    ("  added p90 over the app, ms", "",
     _get("overhead", "rates", "500", "ingress+sidecar", "added_ms", "p90")),
    ("sidecar + sidecar at 1000 rps: added p90, ms", "",
     _at_1000("sidecar+sidecar", "added_ms", "p90")),
    ("serving sidecar, vCPU per 1000 rps", "<= 0.20",
     _at_1000("ingress+sidecar", "usage", "sidecar", "vcpu_per_1000_rps")),
    ("ingress Envoy, vCPU per 1000 rps", "",
     _at_1000("ingress+sidecar", "usage", "ingress", "vcpu_per_1000_rps")),
    ("RSS per sidecar, MiB", "<= 60 MB",
     _at_1000("ingress+sidecar", "usage", "sidecar", "rss_mib_per_process")),
    ("catalog app CPU per request via the ingress, ms", "",
     _get("throughput", "GET /catalogs", "ingress", "usage", "app:catalog-service",
         "cpu_ms_per_request")),
    ("Kafka sync at 50 orders/s: lag p99, ms", "", _get("kafka", "50", "lag_ms", "p99")),
    ("Kafka sync at 200 orders/s: achieved orders/s", "200",
     _get("kafka", "200", "achieved_orders_per_s")),
    ("  lag p99, ms", "<= 100", _get("kafka", "200", "lag_ms", "p99")),
    ("  lost / duplicated", "0 / 0",
     lambda s: None if "200" not in s.get("kafka", {}) else
     f"{s['kafka']['200']['lost']} / {s['kafka']['200']['duplicated']}"),
    ("Kafka sync, most orders/s (16 clients)", "", _get("kafka", "max", "achieved_orders_per_s")),
    ("cold start to all-ready, s", "<= 10", _get("startup", "up_seconds")),
    ("total RSS of the shop, MiB", "<= 1.2 GB", _get("startup", "memory", "total", "rss_mib")),
]  # fmt: skip


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def table(before: dict[str, Any], after: dict[str, Any]) -> str:
    b, a = before["scenarios"], after["scenarios"]
    lines = [
        f"| figure | target | before ({before['meta']['commit']}) "
        f"| after ({after['meta']['commit']}) |",
        "|---|---|---|---|",
    ]
    for label, target, get in ROWS:
        lines.append(f"| {label} | {target} | {_cell(get(b))} | {_cell(get(a))} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    before, after = (json.loads(Path(p).read_text()) for p in argv)
    print(table(before, after), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
