"""DestinationRules -> Envoy clusters, as istiod builds them for a proxy's outbound calls."""

from __future__ import annotations

from mesh.control.topology import Proxy, Topology, fqdn
from mesh.envoy.common import (
    T_HTTP_PROTOCOL_OPTIONS,
    T_UPSTREAM_TLS,
    UNLIMITED,
    CertPaths,
    Config,
    duration,
    outbound_cluster,
    typed,
)
from mesh.istio.loader import MeshConfig
from mesh.istio.models import DestinationRule, LoadBalancerSettings, TrafficPolicy

_LB_POLICY = {
    "ROUND_ROBIN": "ROUND_ROBIN",
    "LEAST_REQUEST": "LEAST_REQUEST",
    "LEAST_CONN": "LEAST_REQUEST",
    "RANDOM": "RANDOM",
    "UNSPECIFIED": "LEAST_REQUEST",
}


def _load_balancing(settings: LoadBalancerSettings | None) -> Config:
    """applyLoadBalancer + ApplyRingHashLoadBalancer: the simple policy, or a hash ring."""
    hashing = settings.consistentHash if settings else None
    if hashing is None:
        simple = settings.simple if settings and settings.simple else "UNSPECIFIED"
        return {"lb_policy": _LB_POLICY[simple]}
    if hashing.maglev is not None:
        size = hashing.maglev.tableSize
        config = {"maglev_lb_config": {"table_size": size}} if size else {}
        return {"lb_policy": "MAGLEV", **config}
    if hashing.ringHash is not None:
        size = hashing.ringHash.minimumRingSize
        config = {"ring_hash_lb_config": {"minimum_ring_size": size}} if size else {}
        return {"lb_policy": "RING_HASH", **config}
    return {"lb_policy": "RING_HASH", "ring_hash_lb_config": {"minimum_ring_size": 1024}}


def destination_rule_for(config: MeshConfig, host: str) -> DestinationRule | None:
    for rule in sorted(config.destination_rules, key=lambda r: r.metadata.name):
        if fqdn(rule.spec.host, rule.metadata.namespace) == host:
            return rule
    return None


def merge_policy(top: TrafficPolicy | None, subset: TrafficPolicy | None) -> TrafficPolicy:
    """A subset's policy replaces the top-level one field by field, as Istio merges them."""
    base = top or TrafficPolicy()
    if subset is None:
        return base
    return TrafficPolicy(
        connectionPool=subset.connectionPool or base.connectionPool,
        outlierDetection=subset.outlierDetection or base.outlierDetection,
        loadBalancer=subset.loadBalancer or base.loadBalancer,
        tls=subset.tls or base.tls,
    )


def _circuit_breakers(policy: TrafficPolicy) -> Config:
    pool = policy.connectionPool
    tcp = pool.tcp if pool else None
    http = pool.http if pool else None
    return {
        "thresholds": [
            {
                "max_connections": (tcp.maxConnections if tcp else None) or UNLIMITED,
                "max_pending_requests": (http.http1MaxPendingRequests if http else None)
                or UNLIMITED,
                "max_requests": (http.http2MaxRequests if http else None) or UNLIMITED,
                "max_retries": (http.maxRetries if http else None) or UNLIMITED,
                # No track_remaining: istiod does not set it (tests/conformance).
            }
        ]
    }


def _outlier_detection(policy: TrafficPolicy) -> Config | None:
    outlier = policy.outlierDetection
    if outlier is None:
        return None
    out: Config = {"enforcing_success_rate": 0}  # Istio disables success-rate ejection
    if outlier.consecutive5xxErrors is not None:
        out["consecutive_5xx"] = outlier.consecutive5xxErrors
        out["enforcing_consecutive_5xx"] = 100 if outlier.consecutive5xxErrors > 0 else 0
    if outlier.consecutiveGatewayErrors is not None:
        out["consecutive_gateway_failure"] = outlier.consecutiveGatewayErrors
        out["enforcing_consecutive_gateway_failure"] = (
            100 if outlier.consecutiveGatewayErrors > 0 else 0
        )
    if outlier.interval is not None:
        out["interval"] = duration(outlier.interval)
    if outlier.baseEjectionTime is not None:
        out["base_ejection_time"] = duration(outlier.baseEjectionTime)
    if outlier.maxEjectionPercent:
        out["max_ejection_percent"] = outlier.maxEjectionPercent
    return out


