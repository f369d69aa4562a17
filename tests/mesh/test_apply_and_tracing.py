"""`meshmart apply` changes routing live (same Envoy PIDs), and one trace spans the mesh."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import aiohttp

from mesh.envoy.process import stats
from mesh.runtime.processes import alive
from tests.mesh.conftest import Mesh
from tests.support.shoppers import Customer
from tests.support.waiting import eventually

# Every hop of an order placed at the edge, as Zipkin names them.
TRACED_SERVICES = {
    "istio-ingressgateway.istio-system",  # the ingress Envoy
    "order-service.meshmart",  # order-service's sidecar
    "order-service",  # the order-service app (OpenTelemetry)
    "catalog-service.meshmart",  # catalog-service's sidecar, called by order-service
    "catalog-service",  # the catalog app, through HTTP and through Kafka
}


def _subset_requests(mesh: Mesh) -> dict[str, int]:
    """Requests the user-service sidecar sent to each order-service subset (Envoy's counters)."""
    admin_port = int(mesh.workload("user-service-v1-0")["sidecar_admin_url"].rsplit(":", 1)[1])
    counters = stats(admin_port, r"outbound\|8080\|v[12]\|order-service.*upstream_rq_total$")
    return {
        subset: sum(v for k, v in counters.items() if f"|{subset}|" in k) for subset in ("v1", "v2")
    }


async def _user_details(
    mesh: Mesh, http: aiohttp.ClientSession, customer: Customer, count: int
) -> None:
    headers = {"Authorization": f"Bearer {customer.token}"}
    url = f"{mesh.ingress}/user-service/users/{customer.user_id}"
    semaphore = asyncio.Semaphore(8)

    async def one() -> None:
        async with semaphore, http.get(url, headers=headers) as resp:
            assert resp.status == 200
            assert (await resp.json())["ordersAvailable"] is True

    await asyncio.gather(*(one() for _ in range(count)))


async def test_apply_90_10_splits_traffic_live(
    mesh: Mesh, http: aiohttp.ClientSession, customer: Customer
) -> None:
    sidecar_pids = [w["sidecar_pid"] for w in mesh.state["workloads"].values()]
    applied = mesh.meshmart("apply", "-f", "istio/virtual-service-order-90-10.yaml")
    assert applied.returncode == 0, applied.stderr
    assert "updated live" in applied.stdout
    try:
        before = _subset_requests(mesh)
        requests = 600
        await _user_details(mesh, http, customer, requests)
        after = _subset_requests(mesh)
        v1, v2 = after["v1"] - before["v1"], after["v2"] - before["v2"]
        assert v1 + v2 == requests
        # Binomial(600, 0.1): mean 60, sd ~7.3; +-4 sd keeps a false alarm below 1 in 10,000.
        assert 31 <= v2 <= 89, (v1, v2)
        assert all(alive(pid) for pid in sidecar_pids)  # live reload, not a restart
    finally:
        reverted = mesh.meshmart("apply", "-f", "istio/virtual-service-all-v1.yaml")
        assert reverted.returncode == 0, reverted.stderr
    before = _subset_requests(mesh)
    await _user_details(mesh, http, customer, 50)
    after = _subset_requests(mesh)
    assert after["v2"] == before["v2"] and after["v1"] - before["v1"] == 50


def test_apply_rejects_unsupported_config_and_changes_nothing(mesh: Mesh, tmp_path: Path) -> None:
    bad = tmp_path / "redirect.yaml"
    bad.write_text(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        "metadata: {name: order-service, namespace: meshmart}\n"
        "spec:\n  hosts: [order-service]\n  http:\n"
        "  - route: [{destination: {host: order-service, subset: v1}}]\n"
        "    redirect: {uri: /elsewhere}\n"
    )
    before = (mesh.run_dir / "mesh" / "applied.yaml").read_text()
    result = mesh.meshmart("apply", "-f", str(bad))
    assert result.returncode == 1
    assert "redirect.yaml" in result.stderr
    assert "spec.http.0.redirect: not supported" in result.stderr
    assert (mesh.run_dir / "mesh" / "applied.yaml").read_text() == before


async def test_one_trace_spans_ingress_order_and_catalog(
    mesh: Mesh, http: aiohttp.ClientSession, customer: Customer
) -> None:
    trace_id = uuid.uuid4().hex
    headers = {
        "x-b3-traceid": trace_id,
        "x-b3-spanid": trace_id[:16],
        "x-b3-sampled": "1",
        "Authorization": f"Bearer {customer.token}",
    }
    body = {"productId": "CATALOG-002", "qty": 1, "unitPrice": 1000}
    url = f"{mesh.ingress}/order-service/{customer.user_id}/orders"
    async with http.post(url, json=body, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
    spans: list[dict[str, object]] = []

    async def trace_complete() -> bool:
        async with http.get(f"{mesh.state['zipkin_url']}/api/v2/trace/{trace_id}") as resp:
            if resp.status != 200:
                return False
            spans[:] = await resp.json()
        services = {s.get("localEndpoint", {}).get("serviceName") for s in spans}  # type: ignore[union-attr]
        # Spans arrive in batches from several processes (a Kafka consumer's span can come
        # before its producer's): wait for the whole tree, not only for every service.
        return len(_roots(spans)) == 1 and services >= TRACED_SERVICES

    with contextlib.suppress(AssertionError):  # the assertions below say what is missing
        await eventually(trace_complete, 30)
    services = {s.get("localEndpoint", {}).get("serviceName") for s in spans}  # type: ignore[union-attr]
    assert services >= TRACED_SERVICES, services
    assert len(_roots(spans)) == 1, f"app and Envoy spans must join into one tree: {spans}"


def _roots(spans: list[dict[str, object]]) -> list[dict[str, object]]:
    ids = {s["id"] for s in spans}
    return [s for s in spans if s.get("parentId") not in ids]


async def test_apply_under_load_drops_no_request(
    mesh: Mesh, http: aiohttp.ClientSession, customer: Customer
) -> None:
    """Routing changes four times while requests flow: every call still reaches order-service."""
    headers = {"Authorization": f"Bearer {customer.token}"}
    url = f"{mesh.ingress}/user-service/users/{customer.user_id}"
    stop = asyncio.Event()
    outcomes: list[tuple[int, bool]] = []

    async def load() -> None:
        while not stop.is_set():
            async with http.get(url, headers=headers) as resp:
                body = await resp.json() if resp.status == 200 else {}
                outcomes.append((resp.status, bool(body.get("ordersAvailable"))))

    workers = [asyncio.create_task(load()) for _ in range(4)]
    try:
        for name in ("90-10", "50-50", "v2", "90-10"):
            result = await asyncio.to_thread(
                mesh.meshmart, "apply", "-f", f"istio/virtual-service-order-{name}.yaml"
            )
            assert result.returncode == 0, result.stderr
    finally:
        reverted = await asyncio.to_thread(
            mesh.meshmart, "apply", "-f", "istio/virtual-service-all-v1.yaml"
        )
        stop.set()
        await asyncio.gather(*workers)
    assert reverted.returncode == 0, reverted.stderr
    assert len(outcomes) >= 20
    assert set(outcomes) == {(200, True)}, {o for o in outcomes if o != (200, True)}


async def test_header_preview_reaches_v2_through_user_service(
    mesh: Mesh, http: aiohttp.ClientSession, customer: Customer
) -> None:
    """x-canary: v2 at the edge is forwarded by user-service, so its order call goes to v2."""
    applied = mesh.meshmart("apply", "-f", "istio/virtual-service-order-header-canary.yaml")
    assert applied.returncode == 0, applied.stderr
    try:
        url = f"{mesh.ingress}/user-service/users/{customer.user_id}"
        auth = {"Authorization": f"Bearer {customer.token}"}
        before = _subset_requests(mesh)
        for headers in ({**auth, "x-canary": "v2"},) * 10 + (auth,) * 10:
            async with http.get(url, headers=headers) as resp:
                assert resp.status == 200 and (await resp.json())["ordersAvailable"]
        after = _subset_requests(mesh)
        assert (after["v2"] - before["v2"], after["v1"] - before["v1"]) == (10, 10)
    finally:
        reverted = mesh.meshmart("apply", "-f", "istio/virtual-service-all-v1.yaml")
        assert reverted.returncode == 0, reverted.stderr
