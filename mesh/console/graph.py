"""Kiali's versioned app graph, from two samples of every Envoy and of Kafka's offsets.

Nodes: the ingress gateway, one box per app holding a node per version, a node per Service,
and Kafka's topics and consumer groups. HTTP edges go caller version -> Service (what the
caller's sidecar saw: its outbound connection manager's responses, fault-injected ones
included) and Service -> version (which endpoints the callers' clusters reached, with the
VirtualService's weight). Kafka edges go producer -> topic -> consumer group, the group
drawn inside its app's box.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from mesh.console.envoy_stats import EnvoySnapshot
from mesh.console.health import Health, http_health, worst
from mesh.console.kafka_offsets import KafkaSnapshot
from mesh.console.models import Edge, Graph, Node, Traffic
from mesh.console.relations import hosts_of, subsets
from mesh.console.sampler import Window
from mesh.control.topology import Proxy, Topology, Workload
from mesh.istio.loader import MeshConfig
from services.common.events import DLQ_SUFFIX, TOPIC_PRODUCERS

GATEWAY = "gateway:istio-ingressgateway"


def service_id(host: str) -> str:
    return f"service:{host.split('.')[0]}"


def app_id(app: str) -> str:
    return f"app:{app}"


def version_id(app: str, version: str) -> str:
    return f"version:{app}:{version}"


def app_and_version(proxy: Proxy) -> tuple[str, str]:
    """The app and version a sidecar's labels give it (as Kiali groups workloads)."""
    return proxy.labels.get("app", proxy.name), proxy.labels.get("version", "unknown")


@dataclass
class Tally:
    """Requests counted between two samples, plus what the newer sample says."""

    requests: int = 0
    server_errors: int = 0
    client_errors: int = 0
    total: int = 0
    p99_ms: float | None = None
    tls: bool = False

    def add_p99(self, value: float | None) -> None:
        if value is not None:
            self.p99_ms = value if self.p99_ms is None else max(self.p99_ms, value)

    def traffic(self, seconds: float) -> Traffic:
        def share(part: int) -> float:
            return round(100 * part / self.requests, 2) if self.requests else 0.0

        rate = round(self.requests / seconds, 2) if seconds > 0 else 0.0
        return Traffic(
            rate=rate,
            error_percent=share(self.server_errors),
            client_error_percent=share(self.client_errors),
            p99_ms=None if self.p99_ms is None else round(self.p99_ms, 1),
            total=self.total,
        )

    def health(self, seconds: float) -> Health:
        t = self.traffic(seconds)
        return http_health(t.rate, t.error_percent, t.client_error_percent)


@dataclass
class Counts:
    """Counter differences between two snapshots of one proxy; its p99s over the window."""

    proxy: str
    window: Window

    @property
    def older(self) -> EnvoySnapshot | None:
        return self.window.older.envoys.get(self.proxy) if self.window.seconds else None

    @property
    def newer(self) -> EnvoySnapshot:
        return self.window.newer.envoys[self.proxy]

    def p99_ms(self, histogram: str) -> float | None:
        return self.window.p99_ms(self.proxy, histogram)

    def delta(self, name: str) -> int:
        before = self.older.counters.get(name, 0) if self.older else 0
        return max(0, self.newer.counters.get(name, 0) - before)

    def endpoint_delta(self, key: tuple[str, str], counter: str) -> int:
        before = self.older.endpoints.get(key, {}).get(counter, 0) if self.older else 0
        return max(0, self.newer.endpoints.get(key, {}).get(counter, 0) - before)

    def clusters_of(self, host: str) -> set[str]:
        return {
            c
            for c, _ in self.newer.endpoints
            if c.startswith("outbound|") and c.endswith(f"|{host}")
        }


def _tally_connection_manager(tally: Tally, counts: Counts, prefix: str) -> None:
    tally.requests += counts.delta(f"{prefix}.downstream_rq_total")
    tally.server_errors += counts.delta(f"{prefix}.downstream_rq_5xx")
    tally.client_errors += counts.delta(f"{prefix}.downstream_rq_4xx")
    tally.total += counts.newer.counters.get(f"{prefix}.downstream_rq_total", 0)
    tally.add_p99(counts.p99_ms(f"{prefix}.downstream_rq_time"))


def _tally_cluster(tally: Tally, counts: Counts, cluster: str) -> None:
    prefix = f"cluster.{cluster}"
    tally.requests += counts.delta(f"{prefix}.upstream_rq_total")
    tally.server_errors += counts.delta(f"{prefix}.upstream_rq_5xx")
    tally.client_errors += counts.delta(f"{prefix}.upstream_rq_4xx")
    tally.total += counts.newer.counters.get(f"{prefix}.upstream_rq_total", 0)
    tally.add_p99(counts.p99_ms(f"{prefix}.upstream_rq_time"))


