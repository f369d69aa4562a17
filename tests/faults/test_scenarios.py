"""Fault injection and resilience, reproduced with the mesh config alone (Istio's tasks)."""

from __future__ import annotations

import asyncio
import re
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
import yaml

from mesh.canary.traffic import rate_for
from mesh.envoy.process import stats
from mesh.runtime.processes import alive
from tests.faults.conftest import FaultMesh
from tests.support.shoppers import Customer, sign_up_and_log_in

ORDER = {"productId": "CATALOG-003", "qty": 1, "unitPrice": 2000}


@pytest.fixture(scope="session")
async def customer(fault_mesh: FaultMesh, http: aiohttp.ClientSession) -> Customer:
    return await sign_up_and_log_in(http, fault_mesh.state["ingress_url"])


@pytest.fixture
async def shopper(fault_mesh: FaultMesh, http: aiohttp.ClientSession) -> Customer:
    """A fresh user per scenario: order-service admits only the owner's token."""
    return await sign_up_and_log_in(http, fault_mesh.state["ingress_url"])


def _orders(mesh: FaultMesh, customer: Customer) -> tuple[str, dict[str, str]]:
    """The customer's orders as user-service's app calls them, and the token that owns them."""
    return f"{mesh.orders_url}/{customer.user_id}/orders", bearer(customer)


def bearer(customer: Customer) -> dict[str, str]:
    return {"Authorization": f"Bearer {customer.token}"}


async def _user_detail(
    mesh: FaultMesh, http: aiohttp.ClientSession, customer: Customer
) -> tuple[int, bool, float]:
    started = time.monotonic()
    url = f"{mesh.state['ingress_url']}/user-service/users/{customer.user_id}"
    async with http.get(url, headers=bearer(customer)) as resp:
        body = await resp.json() if resp.status == 200 else {}
    return resp.status, bool(body.get("ordersAvailable")), time.monotonic() - started


async def _statuses(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    count: int,
    concurrency: int = 1,
    **kw: object,
) -> Counter[int]:
    semaphore, seen = asyncio.Semaphore(concurrency), Counter[int]()

    async def one() -> None:
        async with semaphore, http.request(method, url, **kw) as resp:  # type: ignore[arg-type]
            await resp.read()
            seen[resp.status] += 1

    await asyncio.gather(*(one() for _ in range(count)))
    return seen


# 1 ---------------------------------------------------------------------------------------
async def test_delay_on_order_service_user_detail_degrades_within_its_timeout(
    mesh: FaultMesh, http: aiohttp.ClientSession, customer: Customer
) -> None:
    mesh.apply("istio/virtual-service-order-test-delay.yaml")  # +3 s on every call to orders
    for _ in range(3):
        status, orders_available, seconds = await _user_detail(mesh, http, customer)
        assert status == 200 and not orders_available
        assert seconds < 1.0 + 0.8, f"{seconds:.2f}s: user-service's 1 s orders timeout + margin"


async def test_route_timeout_answers_504_in_half_a_second(
    mesh: FaultMesh, http: aiohttp.ClientSession, shopper: Customer
) -> None:
    # order-service's calls to catalog are delayed 3 s; the route to order-service times out at
    # 0.5 s, so an in-mesh caller gets Envoy's 504 instead of waiting.
    mesh.apply("istio/virtual-service-order-timeout.yaml")
    url, auth = _orders(mesh, shopper)
    started = time.monotonic()
    async with http.post(url, json=ORDER, headers=auth) as resp:
        assert resp.status == 504
    assert time.monotonic() - started < 0.5 + 0.5


# 2 ---------------------------------------------------------------------------------------
async def test_abort_on_order_service_user_detail_never_5xx(
    mesh: FaultMesh, http: aiohttp.ClientSession, customer: Customer
) -> None:
    mesh.apply("istio/virtual-service-order-test-abort.yaml")
    results = [await _user_detail(mesh, http, customer) for _ in range(30)]
    assert {(status, available) for status, available, _ in results} == {(200, False)}


