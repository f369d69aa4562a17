"""Scenario 5: server options, each measured on catalog-service's GET /catalogs.

App options run extra catalog-service processes on a unix socket of their own (bound here
and inherited, so two processes can share it), against the same database, with one setting
changed, and load them directly (fortio over the socket): the difference is the app's alone.
Proxy options are measured through the ingress on shops started with that option.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from bench.fortio import Target, load
from bench.plan import Plan
from bench.sampler import sampling
from bench.shop import Shop
from mesh.paths import REPO_ROOT as REPO
from mesh.runtime.polling import wait_until

# name -> (processes, the settings that differ from the defaults in services/common/settings.py)
APP_OPTIONS: dict[str, tuple[int, dict[str, str]]] = {
    "defaults": (1, {}),
    "event loop: asyncio (not uvloop)": (1, {"MESHMART_EVENT_LOOP": "asyncio"}),
    # The shop's apps run without their own access log behind sidecars (mesh/runtime/localmesh.py).
    "app access log on (direct mode's default)": (1, {"MESHMART_ACCESS_LOG": "true"}),
    "tracing 100 % (no caller decision)": (1, {"MESHMART_TRACE_SAMPLING_PERCENT": "100"}),
    "tracing 0 %": (1, {"MESHMART_TRACE_SAMPLING_PERCENT": "0"}),
    "asyncpg pool 2": (1, {"MESHMART_DB_POOL_MAX": "2"}),
    "asyncpg pool 20": (1, {"MESHMART_DB_POOL_MAX": "20"}),
    # Both accept() on one inherited socket; each has its own loop and pool (half the size,
    # so the database sees the same number of connections).
    "two app processes on one socket": (2, {"MESHMART_DB_POOL_MAX": "5"}),
}
READY_TIMEOUT = 30.0


def _catalog_env(shop: Shop) -> dict[str, str]:
    """The environment `meshmart run` gave the catalog app, without its socket and Kafka
    (the extra process serves HTTP only; it must not join the stock consumer group)."""
    pid = shop.workload("catalog-service")["app_pid"]
    env = psutil.Process(pid).environ()
    return {k: v for k, v in env.items()
            if k not in ("MESHMART_UNIX_SOCKET", "MESHMART_KAFKA_BOOTSTRAP_SERVERS")}  # fmt: skip


def _listening(path: Path) -> socket.socket:
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1024)
    return listener


def _pool_open(process: psutil.Process, postgres_port: int) -> bool:
    """Its database pool is open: the app's startup has run and it is about to accept."""
    return any(c.raddr and c.raddr[1] == postgres_port for c in process.net_connections("tcp"))


@contextmanager
def _extra_catalog(
    shop: Shop, processes: int, changes: dict[str, str], path: Path
) -> Iterator[list[int]]:
    """`processes` catalog apps with `changes`, all serving one unix socket at `path`."""
    listener = _listening(path)
    fd = listener.fileno()
    env = {**_catalog_env(shop), **changes, "MESHMART_LISTEN_FD": str(fd)}
    log = (shop.run_dir / "logs" / "bench-catalog.log").open("a")
    command = [sys.executable, "-m", "services.catalog"]
    apps = [
        subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log, pass_fds=(fd,))
        for _ in range(processes)
    ]
    try:
        port = shop.postgres_port()

        def serving() -> bool:
            return all(_pool_open(psutil.Process(app.pid), port) for app in apps)

        def exited() -> bool:
            return any(app.poll() is not None for app in apps)

        if not wait_until(serving, READY_TIMEOUT, 0.05, unless=exited):
            if exited():
                raise RuntimeError(f"an option run's catalog app exited; see {log.name}")
            raise RuntimeError(f"the option run's catalog apps did not start; see {log.name}")
        yield [app.pid for app in apps]
    finally:
        listener.close()
        for app in apps:
            app.terminate()
        for app in apps:
            app.wait(30)
        log.close()
        path.unlink(missing_ok=True)


def app_options(shop: Shop, plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {}
    socket = Path(shop.workload("catalog-service")["app_socket"]).with_name("bench-option.sock")
    for name, (processes, changes) in APP_OPTIONS.items():
        print(f"  option: {name}", flush=True)
        with _extra_catalog(shop, processes, changes, socket) as pids:
            target = Target("http://catalog-service/catalogs", unix_socket=socket)
            load(target, qps=0, seconds=1, connections=plan.max_connections)  # warm-up
            with sampling({"app": pids, "postgres": [shop.postgres_pid()]}) as window:
                result = load(
                    target, qps=0, seconds=plan.option_seconds, connections=plan.max_connections
                )
        out[name] = {
            "processes": processes,
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
