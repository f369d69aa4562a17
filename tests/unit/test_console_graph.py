"""The console's arithmetic on Envoy and Kafka figures, with snapshots made up in the test
(the real mesh's figures are tested in tests/mesh/test_console_api.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.console.envoy_stats import EnvoySnapshot, parse_clusters, parse_stats
from mesh.console.graph import build_graph
from mesh.console.health import http_health
from mesh.console.kafka_offsets import KafkaSnapshot
from mesh.console.models import Edge, Graph
from mesh.console.sampler import Sample, Window
from mesh.console.validations import validate
from mesh.control.topology import Topology, build_topology
from mesh.istio.loader import MeshConfig, parse_documents

ORDER = "order-service.meshmart.svc.cluster.local"
V1_CLUSTER = f"outbound|8080|v1|{ORDER}"
V2_CLUSTER = f"outbound|8080|v2|{ORDER}"

ROUTING = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: order-service, namespace: meshmart}
spec:
  host: order-service
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: order-service, namespace: meshmart}
spec:
  hosts: [order-service]
  http:
    - route:
        - {destination: {host: order-service, subset: v1}, weight: 90}
        - {destination: {host: order-service, subset: v2}, weight: 10}
"""


@pytest.fixture
def topology(tmp_path: Path) -> Topology:
    replicas = {("user-service", "v1"): 1, ("order-service", "v1"): 1, ("order-service", "v2"): 1}
    return build_topology(replicas, ("user-service", "order-service"), tmp_path)


def config(text: str = ROUTING) -> MeshConfig:
    found = MeshConfig()
    found.apply(parse_documents(Path("test.yaml"), text))
    return found


def address(topology: Topology, name: str) -> str:
    return next(f"127.0.0.1:{w.inbound_port}" for w in topology.workloads if w.name == name)


def caller(at: float, total: int, errors: int, p99: float | None, topology: Topology,
           v1: int = 0, v2: int = 0) -> EnvoySnapshot:  # fmt: skip
    """user-service's sidecar after `total` calls to order-service, `errors` of them 5xx."""
    prefix = "http.outbound_order-service"
    return EnvoySnapshot(
        at,
        {f"{prefix}.downstream_rq_total": total, f"{prefix}.downstream_rq_5xx": errors},
        {f"{prefix}.downstream_rq_time": p99, f"cluster.{V2_CLUSTER}.upstream_rq_time": p99},
        {
            (V1_CLUSTER, address(topology, "order-service-v1-0")): {"rq_total": v1},
            (V2_CLUSTER, address(topology, "order-service-v2-0")): {"rq_total": v2},
        },
    )


def window(topology: Topology, *snapshots: EnvoySnapshot,
           kafka: list[KafkaSnapshot] | None = None) -> Window:  # fmt: skip
    offsets: list[KafkaSnapshot | None] = list(kafka) if kafka else [None] * len(snapshots)
    return Window(tuple(Sample(s.at, {"user-service-v1-0": s}, {}, k)
                        for s, k in zip(snapshots, offsets, strict=True)))  # fmt: skip


def edge(graph: Graph, source: str, target: str) -> Edge:
    return next(e for e in graph.edges if (e.source, e.target) == (source, target))


def test_a_caller_edge_has_the_rate_error_share_and_worst_p99_of_its_window(
    topology: Topology,
) -> None:
    samples = window(topology, caller(0, 100, 0, 5.0, topology), caller(5, 150, 10, None, topology),
                     caller(10, 200, 20, 12.5, topology))  # fmt: skip
    graph = build_graph(topology, config(), {}, samples)
    calls = edge(graph, "version:user-service:v1", "service:order-service")
    assert calls.traffic.rate == 10.0  # (200 - 100) requests in 10 s
    assert calls.traffic.error_percent == 20.0  # 20 of those 100 were 5xx
    assert calls.traffic.p99_ms == 12.5  # the worst flush interval; a null one is no request
    assert calls.traffic.total == 200
    assert calls.health == "failure"  # Kiali: 5xx from 10 %
    assert calls.mtls is False  # no cluster of the caller originates TLS here


def test_service_to_version_edges_carry_the_split_and_the_virtual_service_weights(
    topology: Topology,
) -> None:
    samples = window(topology, caller(0, 0, 0, None, topology),
                     caller(10, 100, 0, 3.0, topology, v1=90, v2=10))  # fmt: skip
    tls = {"user-service-v1-0": frozenset({V1_CLUSTER, V2_CLUSTER})}
    graph = build_graph(topology, config(), tls, samples)
    v1 = edge(graph, "service:order-service", "version:order-service:v1")
    v2 = edge(graph, "service:order-service", "version:order-service:v2")
    assert (v1.traffic.rate, v2.traffic.rate) == (9.0, 1.0)
    assert (v1.weight, v2.weight) == (90, 10)
    assert v1.mtls and v2.mtls
    assert v2.traffic.p99_ms == 3.0 and v1.traffic.p99_ms is None  # only v2's cluster had one
    assert {n.id for n in graph.nodes if n.parent == "app:order-service"} == {
        "version:order-service:v1", "version:order-service:v2"}  # fmt: skip