@dataclass
class Builder:
    topology: Topology
    config: MeshConfig
    tls_clusters: dict[str, frozenset[str]]  # proxy -> its clusters that originate mTLS
    window: Window
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[str, Edge] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.window.seconds

    def counts(self, proxy: str) -> Counts | None:
        if proxy not in self.window.newer.envoys:
            return None
        return Counts(proxy, self.window)

    def endpoint_of(self) -> dict[str, Workload]:
        return {f"127.0.0.1:{w.inbound_port}": w for w in self.topology.workloads if w.inbound_port}

    # --- nodes -----------------------------------------------------------------------

    def add_nodes(self) -> None:
        self.nodes[GATEWAY] = Node(id=GATEWAY, kind="gateway", label="istio-ingressgateway")
        for w in self.topology.sidecars:
            app, version = app_and_version(w)
            self.nodes.setdefault(app_id(app), Node(id=app_id(app), kind="app", label=app, app=app))
            self.nodes.setdefault(
                version_id(app, version),
                Node(
                    id=version_id(app, version),
                    kind="version",
                    label=version,
                    parent=app_id(app),
                    app=app,
                    version=version,
                ),
            )
        for host in self.topology.service_hosts():
            short = host.split(".")[0]
            self.nodes[service_id(host)] = Node(
                id=service_id(host), kind="service", label=short, app=short
            )

    # --- HTTP --------------------------------------------------------------------------

    def http_edge(self, source: str, target: str, tally: Tally, weight: int | None = None) -> None:
        if tally.total == 0:
            return  # never called: Kiali hides such edges too
        self.edge(
            source,
            target,
            "http",
            tally.traffic(self.seconds),
            tally.health(self.seconds),
            mtls=tally.tls,
            weight=weight,
        )

    def edge(
        self,
        source: str,
        target: str,
        protocol: Literal["http", "kafka"],
        traffic: Traffic,
        health: Health,
        **extra: Any,
    ) -> None:
        edge_id = f"{source}->{target}"
        self.edges[edge_id] = Edge(
            id=edge_id,
            source=source,
            target=target,
            protocol=protocol,
            traffic=traffic,
            health=health,
            **extra,
        )

    def caller_edges(self) -> None:
        """Caller -> Service, as each caller's proxy saw its requests answered."""
        hosts = self.topology.service_hosts()
        by_caller: dict[tuple[str, str], Tally] = defaultdict(Tally)
        if (gateway := self.counts(self.topology.ingress.name)) is not None:
            for host in hosts:
                tally = by_caller[(GATEWAY, host)]
                for cluster in gateway.clusters_of(host):
                    _tally_cluster(tally, gateway, cluster)
                    tally.tls |= cluster in self.tls_clusters.get(self.topology.ingress.name, ())
        for w in self.topology.sidecars:
            counts = self.counts(w.name)
            if counts is None:
                continue
            caller = version_id(*app_and_version(w))
            for host in w.outbound_ports:
                tally = by_caller[(caller, host)]
                _tally_connection_manager(tally, counts, f"http.outbound_{host.split('.')[0]}")
                tls = self.tls_clusters.get(w.name, frozenset())
                tally.tls |= any(c in tls for c in counts.clusters_of(host))
        for (caller, host), tally in by_caller.items():
            self.http_edge(caller, service_id(host), tally)

    def service_edges(self) -> None:
        """Service -> version: the endpoints every caller's clusters reached."""
        endpoint_of = self.endpoint_of()
        proxies = [p.name for p in self.topology.proxies]
        for host in self.topology.service_hosts():
            by_version: dict[str, Tally] = defaultdict(Tally)
            for proxy in proxies:
                counts = self.counts(proxy)
                if counts is None:
                    continue
                for cluster in counts.clusters_of(host):
                    reached: set[str] = set()
                    for key in [k for k in counts.newer.endpoints if k[0] == cluster]:
                        workload = endpoint_of.get(key[1])
                        if workload is None:
                            continue
                        tally = by_version[workload.version]
                        tally.requests += counts.endpoint_delta(key, "rq_total")
                        tally.server_errors += counts.endpoint_delta(key, "rq_error")
                        tally.total += counts.newer.endpoints[key].get("rq_total", 0)
                        tally.tls |= cluster in self.tls_clusters.get(proxy, ())
                        if counts.endpoint_delta(key, "rq_total"):
                            reached.add(workload.version)
                    # a cluster's latency, given to the versions it reached (one, for a subset)
                    for version in reached:
                        by_version[version].add_p99(
                            counts.p99_ms(f"cluster.{cluster}.upstream_rq_time")
                        )
            weights = route_weights(self.config, host)
            app = host.split(".")[0]
            for version, tally in by_version.items():
                self.http_edge(
                    service_id(host), version_id(app, version), tally, weights.get(version)
                )

    # --- Kafka -------------------------------------------------------------------------

    def kafka(self, older: KafkaSnapshot | None, newer: KafkaSnapshot) -> None:
        seconds = newer.at - older.at if older else 0.0

        def rate(now: int, before: int) -> float:
            return round(max(0, now - before) / seconds, 2) if seconds > 0 else 0.0

        for topic in newer.topics():
            if topic.endswith(DLQ_SUFFIX) and not newer.messages(topic):
                continue  # an empty dead-letter topic: nothing to show
            self.nodes[f"topic:{topic}"] = Node(
                id=f"topic:{topic}", kind="topic", label=topic, health="healthy"
            )
        for group in newer.committed:
            gid = f"group:{group}"
            # the group sits in its app's box: the app's replicas are its members
            box = app_id(group) if app_id(group) in self.nodes else None
            self.nodes[gid] = Node(
                id=gid, kind="group", label=f"{group} (group)", app=group, parent=box
            )
            for topic in newer.consumed_topics(group):
                lag = newer.lag(group, topic)
                committed = sum(newer.committed[group].values())
                before = sum(older.committed.get(group, {}).values()) if older else committed
                traffic = Traffic(
                    rate=rate(committed, before),
                    error_percent=0,
                    client_error_percent=0,
                    p99_ms=None,
                    total=committed,
                )
                health: Health = "healthy" if lag == 0 else "degraded"
                self.edge(f"topic:{topic}", gid, "kafka", traffic, health, lag=lag)
        for topic in newer.topics():
            producer = TOPIC_PRODUCERS.get(topic)
            if producer is None and topic.endswith(DLQ_SUFFIX):
                base = topic.removesuffix(DLQ_SUFFIX)
                producer = next(
                    (g for g in newer.committed if base in newer.consumed_topics(g)), None
                )
            if producer is None or app_id(producer) not in self.nodes:
                continue
            now = newer.messages(topic)
            before = older.messages(topic) if older else now
            traffic = Traffic(
                rate=rate(now, before),
                error_percent=0,
                client_error_percent=0,
                p99_ms=None,
                total=now,
            )
            if f"topic:{topic}" in self.nodes:
                health = "healthy" if traffic.rate else "idle"
                self.edge(app_id(producer), f"topic:{topic}", "kafka", traffic, health)

    # --- health of nodes ---------------------------------------------------------------

    def node_health(self) -> None:
        inbound: dict[str, list[Health]] = defaultdict(list)
        for edge in self.edges.values():
            inbound[edge.target].append(edge.health)
        down = self.window.newer.down
        for w in self.topology.sidecars:  # a replica that does not answer fails its version
            if w.name in down:
                inbound[version_id(*app_and_version(w))].append("failure")
        if self.topology.ingress.name in down:
            inbound[GATEWAY].append("failure")
        for node in self.nodes.values():
            healths = inbound.get(node.id, [])
            if node.kind != "topic":
                node.health = worst(*healths) if healths else "idle"

    def graph(self) -> Graph:
        return Graph(
            window_seconds=round(self.seconds, 2),
            nodes=list(self.nodes.values()),
            edges=list(self.edges.values()),
            down=dict(self.window.newer.down),
            kafka_available=self.window.newer.kafka is not None,
        )


