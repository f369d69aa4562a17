"""The faults a chaos run injects into a running shop, each done as a user would do it: a
signal to a PID from state.json, what `meshmart db|kafka up` runs to bring a server back,
what `meshmart apply -f` runs to change the routes (called in-process: a CLI start costs
seconds on a busy two-core machine). Each returns the Fault it was, on the operations'
clock."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh.chaos.timeline import Fault
from mesh.control.state import MeshState, apply_files, wait_applied
from mesh.control.workloads import SERVICES
from mesh.infra.kafka import running_kafka, start_kafka
from mesh.infra.postgres import database_dsn, running_server, start_postgres, stop_postgres
from mesh.paths import ISTIO_DIR, postgres_data_dir
from mesh.runtime.shop_state import read_state

RESTART_TIMEOUT_SECONDS = 60.0
# Longer than aiokafka's default session timeout (10 s): the stalled consumer is dropped from
# its group and the partitions move, then it comes back and the group rebalances again.
STALL_SECONDS = 13.0
DEFAULT_ROUTES = ISTIO_DIR / "virtual-service-all-v1.yaml"


class FaultError(RuntimeError):
    """A fault could not be injected or undone (the shop did not come back)."""


@dataclass(frozen=True)
class Shop:
    """A running `meshmart run`, seen through its run dir as a user sees it."""

    run_dir: Path

    def state(self) -> dict[str, Any]:
        state = read_state(self.run_dir)
        if state is None:
            raise FaultError(f"no `meshmart run` is running from {self.run_dir}")
        return state

    @property
    def ingress(self) -> str:
        return str(self.state()["ingress_url"])

    def process(self, name: str) -> dict[str, Any]:
        """The supervisor's report of one child: pid, restarts, last_exit, state."""
        report: dict[str, Any] = self.state()["processes"][name]
        return report

    def workloads(self, service: str) -> list[str]:
        return sorted(n for n, w in self.state()["workloads"].items() if w["service"] == service)

    def admin_dsn(self) -> str:
        if external := os.environ.get("MESHMART_PG_DSN"):
            return external
        server = running_server(postgres_data_dir(self.run_dir))
        if server is None:
            raise FaultError(f"PostgreSQL of {self.run_dir} is not running")
        return server.admin_dsn

    def database_dsns(self) -> dict[str, str]:
        """{service: DSN of its database}, for the snapshots."""
        admin = self.admin_dsn()
        return {spec.name: database_dsn(admin, spec.database) for spec in SERVICES}

    def bootstrap_servers(self) -> str:
        return str(self.state()["kafka_bootstrap_servers"])

    def apply(self, path: Path) -> None:
        """`meshmart apply -f PATH`: returns once every proxy runs the new config."""
        state = MeshState(self.run_dir)
        wait_applied(state, apply_files(state, [path]))


async def wait_for(condition: Callable[[], bool], what: str, within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise FaultError(f"{what} within {within:g} s")
        await asyncio.sleep(0.1)


async def replaced(shop: Shop, name: str, old_pid: int, within: float) -> int:
    """The PID of the process the supervisor started in place of `old_pid`."""

    def restarted() -> bool:
        process = shop.process(name)
        return bool(process["pid"] != old_pid and process["state"] == "running")

    await wait_for(restarted, f"the supervisor did not restart {name}", within)
    return int(shop.process(name)["pid"])


async def kill_child(shop: Shop, name: str) -> Fault:
    """SIGKILL one of the supervisor's children (an app, a sidecar) and wait until the
    supervisor has restarted it, as kubelet restarts a container."""
    pid = int(shop.process(name)["pid"])
    started = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    await replaced(shop, name, pid, RESTART_TIMEOUT_SECONDS)
    return Fault(f"SIGKILL {name}", started, time.monotonic())


async def kill_kafka(shop: Shop, down_seconds: float = 4.0) -> Fault:
    """SIGKILL the broker, leave it down a while, then `meshmart kafka up` (the supervisor
    does not restart servers: a user does, on the same port)."""
    broker = running_kafka(shop.run_dir)
    if broker is None:
        raise FaultError("Kafka is not running")
    started = time.monotonic()
    os.kill(broker.pid, signal.SIGKILL)
    await asyncio.sleep(down_seconds)
    await asyncio.to_thread(start_kafka, shop.run_dir, progress=_quiet)  # `meshmart kafka up`
    return Fault("SIGKILL kafka, then kafka up", started, time.monotonic())


async def restart_postgres(shop: Shop) -> Fault:
    """`meshmart db down` (pg_ctl's fast shutdown: sessions are cut) then `meshmart db up`,
    under load; the server comes back on its port."""
    data_dir = postgres_data_dir(shop.run_dir)
    started = time.monotonic()
    await asyncio.to_thread(stop_postgres, data_dir)
    await asyncio.to_thread(start_postgres, data_dir, progress=_quiet)
    return Fault("postgres fast restart", started, time.monotonic())


async def route_fault(shop: Shop, file: str, seconds: float) -> Fault:
    """`meshmart apply -f istio/FILE`, `seconds` of it, then the default routes again."""
    started = time.monotonic()
    await asyncio.to_thread(shop.apply, ISTIO_DIR / file)
    await asyncio.sleep(seconds)
    await asyncio.to_thread(shop.apply, DEFAULT_ROUTES)
    return Fault(f"apply {file}", started, time.monotonic())


def _quiet(_: str) -> None:
    """The servers' progress lines: not wanted in the middle of the run's own."""


async def stall(shop: Shop, name: str, seconds: float = STALL_SECONDS) -> Fault:
    """SIGSTOP a child (its Kafka consumer stops heart-beating), SIGCONT after `seconds`."""
    pid = int(shop.process(name)["pid"])
    started = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)
    return Fault(f"SIGSTOP {name} {seconds:g} s", started, time.monotonic())