# 3 ---------------------------------------------------------------------------------------
async def test_retries_on_503_are_the_difference_between_50_and_99_percent(
    mesh: FaultMesh, http: aiohttp.ClientSession, shopper: Customer, tmp_path: Path
) -> None:
    # 50% of order-service's calls to catalog-service are aborted with 503, so order-service
    # itself fails half of the order placements. Only the retry policy changes below.
    mesh.apply("istio/virtual-service-order-abort-50-retry.yaml")
    url, auth = _orders(mesh, shopper)

    async def place(count: int) -> Counter[int]:
        seen = Counter[int]()
        for _ in range(count):  # each order its own key: a retried POST can't order twice
            headers = {"Idempotency-Key": str(uuid.uuid4()), **auth}
            async with http.post(url, json=ORDER, headers=headers) as resp:
                seen[resp.status] += 1
        return seen

    with_retries = await place(100)
    assert with_retries[201] >= 99, with_retries
    baseline = yaml.safe_load_all(Path("istio/virtual-service-all-v1.yaml").read_text())
    default_retries = tmp_path / "order-default-retries.yaml"
    default_retries.write_text(
        yaml.safe_dump(next(d for d in baseline if d["metadata"]["name"] == "order-service"))
    )
    mesh.apply(str(default_retries))  # same fault, Istio's default retry policy (no 503 retry)
    without = await place(200)
    assert 60 <= without[503] <= 140, without  # Binomial(200, 0.5) ± 5.6 sd
    async with http.get(url, headers=auth) as resp:
        placed = len(await resp.json())
    assert placed == with_retries[201] + without[201]  # no order was created twice


# 4 ---------------------------------------------------------------------------------------
async def test_outlier_detection_ejects_the_failing_replica(
    mesh: FaultMesh, http: aiohttp.ClientSession, shopper: Customer
) -> None:
    await mesh.set_fault("order-service-v1-1", 100)  # one of two v1 replicas is broken
    mesh.apply("istio/destination-rule-order-outlier-detection.yaml")
    url, auth = _orders(mesh, shopper)
    warmup = await _statuses(http, "GET", url, 40, headers=auth)
    assert warmup[500] >= 3, warmup  # the broken replica was hit before it was ejected
    recovered = await _statuses(http, "GET", url, 100, headers=auth)
    assert recovered == Counter({200: 100}), recovered
    counters = stats(
        mesh.admin_port("user-service-v1-0"),
        r"outbound\|8080\|v1\|order-service.*outlier_detection.ejections_enforced_total$",
    )
    assert sum(counters.values()) >= 1, counters


# 5 ---------------------------------------------------------------------------------------
async def test_connection_pool_overflow_fails_fast_with_503(
    mesh: FaultMesh, http: aiohttp.ClientSession, shopper: Customer
) -> None:
    mesh.apply("istio/destination-rule-order-circuit-breaker.yaml")
    url, auth = _orders(mesh, shopper)
    overloaded = 0

    async def one() -> int:
        nonlocal overloaded
        async with http.get(url, headers=auth) as resp:
            await resp.read()
            overloaded += resp.headers.get("x-envoy-overloaded") == "true"
            return resp.status

    statuses = Counter(await asyncio.gather(*(one() for _ in range(60))))
    assert statuses[503] > 0 and statuses[200] > 0, statuses
    assert overloaded == statuses[503]  # every 503 is the breaker's, not order-service's
    counters = stats(
        mesh.admin_port("user-service-v1-0"),
        r"outbound\|8080\|v1\|order-service.*upstream_rq_pending_overflow$",
    )
    assert sum(counters.values()) >= statuses[503], counters


# 6 ---------------------------------------------------------------------------------------
async def test_header_scoped_delay_leaves_other_traffic_alone(
    mesh: FaultMesh, http: aiohttp.ClientSession, shopper: Customer
) -> None:
    mesh.apply("istio/virtual-service-order-test-delay-header.yaml")
    url, auth = _orders(mesh, shopper)

    async def timed(headers: dict[str, str]) -> float:
        started = time.monotonic()
        async with http.get(url, headers={**headers, **auth}) as resp:
            assert resp.status == 200
        return time.monotonic() - started

    delayed = await asyncio.gather(*(timed({"x-test-fault": "delay"}) for _ in range(3)))
    normal = [await timed({}) for _ in range(20)]
    assert min(delayed) >= 2.9, delayed
    assert max(normal) < 1.0, normal


# 7 ---------------------------------------------------------------------------------------
def _inbound_http2(mesh: FaultMesh, workload: str) -> int:
    counters = stats(mesh.admin_port(workload), r"http\.inbound_8080\.downstream_rq_http2_total$")
    return sum(counters.values())


async def _fan_out_http2_streams(
    mesh: FaultMesh, http: aiohttp.ClientSession, shopper: Customer
) -> tuple[int, int]:
    """Ten GET /users/{id} through the ingress; how many arrived as HTTP/2 streams at
    user-service's sidecar (from the ingress) and at order-service's (from user-service's)."""
    replicas = ("order-service-v1-0", "order-service-v1-1")

    def counts() -> tuple[int, int]:
        return _inbound_http2(mesh, "user-service-v1-0"), sum(
            _inbound_http2(mesh, r) for r in replicas
        )

    before = counts()
    details = [await _user_detail(mesh, http, shopper) for _ in range(10)]
    assert all(status == 200 and available for status, available, _ in details), details
    after = counts()
    return after[0] - before[0], after[1] - before[1]


