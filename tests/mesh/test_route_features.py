"""The traffic-management fields istio.io's task pages use, on the real local mesh: mirroring,
header operations, CORS and load-balancing policies (tests/conformance proves each maps as
istiod maps it; this proves Envoy then does what Istio's docs say)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from mesh.envoy.process import stats
from tests.mesh.conftest import Mesh
from tests.support.shoppers import Customer

ORDER = "order-service.meshmart.svc.cluster.local"
GATEWAY_FILE = Path("istio/gateway-meshmart.yaml")
DESTINATION_RULES = "istio/destination-rule-all-mtls.yaml"


def _admin_port(mesh: Mesh, workload: str) -> int:
    return int(mesh.workload(workload)["sidecar_admin_url"].rsplit(":", 1)[1])


def _apply(mesh: Mesh, tmp_path: Path, name: str, documents: list[dict[str, object]]) -> None:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(documents))
    applied = mesh.meshmart("apply", "-f", str(path))
    assert applied.returncode == 0, applied.stderr


def _restore(mesh: Mesh, *files: str) -> None:
    for file in files:
        reverted = mesh.meshmart("apply", "-f", file)
        assert reverted.returncode == 0, reverted.stderr


def _order_vs(http: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "order-service", "namespace": "meshmart"},
        "spec": {"hosts": ["order-service"], "http": [http]},
    }  # fmt: skip


async def _user_details(
    mesh: Mesh, http: aiohttp.ClientSession, customer: Customer, n: int
) -> None:
    """`n` calls through user-service, which calls order-service from inside the mesh."""
    url = f"{mesh.ingress}/user-service/users/{customer.user_id}"
    for _ in range(n):
        async with http.get(url, headers={"Authorization": f"Bearer {customer.token}"}) as resp:
            assert resp.status == 200, await resp.text()


def _sent(mesh: Mesh, subset: str) -> int:
    counters = stats(_admin_port(mesh, "user-service-v1-0"),
                     rf"outbound\|8080\|{subset}\|order-service.*upstream_rq_total$")  # fmt: skip
    return sum(counters.values())


async def test_mirror_sends_a_copy_of_each_request_to_v2(
    mesh: Mesh, http: aiohttp.ClientSession, customer: Customer, tmp_path: Path
) -> None:
    vs = _order_vs({
        "route": [{"destination": {"host": "order-service", "subset": "v1"}}],
        "mirror": {"host": "order-service", "subset": "v2"},
        "mirrorPercentage": {"value": 100.0},
    })  # fmt: skip
    _apply(mesh, tmp_path, "mirror.yaml", [vs])
    try:
        v1, v2 = _sent(mesh, "v1"), _sent(mesh, "v2")
        await _user_details(mesh, http, customer, 10)
        assert _sent(mesh, "v1") - v1 == 10  # the answers still come from v1 ...
        assert _sent(mesh, "v2") - v2 == 10  # ... and v2 got a copy of every request
    finally:
        _restore(mesh, "istio/virtual-service-all-v1.yaml")


def _ingress_with_catalog_options(options: dict[str, object]) -> list[dict[str, object]]:
    """istio/gateway-meshmart.yaml with `options` added to the catalog-service route."""
    documents = list(yaml.safe_load_all(GATEWAY_FILE.read_text()))
    for doc in documents:
        if doc["kind"] == "VirtualService":
            for route in doc["spec"]["http"]:
                if route.get("name") == "catalog-service":
                    route.update(options)
    return documents


@pytest.fixture
def ingress_options(mesh: Mesh, tmp_path: Path) -> Iterator[None]:
    documents = _ingress_with_catalog_options({
        "headers": {"response": {"set": {"x-meshmart-route": "catalog"},
                                 "remove": ["x-envoy-upstream-service-time"]}},
        "corsPolicy": {"allowOrigins": [{"exact": "https://shop.example"}],
                       "allowMethods": ["GET"], "exposeHeaders": ["x-meshmart-route"]},
    })  # fmt: skip
    _apply(mesh, tmp_path, "ingress-options.yaml", documents)
    yield
    _restore(mesh, str(GATEWAY_FILE))


async def test_response_headers_are_set_and_removed(
    mesh: Mesh, http: aiohttp.ClientSession, ingress_options: None
) -> None:
    async with http.get(f"{mesh.ingress}/catalog-service/catalogs") as resp:
        assert resp.status == 200
        assert resp.headers["x-meshmart-route"] == "catalog"
        assert "x-envoy-upstream-service-time" not in resp.headers
    async with http.get(f"{mesh.ingress}/user-service/welcome") as resp:
        assert "x-meshmart-route" not in resp.headers  # only that route's responses


async def test_cors_policy_answers_allowed_origins_only(
    mesh: Mesh, http: aiohttp.ClientSession, ingress_options: None
) -> None:
    url = f"{mesh.ingress}/catalog-service/catalogs"
    async with http.get(url, headers={"Origin": "https://shop.example"}) as resp:
        assert resp.status == 200
        assert resp.headers["access-control-allow-origin"] == "https://shop.example"
        assert resp.headers["access-control-expose-headers"] == "x-meshmart-route"
    async with http.get(url, headers={"Origin": "https://evil.example"}) as resp:
        assert resp.status == 200
        assert "access-control-allow-origin" not in resp.headers


def _requests_per_order_replica(mesh: Mesh) -> dict[str, int]:
    """rq_total of each order-service endpoint (v1 and v2), as user-service's sidecar counts
    them."""
    url = f"http://127.0.0.1:{_admin_port(mesh, 'user-service-v1-0')}/clusters?format=json"
    with urllib.request.urlopen(url, timeout=5) as resp:
        dump = json.load(resp)
    out = {}
    for cluster in dump["cluster_statuses"]:
        if cluster["name"] != f"outbound|8080||{ORDER}":
            continue
        for host in cluster.get("host_statuses", []):
            address = host["address"]["socket_address"]
            name = f"{address['address']}:{address['port_value']}"
            counters = {s["name"]: int(s.get("value", 0)) for s in host["stats"]}
            out[name] = counters.get("rq_total", 0)
    return out


def _order_rule(load_balancer: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "order-service", "namespace": "meshmart"},
        "spec": {"host": "order-service",
                 "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}, "loadBalancer": load_balancer},
                 "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                             {"name": "v2", "labels": {"version": "v2"}}]},
    }  # fmt: skip


async def _spread(mesh: Mesh, http: aiohttp.ClientSession, customer: Customer) -> list[int]:
    before = _requests_per_order_replica(mesh)
    assert len(before) == 2, before  # order-service v1 and v2
    await _user_details(mesh, http, customer, 20)
    after = _requests_per_order_replica(mesh)
    return sorted(after[h] - before[h] for h in after)


async def test_consistent_hash_pins_a_caller_and_round_robin_alternates(
    mesh: Mesh, http: aiohttp.ClientSession, customer: Customer, tmp_path: Path
) -> None:
    to_service = _order_vs({"route": [{"destination": {"host": "order-service"}}]})
    hashed = _order_rule({"consistentHash": {"useSourceIp": True}})
    try:
        # Every call comes from user-service's one sidecar: one source IP, one endpoint.
        _apply(mesh, tmp_path, "hash.yaml", [hashed, to_service])
        assert await _spread(mesh, http, customer) == [0, 20]
        _apply(mesh, tmp_path, "round-robin.yaml", [_order_rule({"simple": "ROUND_ROBIN"})])
        assert await _spread(mesh, http, customer) == [10, 10]  # one call at a time
    finally:
        _restore(mesh, DESTINATION_RULES, "istio/virtual-service-all-v1.yaml")
