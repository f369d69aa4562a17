"""The console's JSON API against the real local mesh: the figures move with the traffic.

Traffic goes through the loadgen sidecar's outbound listeners (as `meshmart load --via mesh`
sends it), so order-service's VirtualServices (faults, weights) shape it. Every scenario the
tests apply is undone with virtual-service-all-v1.yaml, the baseline's routing.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.mesh.conftest import Mesh
from tests.support.shoppers import Customer
from tests.support.waiting import eventually

ORDER_HOST = "order-service.meshmart.svc.cluster.local"
CATALOG_HOST = "catalog-service.meshmart.svc.cluster.local"
LOADGEN = "version:loadgen:v1"
ORDER = {"productId": "CATALOG-002", "qty": 1, "unitPrice": 1000}


@pytest.fixture(scope="module")
def console(mesh: Mesh) -> str:
    return str(mesh.state["console"]["url"])


async def graph(http: aiohttp.ClientSession, console: str) -> dict[str, Any]:
    async with http.get(f"{console}/api/graph") as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body


def edge(body: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    found = [e for e in body["edges"] if e["source"] == source and e["target"] == target]
    return found[0] if found else {"traffic": {"rate": 0, "error_percent": 0, "total": 0}}


async def apply(http: aiohttp.ClientSession, console: str, **body: str) -> dict[str, Any]:
    async with http.post(f"{console}/api/config/apply", json=body) as resp:
        result: dict[str, Any] = await resp.json()
        assert resp.status == 200, result
        return result


@pytest.fixture
async def restore_routing(http: aiohttp.ClientSession, console: str) -> AsyncIterator[None]:
    yield
    await apply(http, console, file="virtual-service-all-v1.yaml")


def via_loadgen(mesh: Mesh, host: str) -> str:
    return f"http://{mesh.state['loadgen']['outbound'][host]}"


async def calls(http: aiohttp.ClientSession, url: str, count: int, token: str = "") -> list[int]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def one() -> int:
        async with http.get(url, headers=headers) as resp:
            await resp.read()
            return resp.status

    return [await one() for _ in range(count)]


async def test_rates_rise_while_meshmart_load_runs(
    mesh: Mesh, http: aiohttp.ClientSession, console: str
) -> None:
    load = await asyncio.create_subprocess_exec(
        ".venv/bin/meshmart", "load", "--via", "mesh", "--rps", "10", "--duration", "20",
        "--run-dir", str(mesh.run_dir), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        async def catalog_is_busy() -> bool:
            body = await graph(http, console)
            rate = edge(body, LOADGEN, f"service:{CATALOG_HOST.split('.')[0]}")["traffic"]["rate"]
            served = edge(body, "service:catalog-service", "version:catalog-service:v1")
            return bool(rate >= 1 and served["traffic"]["rate"] >= 1 and served["mtls"])

        await eventually(catalog_is_busy, timeout=30)
    finally:
        load.terminate()
        await asyncio.wait_for(load.wait(), timeout=30)


async def test_an_abort_fault_raises_the_error_rate_on_exactly_that_edge(
    mesh: Mesh, http: aiohttp.ClientSession, console: str, customer: Customer, restore_routing: None
) -> None:
    await apply(http, console, file="virtual-service-order-abort-50.yaml")
    orders = f"{via_loadgen(mesh, ORDER_HOST)}/{customer.user_id}/orders"
    catalogs = f"{via_loadgen(mesh, CATALOG_HOST)}/catalogs"

    async def only_the_order_edge_fails() -> bool:
        statuses = await calls(http, orders, 20, customer.token)
        await calls(http, catalogs, 5)
        assert set(statuses) <= {200, 503}, statuses
        body = await graph(http, console)
        faulted = edge(body, LOADGEN, "service:order-service")["traffic"]
        healthy = edge(body, LOADGEN, "service:catalog-service")["traffic"]
        # the aborts happen in the caller's sidecar: none reaches order-service itself
        behind = edge(body, "service:order-service", "version:order-service:v1")["traffic"]
        return bool(
            20 <= faulted["error_percent"] <= 80
            and healthy["rate"] > 0
            and healthy["error_percent"] == 0
            and behind["error_percent"] == 0
        )

    await eventually(only_the_order_edge_fails, timeout=30)
    body = await graph(http, console)
    failing = edge(body, LOADGEN, "service:order-service")
    assert failing["health"] == "failure", failing  # Kiali: 5xx of 10 % or more


async def test_a_90_10_canary_shows_its_weights_and_reaches_v2(
    mesh: Mesh, http: aiohttp.ClientSession, console: str, customer: Customer, restore_routing: None
) -> None:
    await apply(http, console, file="virtual-service-order-90-10.yaml")
    orders = f"{via_loadgen(mesh, ORDER_HOST)}/{customer.user_id}/orders"

    async def split() -> bool:
        await calls(http, orders, 30, customer.token)
        body = await graph(http, console)
        v1 = edge(body, "service:order-service", "version:order-service:v1")
        v2 = edge(body, "service:order-service", "version:order-service:v2")
        return bool(
            v1.get("weight") == 90
            and v2.get("weight") == 10
            and v2["traffic"]["rate"] > 0
            and v1["traffic"]["rate"] > v2["traffic"]["rate"]
        )

    await eventually(split, timeout=30)


async def test_kafka_edges_show_the_topics_and_a_lag_that_returns_to_zero(
    mesh: Mesh, http: aiohttp.ClientSession, console: str, customer: Customer
) -> None:
    before = edge(await graph(http, console), "topic:order-events", "group:catalog-service")
    for _ in range(3):
        headers = {"Authorization": f"Bearer {customer.token}",
                   "Idempotency-Key": str(uuid.uuid4())}  # fmt: skip
        url = f"{mesh.ingress}/order-service/{customer.user_id}/orders"
        async with http.post(url, json=ORDER, headers=headers) as resp:
            assert resp.status == 201, await resp.text()

    async def consumed() -> bool:
        body = await graph(http, console)
        topics = {n["label"] for n in body["nodes"] if n["kind"] == "topic"}
        assert {"order-events", "catalog-events"} <= topics, topics
        placed = edge(body, "topic:order-events", "group:catalog-service")
        replied = edge(body, "topic:catalog-events", "group:order-service")
        produced = edge(body, "app:order-service", "topic:order-events")
        return bool(
            placed["traffic"]["total"] >= before["traffic"]["total"] + 3
            and placed["lag"] == 0
            and replied["lag"] == 0
            and produced["traffic"]["total"] >= 3
        )

    await eventually(consumed, timeout=30)
    group = next(n for n in (await graph(http, console))["nodes"]
                 if n["id"] == "group:catalog-service")  # fmt: skip
    assert group["parent"] == "app:catalog-service"


async def test_node_details_name_the_processes_resources_and_traces(
    mesh: Mesh, http: aiohttp.ClientSession, console: str, customer: Customer
) -> None:
    await calls(http, f"{via_loadgen(mesh, ORDER_HOST)}/{customer.user_id}/orders", 3,
                customer.token)  # fmt: skip
    workload = mesh.workload("order-service-v1-0")

    async def traced() -> bool:
        async with http.get(f"{console}/api/nodes/version:order-service:v1") as resp:
            assert resp.status == 200, await resp.text()
            details = await resp.json()
        instance = details["instances"][0]
        assert (instance["app_pid"], instance["sidecar_pid"]) == (
            workload["app_pid"], workload["sidecar_pid"])  # fmt: skip
        assert instance["app_alive"] and instance["sidecar_alive"] and instance["sidecar_ready"]
        resources = {(r["kind"], r["name"]) for r in details["resources"]}
        assert {("VirtualService", "order-service"), ("DestinationRule", "order-service"),
                ("AuthorizationPolicy", "order-service")} <= resources, resources  # fmt: skip
        zipkin = mesh.state["zipkin_url"]
        return any(t["url"].startswith(f"{zipkin}/zipkin/traces/") for t in details["traces"])

    await eventually(traced, timeout=30)


async def test_config_lists_every_applied_resource_with_kiali_style_validations(
    http: aiohttp.ClientSession, console: str
) -> None:
    # istio/authorization-policy-order-fortio.yaml admits sa/fortio, which local mode does not
    # run: Istio takes it, Kiali flags it (KIA0106). An extra ALLOW harms no other caller.
    await apply(http, console, file="authorization-policy-order-fortio.yaml")
    async with http.get(f"{console}/api/config") as resp:
        assert resp.status == 200
        view = await resp.json()
    by_name = {(r["kind"], r["name"]): r for r in view["resources"]}
    fortio = by_name[("AuthorizationPolicy", "order-service-fortio")]
    assert fortio["file"] == "istio/authorization-policy-order-fortio.yaml"
    assert [v["code"] for v in fortio["validations"]] == ["KIA0106"], fortio["validations"]
    # the baseline routes everything to v1, so the order-service v2 this mesh runs gets nothing
    unreachable = by_name[("VirtualService", "order-service")]["validations"]
    assert [v["code"] for v in unreachable] == ["MM1001"], unreachable
    assert "order-service v2 runs but no route sends it a request" in unreachable[0]["message"]
    assert by_name[("VirtualService", "catalog-service")]["validations"] == []
    assert "virtual-service-order-90-10.yaml" in view["scenarios"]


BAD_APPLIES = [
    ({"file": "../pyproject.toml"}, 404, "no scenario"),
    ({"yaml": "kind: [unclosed"}, 400, "does not parse"),
    ({"yaml": "- just\n- a list\n"}, 400, "YAML mappings"),
    ({}, 400, "exactly one of"),
    ({"file": 7}, 400, "file"),
]


@pytest.mark.parametrize(("body", "status", "said"), BAD_APPLIES)
async def test_bad_applies_get_a_4xx_with_the_reason(
    http: aiohttp.ClientSession, console: str, body: dict[str, Any], status: int, said: str
) -> None:
    async with http.post(f"{console}/api/config/apply", json=body) as resp:
        problem = await resp.json()
        assert resp.status == status, problem
    assert said in problem["detail"], problem


async def test_a_refused_field_is_a_422_naming_it_and_changes_nothing(
    http: aiohttp.ClientSession, console: str
) -> None:
    async with http.get(f"{console}/api/config") as resp:
        before = await resp.json()
    refused = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: order-service, namespace: meshmart}
spec:
  hosts: [order-service]
  http:
    - route: [{destination: {host: order-service, subset: v1}}]
      retries: {attempts: 2, retryOn: "5xx,not-a-condition"}
"""
    async with http.post(f"{console}/api/config/apply", json={"yaml": refused}) as resp:
        problem = await resp.json()
        assert resp.status == 422, problem
    assert "retryOn" in problem["detail"] and "not-a-condition" in problem["detail"], problem
    async with http.get(f"{console}/api/config") as resp:
        assert (await resp.json())["resources"] == before["resources"]


async def test_a_malformed_request_and_an_unknown_node_are_4xx(
    http: aiohttp.ClientSession, console: str
) -> None:
    async with http.post(f"{console}/api/config/apply", data=b"{not json") as resp:
        assert resp.status == 400, await resp.text()
    async with http.get(f"{console}/api/nodes/version:no-such-service:v9") as resp:
        problem = await resp.json()
        assert resp.status == 404
    assert "no node 'version:no-such-service:v9'" in problem["detail"]
    assert "version:order-service:v1" in problem["detail"]  # the known ones are listed


async def test_the_stream_sends_a_graph_at_once_and_again_after_a_sample(
    http: aiohttp.ClientSession, console: str
) -> None:
    events = 0
    async with http.get(f"{console}/api/graph/stream") as resp:
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/event-stream")

        async def two_graphs() -> None:
            nonlocal events
            async for line in resp.content:
                if line.startswith(b"event: graph"):
                    events += 1
                    if events == 2:
                        return

        await asyncio.wait_for(two_graphs(), timeout=15)
    assert events == 2
