"""Where the time goes: py-spy on the catalog app under max-rate load through the ingress,
and the proxies' own counters over the same window (Envoy's /stats)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from bench.fortio import Target, load
from bench.plan import Plan
from bench.shop import Shop

# A sample counts for every one of these found on its stack ("on the stack in N % of samples",
# as the profile in issue 11 was read), so the shares add up to more than 100.
# Markers match py-spy's --full-filenames paths.
BUCKETS = (
    ("OpenTelemetry", "/opentelemetry/"),
    ("logging (the access log)", "/logging/"),
    ("asyncpg", "/site-packages/asyncpg/"),
    ("pydantic", "/site-packages/pydantic"),
    ("aiohttp", "/site-packages/aiohttp/"),
    ("the services' own code", "/services/"),
)
ENVOY_COUNTERS = ("downstream_rq_total", "upstream_rq_total", "upstream_cx_total",
                  "ssl.handshake")  # fmt: skip


def _py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("py-spy is not installed (it is in the dev dependencies: make setup)")
    return found


def summarize(raw: str) -> dict[str, dict[str, float]]:
    """Per bucket, the share of samples with it anywhere on the stack and the share whose
    innermost frame is in it (self time), from py-spy's collapsed stacks ("a;b;c count").
    A pass-through wrapper (the span middleware of an unsampled request) is on the stack of
    everything it wraps but has almost no self time."""
    on_stack: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    buckets = (*BUCKETS, ("background threads", "Thread._bootstrap"))
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        n = int(number)
        total += n
        leaf = stack.rsplit(";", 1)[-1]
        for name, marker in buckets:
            if marker in stack:
                on_stack[name] += n
        own[
            next((name for name, marker in BUCKETS if marker in leaf), "Python, asyncio, other")
        ] += n
    if not total:
        return {}
    return {
        name: {"on_stack": round(100 * on_stack[name] / total, 1),
               "self": round(100 * own[name] / total, 1)}
        for name in [*(b for b, _ in buckets), "Python, asyncio, other"]
    }  # fmt: skip


def _envoy_counters(admin_url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{admin_url}/stats", timeout=5) as resp:  # noqa: S310
        text = resp.read().decode()
    totals: Counter[str] = Counter()
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if name.startswith(("http.admin", "listener.admin")) or not value.isdigit():
            continue
        for counter in ENVOY_COUNTERS:
            if name.endswith(counter):
                totals[counter] += int(value)
    return dict(totals)


def run(shop: Shop, plan: Plan, out_dir: Path) -> dict[str, Any]:
    pid = shop.workload("catalog-service")["app_pid"]
    raw_file = out_dir / "catalog-app.pyspy.txt"
    admins = {"ingress": shop.state["ingress"]["admin_url"],
              "catalog sidecar": shop.workload("catalog-service")["sidecar_admin_url"]}  # fmt: skip
    before = {name: _envoy_counters(url) for name, url in admins.items()}
    result: dict[str, Any] = {}

    def loaded() -> None:
        target = Target(f"{shop.ingress}/catalog-service/catalogs")
        seconds = plan.max_seconds + 2
        result["load"] = load(target, qps=0, seconds=seconds, connections=plan.max_connections)

    print("  profile: py-spy on the catalog app, load through the ingress", flush=True)
    generator = threading.Thread(target=loaded)
    generator.start()
    subprocess.run(
        [_py_spy(), "record", "--pid", str(pid), "--duration", str(int(plan.max_seconds)),
         "--rate", "100", "--format", "raw", "--output", str(raw_file), "--nonblocking",
         "--full-filenames"],
        check=True, capture_output=True, timeout=plan.max_seconds + 60,
    )  # fmt: skip
    generator.join()
    after = {name: _envoy_counters(url) for name, url in admins.items()}
    return {
        "rps": round(result["load"].actual_qps, 1),
        "app_samples_percent": summarize(raw_file.read_text()),
        "envoy_counters": {
            name: {k: after[name].get(k, 0) - before[name].get(k, 0) for k in ENVOY_COUNTERS}
            for name in admins
        },
    }
