"""A crashed app or sidecar comes back, as kubelet brings a container back: the supervisor
restarts it, `meshmart status` and the console say so, and the shop answers again."""

from __future__ import annotations

import os
import signal

import aiohttp

from mesh.chaos.faults import Shop, replaced
from tests.mesh.conftest import Mesh
from tests.support.shoppers import Customer
from tests.support.waiting import eventually

ORDER_APP = "order-service-v1-0"
CATALOG_SIDECAR = "catalog-service-v1-0-envoy"


async def test_a_killed_app_is_restarted_and_reported(
    mesh: Mesh, http: aiohttp.ClientSession, customer: Customer
) -> None:
    shop = Shop(mesh.run_dir)
    old_pid = mesh.workload(ORDER_APP)["app_pid"]
    os.kill(old_pid, signal.SIGKILL)
    new_pid = await replaced(shop, ORDER_APP, old_pid, within=30)
    assert mesh.workload(ORDER_APP)["app_pid"] == new_pid  # state.json names the new process
    assert shop.process(ORDER_APP) == {
        "pid": new_pid, "restarts": 1, "last_exit": "killed by SIGKILL", "state": "running",
    }  # fmt: skip

    order = {"productId": "CATALOG-001", "qty": 1, "unitPrice": 1.0}
    auth = {"Authorization": f"Bearer {customer.token}"}

    async def orders_placed_again() -> bool:
        async with http.get(f"{mesh.ingress}/catalog-service/catalogs/CATALOG-001") as resp:
            order["unitPrice"] = (await resp.json())["unitPrice"]
        url = f"{mesh.ingress}/order-service/{customer.user_id}/orders"
        async with http.post(url, json=order, headers=auth) as resp:
            return resp.status == 201

    await eventually(orders_placed_again, timeout=30)

    status = mesh.meshmart("status")
    assert status.returncode == 0, status.stderr
    row = next(line.split() for line in status.stdout.splitlines() if line.startswith(ORDER_APP))
    assert row[1:4] == [str(new_pid), str(mesh.workload(ORDER_APP)["sidecar_pid"]), "1"], row

    console = mesh.state["console"]["url"]
    async with http.get(f"{console}/api/nodes/version:order-service:v1") as resp:
        assert resp.status == 200, await resp.text()
        instance = (await resp.json())["instances"][0]
    assert (instance["app_pid"], instance["app_alive"]) == (new_pid, True)
    assert (instance["restarts"], instance["last_exit"]) == (1, "killed by SIGKILL")


async def test_a_killed_sidecar_is_restarted_and_traffic_flows_again(
    mesh: Mesh, http: aiohttp.ClientSession
) -> None:
    shop = Shop(mesh.run_dir)
    old_pid = shop.process(CATALOG_SIDECAR)["pid"]
    os.kill(old_pid, signal.SIGKILL)
    status = mesh.meshmart("status")  # at once: most likely while it is down
    await replaced(shop, CATALOG_SIDECAR, old_pid, within=30)
    assert shop.process(CATALOG_SIDECAR)["restarts"] == 1

    async def catalog_answers() -> bool:
        async with http.get(f"{mesh.ingress}/catalog-service/catalogs") as resp:
            return resp.status == 200

    await eventually(catalog_answers, timeout=30)
    assert status.returncode == 0, status.stderr
    assert "catalog-service-v1-0" in status.stdout