async def test_proxies_speak_http2_to_each_other_by_default(
    mesh: FaultMesh, http: aiohttp.ClientSession, shopper: Customer
) -> None:
    """destination-rule-all-mtls.yaml's h2UpgradePolicy: UPGRADE turns both hops of
    GET /users/{id} (ingress -> user-service sidecar -> order-service sidecar) into HTTP/2
    streams; destination-rule-all-http1.yaml turns them back into HTTP/1.1, the apps
    answering the same either way."""
    from_ingress, from_user = await _fan_out_http2_streams(mesh, http, shopper)
    assert from_ingress >= 10 and from_user >= 10, (from_ingress, from_user)
    upgraded = stats(
        mesh.admin_port("user-service-v1-0"),
        r"outbound\|8080\|v1\|order-service.*upstream_cx_http2_total$",
    )
    assert sum(upgraded.values()) >= 1, upgraded
    mesh.apply("istio/destination-rule-all-http1.yaml")
    assert await _fan_out_http2_streams(mesh, http, shopper) == (0, 0)


# 8 ---------------------------------------------------------------------------------------
async def _canary_with_traffic(
    mesh: FaultMesh, http: aiohttp.ClientSession, customer: Customer
) -> tuple[int, str]:
    stop = asyncio.Event()
    url, auth = _orders(mesh, customer)

    async def load() -> None:
        while not stop.is_set():
            async with http.get(url, headers=auth) as resp:
                await resp.read()

    workers = [asyncio.create_task(load()) for _ in range(4)]
    try:
        return await _canary(mesh, "--steps", "25,50,100", "--interval", "2", "--load", "0")
    finally:
        stop.set()
        await asyncio.gather(*workers)


async def _canary(mesh: FaultMesh, *options: str) -> tuple[int, str]:
    """`meshmart canary order-service --to v2 OPTIONS`: its exit code and output."""
    canary = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mesh.cli", "canary", "order-service", "--to", "v2", *options,
        "--run-dir", str(mesh.run_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(canary.communicate(), 120)
    assert canary.returncode is not None
    return canary.returncode, output.decode()


def _order_weights(mesh: FaultMesh) -> dict[str, int]:
    applied = yaml.safe_load_all((mesh.run_dir / "mesh" / "applied.yaml").read_text())
    vs = next(
        d
        for d in applied
        if d["kind"] == "VirtualService" and d["metadata"]["name"] == "order-service"
    )
    return {
        r["destination"]["subset"]: r.get("weight", 100) for r in vs["spec"]["http"][0]["route"]
    }


async def test_canary_with_errors_is_rolled_back(
    mesh: FaultMesh, http: aiohttp.ClientSession, shopper: Customer
) -> None:
    await mesh.set_fault("order-service-v2-0", 50)
    code, output = await _canary_with_traffic(mesh, http, shopper)
    assert code == 1, output
    assert "success rate below 99%" in output and "rolled back: 100% v1" in output
    assert _order_weights(mesh) == {"v1": 100}


async def test_healthy_canary_is_promoted(
    mesh: FaultMesh, http: aiohttp.ClientSession, shopper: Customer
) -> None:
    code, output = await _canary_with_traffic(mesh, http, shopper)
    assert code == 0, output
    assert output.count("within thresholds") == 3 and "promoted: 100% v2" in output
    assert _order_weights(mesh) == {"v2": 100}


async def test_a_canary_on_a_quiet_shop_brings_its_own_traffic(mesh: FaultMesh) -> None:
    """No hand-made requests: `meshmart canary` runs `meshmart load --via mesh` for the rollout
    (from the loadgen sidecar, where the weights apply), at a rate that gives the first step
    twice the requests the analysis needs, and stops it after."""
    code, output = await _canary(
        mesh, "--steps", "50,100", "--interval", "3", "--min-requests", "5"
    )
    assert code == 0, output
    traffic = re.search(
        r"^traffic: meshmart load --via mesh at (\d+) req/s \(pid (\d+), ", output, re.M
    )
    assert traffic is not None, output
    assert float(traffic.group(1)) == rate_for(min_requests=5, interval=3, first_step=50)
    assert output.count("within thresholds") == 2 and "promoted: 100% v2" in output
    assert not alive(int(traffic.group(2)))  # stopped with the rollout, by PID
    assert _order_weights(mesh) == {"v2": 100}