def test_kafka_edges_show_lag_and_rates_and_leave_empty_dead_letter_topics_out(
    topology: Topology,
) -> None:
    older = KafkaSnapshot(0, {("order-events", 0): 10, ("order-events.dlq", 0): 0},
                          {"order-service": {}})  # fmt: skip
    newer = KafkaSnapshot(10, {("order-events", 0): 30, ("order-events.dlq", 0): 0},
                          {"order-service": {("order-events", 0): 25}})  # fmt: skip
    samples = window(topology, caller(0, 0, 0, None, topology), caller(10, 0, 0, None, topology),
                     kafka=[older, newer])  # fmt: skip
    graph = build_graph(topology, config(), {}, samples)
    consumed = edge(graph, "topic:order-events", "group:order-service")
    assert consumed.lag == 5 and consumed.health == "degraded"
    produced = edge(graph, "app:order-service", "topic:order-events")
    assert produced.traffic.rate == 2.0  # 20 messages in 10 s
    assert "topic:order-events.dlq" not in {n.id for n in graph.nodes}
    group = next(n for n in graph.nodes if n.id == "group:order-service")
    assert group.parent == "app:order-service"


def test_a_proxy_that_does_not_answer_makes_its_node_fail(topology: Topology) -> None:
    snapshot = caller(0, 0, 0, None, topology)
    samples = Window((Sample(0, {"user-service-v1-0": snapshot}, {"order-service-v2-0": "down"}),))
    graph = build_graph(topology, config(), {}, samples)
    health = {n.id: n.health for n in graph.nodes}
    assert health["version:order-service:v2"] == "failure"
    assert health["version:order-service:v1"] == "idle"


@pytest.mark.parametrize(
    ("rate", "server", "client", "expected"),
    [(0, 50, 0, "idle"), (1, 0, 0, "healthy"), (1, 0.1, 0, "degraded"), (1, 10, 0, "failure"),
     (1, 0, 9.9, "healthy"), (1, 0, 10, "degraded"), (1, 0, 20, "failure")],
)  # fmt: skip
def test_health_uses_kiali_default_thresholds(
    rate: float, server: float, client: float, expected: str
) -> None:
    assert http_health(rate, server, client) == expected


def test_envoy_documents_are_read_as_envoy_writes_them() -> None:
    counters, p99 = parse_stats({"stats": [
        {"name": "http.outbound_order-service.downstream_rq_total", "value": 7},
        {"histograms": {"supported_quantiles": [0, 50, 99, 100], "computed_quantiles": [
            {"name": "a", "values": [{"interval": 1}, {"interval": 2}, {"interval": 9.5},
                                     {"interval": 10}]},
            {"name": "b", "values": [{"interval": None}] * 4}]}},
    ]})  # fmt: skip
    assert counters == {"http.outbound_order-service.downstream_rq_total": 7}
    assert p99 == {"a": 9.5, "b": None}
    endpoints = parse_clusters({"cluster_statuses": [{"name": V1_CLUSTER, "host_statuses": [
        {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 4}},
         "stats": [{"name": "rq_total", "value": "3"}, {"name": "rq_error"}]},
        {"address": {"pipe": {"path": "app.sock"}}}]}]})  # fmt: skip
    counted = {"rq_total": 3, "rq_error": 0, "rq_success": 0, "rq_timeout": 0}
    assert endpoints == {(V1_CLUSTER, "127.0.0.1:4"): counted}


def test_validations_flag_missing_subsets_hostless_rules_and_unreachable_versions(
    topology: Topology,
) -> None:
    text = (
        ROUTING.replace("subset: v2}, weight: 10", "subset: v3}, weight: 10")
        + """
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ghost, namespace: meshmart}
spec: {host: ghost-service}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: order-service, namespace: meshmart}
spec:
  selector: {matchLabels: {app: order-service}}
  rules: [{from: [{source: {principals: [cluster.local/ns/meshmart/sa/fortio,
                                         cluster.local/ns/meshmart/sa/user-*]}}]}]
"""
    )
    mesh = config(text)
    by_kind = {(k, n): validate(r, mesh, topology) for (k, _, n), r in mesh.resources.items()}
    vs_codes = [(v.code, v.path) for v in by_kind[("VirtualService", "order-service")]]
    assert ("KIA1107", "spec.http[0].route[1].destination.subset") in vs_codes
    assert ("MM1001", "spec.http") in vs_codes  # v2 runs, and nothing routes to it now
    assert [v.code for v in by_kind[("DestinationRule", "ghost")]] == ["KIA0202"]
    assert [v.code for v in by_kind[("DestinationRule", "order-service")]] == []
    principals = [(v.code, v.path) for v in by_kind[("AuthorizationPolicy", "order-service")]]
    # sa/fortio matches nothing; the user-* prefix matches user-service's ServiceAccount
    assert principals == [("KIA0106", "spec.rules[0].from[0].source.principals[0]")]
