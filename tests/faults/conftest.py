"""The fault suite's mesh: two order-service v1 replicas, one v2, and the test fault switch.

Every scenario applies one `istio/` file, drives in-mesh traffic the way user-service's app
does (through its own sidecar's outbound listener for order-service), asserts, and restores
the baseline. The scenarios drive the local mesh's sockets and admin APIs, so there is no
kind variant of this suite: on a cluster, the same istio/ files are applied with kubectl and
observed in Kiali (README, "Fault injection").
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mesh.runtime.ports import free_port
from tests.support.shop import start_shop

ORDER_HOST = "order-service.meshmart.svc.cluster.local"
BASELINE = ("istio/virtual-service-all-v1.yaml", "istio/destination-rule-all-mtls.yaml")


@dataclass
class FaultMesh:
    run_dir: Path
    state: dict[str, Any]

    def workload(self, name: str) -> dict[str, Any]:
        workload: dict[str, Any] = self.state["workloads"][name]
        return workload

    @property
    def orders_url(self) -> str:
        """order-service as user-service's app calls it: its own sidecar's outbound port."""
        return f"http://{self.workload('user-service-v1-0')['outbound'][ORDER_HOST]}"

    def admin_port(self, workload: str) -> int:
        return int(self.workload(workload)["sidecar_admin_url"].rsplit(":", 1)[1])

    def apply(self, *files: str) -> None:
        args = [a for f in files for a in ("-f", f)]
        result = subprocess.run(
            [sys.executable, "-m", "mesh.cli", "apply", *args, "--run-dir", str(self.run_dir)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    async def set_fault(self, workload: str, percent: float) -> None:
        """Flip the test fault switch of one replica, on its own socket (not through the mesh)."""
        connector = aiohttp.UnixConnector(path=self.workload(workload)["app_socket"])
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post("http://app/test/fault", json={"failPercent": percent}) as resp,
        ):
            assert resp.status == 200, await resp.text()

    async def restore(self) -> None:
        self.apply(*BASELINE)
        for name, w in self.state["workloads"].items():
            if w["service"] == "order-service":
                await self.set_fault(name, 0)


@pytest.fixture(scope="session")
def fault_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultMesh]:
    run_dir = tmp_path_factory.mktemp("faults") / "run"
    args = ("--ingress-port", str(free_port()), "--test-endpoints",
            "--replicas", "order=2", "--replicas", "order:v2=1")  # fmt: skip
    for _proc in start_shop(run_dir, *args):
        yield FaultMesh(run_dir, json.loads((run_dir / "state.json").read_text()))


@pytest.fixture
async def mesh(fault_mesh: FaultMesh) -> AsyncIterator[FaultMesh]:
    """Each scenario starts from the baseline, and leaves the mesh secured and restored."""
    await fault_mesh.restore()
    try:
        yield fault_mesh
    finally:
        await fault_mesh.restore()
        await assert_still_secure(fault_mesh)


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def assert_still_secure(mesh: FaultMesh) -> None:
    """The regression guard: plaintext to a sidecar, calls without permission and calls without
    a token stay refused."""
    host, port = mesh.workload("order-service-v1-0")["sidecar_inbound"].rsplit(":", 1)
    async with aiohttp.ClientSession() as session:
        try:
            async with session.get(f"http://{host}:{port}/u/orders") as resp:
                raise AssertionError(f"plaintext got HTTP {resp.status} from a STRICT sidecar")
        except (aiohttp.ClientError, ssl.SSLError):
            pass
        catalog = mesh.workload("catalog-service-v1-0")["outbound"]
        to_user = catalog["user-service.meshmart.svc.cluster.local"]
        async with session.get(f"http://{to_user}/users") as resp:
            assert resp.status == 403, "catalog-service must not be allowed to call user-service"
        async with session.get(f"{mesh.state['ingress_url']}/order-service/u/orders") as resp:
            assert resp.status == 403, "orders without a token must stay refused at the edge"
