from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mesh.canary.analysis import Snapshot, Thresholds, analyse, histogram_quantile
from mesh.canary.metrics import parse_envoy_inbound
from mesh.canary.rollout import Plan, run_canary, weights_document
from mesh.istio.loader import parse_documents

# A trimmed copy of a sidecar's /stats/prometheus.
ENVOY_TEXT = (Path(__file__).parent / "data" / "envoy-stats.prom").read_text()


def test_envoy_inbound_stats_are_read_from_prometheus_text() -> None:
    snap = parse_envoy_inbound(ENVOY_TEXT)
    assert (snap.requests, snap.errors) == (100, 10)  # outbound traffic is not the canary's
    assert snap.buckets == {5.0: 50, 10.0: 99, float("inf"): 100}


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    assert histogram_quantile(0.5, {5.0: 50, 10.0: 99, float("inf"): 100}) == 5.0
    assert histogram_quantile(0.99, {5.0: 50, 10.0: 99, float("inf"): 100}) == 10.0
    assert histogram_quantile(0.75, {10.0: 50, 20.0: 100, float("inf"): 100}) == 15.0
    assert histogram_quantile(0.99, {}) is None


def test_window_arithmetic() -> None:
    later = Snapshot(150, 12, {10.0: 140, float("inf"): 150})
    earlier = Snapshot(100, 10, {10.0: 100, float("inf"): 100})
    assert later - earlier == Snapshot(50, 2, {10.0: 40, float("inf"): 50})


@pytest.mark.parametrize(
    ("window", "ok", "reason"),
    [
        (Snapshot(100, 0, {100.0: 100, float("inf"): 100}), True, "within thresholds"),
        (Snapshot(100, 2, {100.0: 100, float("inf"): 100}), False, "success rate below 99%"),
        (Snapshot(100, 0, {100.0: 50, 1000.0: 100, float("inf"): 100}), False, "p99 above"),
        (Snapshot(5, 0, {100.0: 5, float("inf"): 5}), False, "too few requests"),
        (Snapshot(100, 0, {}), False, "no latency data"),
    ],
)
def test_verdicts(window: Snapshot, ok: bool, reason: str) -> None:
    verdict = analyse(window, Thresholds())
    assert verdict.ok is ok and reason in verdict.reason


def test_weight_documents_are_valid_local_mode_istio() -> None:
    text = weights_document("order-service", "meshmart", "v1", "v2", 25)
    (vs,) = parse_documents(Path("step.yaml"), text)
    routes = yaml.safe_load(text)["spec"]["http"][0]["route"]
    assert [(r["destination"]["subset"], r["weight"]) for r in routes] == [("v1", 75), ("v2", 25)]
    full = yaml.safe_load(weights_document("order-service", "meshmart", "v1", "v2", 0))
    assert [r["destination"]["subset"] for r in full["spec"]["http"][0]["route"]] == ["v1"]
    assert vs.metadata.name == "order-service"


class FakeApplier:
    def __init__(self) -> None:
        self.weights: list[int] = []

    def apply(self, path: Path) -> None:
        doc = yaml.safe_load(path.read_text())
        route = doc["spec"]["http"][0]["route"]
        self.weights.append(sum(r["weight"] for r in route if r["destination"]["subset"] == "v2"))


class FakeMetrics:
    """Cumulative counters growing by `per_step` healthy requests, errors from `bad_step` on."""

    def __init__(self, bad_step: int | None = None) -> None:
        self.calls = 0
        self.total = Snapshot()
        self.bad_step = bad_step

    def snapshot(self) -> Snapshot:
        self.calls += 1
        if self.calls % 2 == 0:  # the end of a step: add that step's traffic
            step = self.calls // 2
            errors = 20.0 if self.bad_step is not None and step >= self.bad_step else 0.0
            self.total = self.total + Snapshot(100, errors, {50.0: 100, float("inf"): 100})
        return self.total


def _plan() -> Plan:
    return Plan("order-service", "meshmart", "v1", "v2", [10, 25, 50, 100], 0, Thresholds())


def test_healthy_canary_is_promoted_through_every_step(tmp_path: Path) -> None:
    applier, said = FakeApplier(), []
    promoted = run_canary(_plan(), applier, FakeMetrics(), tmp_path, said.append, lambda _: None)
    assert promoted and applier.weights == [10, 25, 50, 100]
    assert said[-1] == "promoted: 100% v2"


def test_failing_canary_is_rolled_back_at_the_failing_step(tmp_path: Path) -> None:
    applier, said = FakeApplier(), []
    promoted = run_canary(
        _plan(), applier, FakeMetrics(bad_step=2), tmp_path, said.append, lambda _: None
    )
    assert not promoted and applier.weights == [10, 25, 0]
    assert said[-1].startswith("rolled back: 100% v1")


async def test_prometheus_source_asks_istios_destination_metrics() -> None:
    """Against a stand-in Prometheus HTTP API: the queries and the parsing of its answers."""
    import asyncio

    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from mesh.canary.metrics import PrometheusMetrics

    queries: list[str] = []

    async def query(request: web.Request) -> web.Response:
        promql = request.query["query"]
        queries.append(promql)
        if "bucket" in promql:
            result = [
                {"metric": {"le": "100"}, "value": [0, "40"]},
                {"metric": {"le": "+Inf"}, "value": [0, "50"]},
            ]
        else:
            result = [{"metric": {}, "value": [0, "5" if "5.." in promql else "50"]}]
        return web.json_response({"status": "success", "data": {"result": result}})

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    async with TestServer(app) as server:
        source = PrometheusMetrics(str(server.make_url("")), "order-service-v2", "meshmart")
        snap = await asyncio.to_thread(source.snapshot)
    assert snap == Snapshot(50, 5, {100.0: 40, float("inf"): 50})
    assert all('reporter="destination"' in q for q in queries)
    assert all('destination_workload="order-service-v2"' in q for q in queries)
    assert any("istio_request_duration_milliseconds_bucket" in q for q in queries)
