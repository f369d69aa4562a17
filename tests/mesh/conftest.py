"""One local mesh for the whole module run: `meshmart run` with order-service v1 and v2."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mesh.runtime.ports import free_port
from mesh.runtime.shop_state import read_state
from tests.support.shop import start_shop
from tests.support.shoppers import Customer, sign_up_and_log_in


@dataclass
class Mesh:
    proc: subprocess.Popen[str]
    run_dir: Path

    @property
    def state(self) -> dict[str, Any]:
        """Read afresh each time: the supervisor rewrites it when it restarts a process."""
        state = read_state(self.run_dir)
        assert state is not None, f"no state.json in {self.run_dir}"
        return state

    @property
    def ingress(self) -> str:
        return str(self.state["ingress_url"])

    def workload(self, name: str) -> dict[str, Any]:
        workload: dict[str, Any] = self.state["workloads"][name]
        return workload

    def meshmart(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [".venv/bin/meshmart", *args, "--run-dir", str(self.run_dir)],
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    run_dir = tmp_path_factory.mktemp("mesh") / "run"
    # --app-access-log: test_mtls_and_authz reads the caller's identity from the app's own log.
    args = ("--ingress-port", str(free_port()), "--replicas", "order:v2=1", "--app-access-log")
    for proc in start_shop(run_dir, *args):
        yield Mesh(proc, run_dir)


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="session")
async def customer(mesh: Mesh, http: aiohttp.ClientSession) -> Customer:
    return await sign_up_and_log_in(http, mesh.ingress)