def _http_protocol_options(policy: TrafficPolicy) -> Config | None:
    """applyH2Upgrade + applyConnectionPool + clusterWrapper.build: HTTP/2 to the peer when
    the rule says UPGRADE (the mesh default, DO_NOT_UPGRADE, keeps HTTP/1.1), and the
    per-connection request cap; HTTP/1.1 stays explicit whenever the options exist."""
    pool = policy.connectionPool
    http = pool.http if pool else None
    if http is None:
        return None
    upgrade = http.h2UpgradePolicy == "UPGRADE"
    if not upgrade and not http.maxRequestsPerConnection:
        return None
    fields: Config = {
        "explicit_http_config": {"http2_protocol_options": {}}
        if upgrade
        else {"http_protocol_options": {}}
    }
    if http.maxRequestsPerConnection:
        fields["common_http_protocol_options"] = {
            "max_requests_per_connection": http.maxRequestsPerConnection
        }
    return typed(T_HTTP_PROTOCOL_OPTIONS, **fields)


def _cluster(
    name: str,
    host: str,
    endpoints: list[tuple[str, int]],
    policy: TrafficPolicy,
    proxy: Proxy,
    topology: Topology,
    certs: CertPaths,
) -> Config:
    pool = policy.connectionPool
    connect_timeout = pool.tcp.connectTimeout if pool and pool.tcp else None
    cluster: Config = {
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": name,
        "type": "STATIC",
        "connect_timeout": duration(connect_timeout) if connect_timeout else "10s",
        **_load_balancing(policy.loadBalancer),
        "circuit_breakers": _circuit_breakers(policy),
        # Kubernetes-style: never route to ejected hosts just because many are ejected.
        "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {"socket_address": {"address": a, "port_value": p}}
                            }
                        }
                        for a, p in endpoints
                    ]
                }
            ],
        },
    }
    if (options := _http_protocol_options(policy)) is not None:
        cluster["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": options
        }
    if (outlier := _outlier_detection(policy)) is not None:
        cluster["outlier_detection"] = outlier
    if policy.tls is None or policy.tls.mode == "ISTIO_MUTUAL":
        # Auto mTLS: every local workload has a sidecar, so Istio would speak mTLS to it.
        peer = (
            f"spiffe://cluster.local/ns/{host.split('.')[1]}/sa/{topology.service_account_of(host)}"
        )
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": typed(
                T_UPSTREAM_TLS,
                common_tls_context={
                    # Envoy's client side stops at TLS 1.2 unless told otherwise.
                    "tls_params": {
                        "tls_minimum_protocol_version": "TLSv1_2",
                        "tls_maximum_protocol_version": "TLSv1_3",
                    },
                    "tls_certificates": [certs.tls_certificate(proxy.service_account)],
                    "validation_context": {
                        "trusted_ca": certs.trusted_ca(),
                        "match_typed_subject_alt_names": [
                            {"san_type": "URI", "matcher": {"exact": peer}}
                        ],
                    },
                },
            ),
        }
    return cluster


def outbound_clusters(
    config: MeshConfig, topology: Topology, proxy: Proxy, certs: CertPaths
) -> list[Config]:
    """One cluster per service host, plus one per DestinationRule subset."""
    clusters = []
    for host in topology.service_hosts():
        rule = destination_rule_for(config, host)
        top = rule.spec.trafficPolicy if rule else None
        every = [("127.0.0.1", w.inbound_port) for w in topology.endpoints(host)]
        clusters.append(
            _cluster(
                outbound_cluster(host), host, every, merge_policy(top, None), proxy, topology, certs
            )
        )
        for subset in rule.spec.subsets if rule else []:
            members = [
                ("127.0.0.1", w.inbound_port) for w in topology.endpoints(host, subset.labels)
            ]
            policy = merge_policy(top, subset.trafficPolicy)
            clusters.append(
                _cluster(
                    outbound_cluster(host, subset.name),
                    host,
                    members,
                    policy,
                    proxy,
                    topology,
                    certs,
                )
            )
    return clusters