def route_weights(config: MeshConfig, host: str) -> dict[str, int]:
    """version -> weight of the mesh route that takes everything else (the last catch-all),
    as the VirtualService for `host` sets it; {} if none splits by subset."""
    for vs in config.virtual_services:
        if host not in hosts_of(vs):
            continue
        if vs.spec.gateways and "mesh" not in vs.spec.gateways:
            continue
        catch_all = [r for r in vs.spec.http if not r.match] or vs.spec.http
        route = catch_all[0]
        weights: dict[str, int] = {}
        labels_of = subsets(config, host)
        for dest in route.route:
            version = labels_of.get(dest.destination.subset or "", {}).get("version")
            if version is not None:
                weights[version] = weights.get(version, 0) + (
                    100 if len(route.route) == 1 else dest.weight or 0
                )
        return weights
    return {}


def build_graph(
    topology: Topology, config: MeshConfig, tls_clusters: dict[str, frozenset[str]], window: Window
) -> Graph:
    builder = Builder(topology, config, tls_clusters, window)
    builder.add_nodes()
    builder.caller_edges()
    builder.service_edges()
    if window.newer.kafka is not None:
        builder.kafka(window.older.kafka, window.newer.kafka)
    builder.node_health()
    return builder.graph()


def edges_touching(graph: Graph, node_ids: Iterable[str]) -> tuple[list[Edge], list[Edge]]:
    """(inbound, outbound) edges of a set of nodes."""
    ids = set(node_ids)
    inbound = [e for e in graph.edges if e.target in ids]
    outbound = [e for e in graph.edges if e.source in ids]
    return inbound, outbound
