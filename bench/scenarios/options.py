"""Scenario 5: server options, each measured on catalog-service's GET /catalogs.

App options run a second catalog-service process on its own unix socket, against the same
database, with one setting changed, and load it directly (fortio over the socket): the
difference is the app's alone. Proxy options are measured through the ingress on shops
started with that option.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from bench.fortio import Target, load
from bench.plan import Plan
from bench.sampler import sampling
from bench.shop import REPO, Shop

# name -> the settings that differ from the shop's defaults (services/common/settings.py)
APP_OPTIONS: dict[str, dict[str, str]] = {
    "defaults": {},
    "event loop: asyncio (not uvloop)": {"MESHMART_EVENT_LOOP": "asyncio"},
    # The shop's apps run without their own access log behind sidecars (mesh/localmesh.py).
    "app access log on (direct mode's default)": {"MESHMART_ACCESS_LOG": "true"},
    "tracing 100 % (no caller decision)": {"MESHMART_TRACE_SAMPLING_PERCENT": "100"},
    "tracing 0 %": {"MESHMART_TRACE_SAMPLING_PERCENT": "0"},
    "asyncpg pool 2": {"MESHMART_DB_POOL_MAX": "2"},
    "asyncpg pool 20": {"MESHMART_DB_POOL_MAX": "20"},
}
READY_TIMEOUT = 30.0


def _catalog_env(shop: Shop) -> dict[str, str]:
    """The environment `meshmart run` gave the catalog app, without its socket and Kafka
    (the extra process serves HTTP only; it must not join the stock consumer group)."""
    pid = shop.workload("catalog-service")["app_pid"]
    env = psutil.Process(pid).environ()
    return {k: v for k, v in env.items()
            if k not in ("MESHMART_UNIX_SOCKET", "MESHMART_KAFKA_BOOTSTRAP_SERVERS")}  # fmt: skip


@contextmanager
def _extra_catalog(shop: Shop, changes: dict[str, str], socket: Path) -> Iterator[int]:
    socket.unlink(missing_ok=True)
    env = {**_catalog_env(shop), **changes, "MESHMART_UNIX_SOCKET": str(socket)}
    log = (shop.run_dir / "logs" / "bench-catalog.log").open("a")
    process = subprocess.Popen(
        [sys.executable, "-m", "services.catalog"], cwd=REPO, env=env, stdout=log, stderr=log
    )
    try:
        began = time.monotonic()
        while not socket.exists():
            if process.poll() is not None or time.monotonic() - began > READY_TIMEOUT:
                raise RuntimeError(f"the option run's catalog app did not start; see {log.name}")
            time.sleep(0.05)
        yield process.pid
    finally:
        process.terminate()
        process.wait(30)
        log.close()
        socket.unlink(missing_ok=True)


def app_options(shop: Shop, plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {}
    socket = Path(shop.workload("catalog-service")["app_socket"]).with_name("bench-option.sock")
    for name, changes in APP_OPTIONS.items():
        print(f"  option: {name}", flush=True)
        with _extra_catalog(shop, changes, socket) as pid:
            target = Target("http://catalog-service/catalogs", unix_socket=socket)
            load(target, qps=0, seconds=1, connections=plan.max_connections)  # warm-up
            with sampling({"app": [pid], "postgres": [shop.postgres_pid()]}) as window:
                result = load(
                    target, qps=0, seconds=plan.option_seconds, connections=plan.max_connections
                )
        out[name] = {
            "settings": changes,
            **result.as_dict(),
            "usage": window.as_dict(result.actual_qps),
        }
    return out


def proxy_option(shop: Shop, plan: Plan) -> dict[str, Any]:
    """GET /catalogs through the ingress at max rate on a shop started with a proxy option."""
    target = Target(f"{shop.ingress}/catalog-service/catalogs")
    load(target, qps=0, seconds=1, connections=plan.max_connections)
    with sampling(shop.kinds()) as window:
        result = load(target, qps=0, seconds=plan.option_seconds, connections=plan.max_connections)
    return {**result.as_dict(), "usage": window.as_dict(result.actual_qps)}
