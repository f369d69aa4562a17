"""The whole translation: applied Istio resources + local topology -> one Envoy config per proxy.

A pure function of its inputs (no I/O), so every mapping is unit-testable with golden
fragments, and `meshmart apply` can validate a change before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mesh.control.topology import SERVICE_PORT, Client, Ingress, Proxy, Sidecar, Topology, Workload
from mesh.envoy.authz import rbac_filters
from mesh.envoy.clusters import outbound_clusters
from mesh.envoy.common import (
    T_CLUSTER,
    CertPaths,
    Config,
    inbound_cluster,
    outbound_cluster,
    typed,
)
from mesh.envoy.listeners import gateway_listener, inbound_listener, outbound_listener
from mesh.envoy.routes import gateway_route_config, sidecar_route_config
from mesh.envoy.security import jwt_filter, selects
from mesh.istio.loader import IstioConfigError, MeshConfig
from mesh.istio.models import Gateway, PeerAuthentication

ROOT_NAMESPACE = "istio-system"  # where mesh-wide PeerAuthentication and policies live


@dataclass
class ProxyConfig:
    listeners: list[Config] = field(default_factory=list)
    clusters: list[Config] = field(default_factory=list)
    routes: dict[str, Config] = field(default_factory=dict)


@dataclass(frozen=True)
class Paths:
    """Where each proxy's files live: <root>/<proxy>/{lds,cds}.yaml and routes/."""

    root: Path

    def proxy_dir(self, proxy: str) -> Path:
        return self.root / proxy

    def route_dir(self, proxy: str) -> Path:
        return self.proxy_dir(proxy) / "routes"

    def access_log(self, proxy: str) -> Path:
        return self.proxy_dir(proxy) / "access.log"


def mtls_mode(config: MeshConfig, workload: Workload) -> str:
    """The app port's mode, composed as istiod composes it (ComposePeerAuthentication): one
    policy per scope, the oldest (first applied); mesh root, then namespace, then workload
    selector, each UNSET keeping the mode from above; then the workload policy's
    `portLevelMtls` entry for the app port, if any (UNSET keeps the workload's mode)."""
    scopes: dict[int, PeerAuthentication] = {}  # 0 workload, 1 namespace, 2 mesh root
    for pa in config.peer_authentications:  # applied order: oldest first
        labels = pa.spec.selector.matchLabels if pa.spec.selector else None
        if labels and pa.metadata.namespace == ROOT_NAMESPACE:
            continue  # istiod ignores a workload selector on a mesh-wide policy
        if selects(labels, pa.metadata.namespace, workload, ROOT_NAMESPACE):
            rank = 0 if labels else 1 if pa.metadata.namespace == workload.namespace else 2
            scopes.setdefault(rank, pa)
    mode = "PERMISSIVE"  # Istio's default
    for rank in (2, 1, 0):
        policy = scopes.get(rank)
        if policy is not None and policy.spec.mtls and policy.spec.mtls.mode != "UNSET":
            mode = policy.spec.mtls.mode
    ports = scopes[0].spec.portLevelMtls if 0 in scopes else None
    port = (ports or {}).get(SERVICE_PORT)
    # Another port has no listener here; istiod gives it a filter chain nothing reaches.
    return port.mode if port is not None and port.mode != "UNSET" else mode


def _app_cluster(workload: Workload) -> Config:
    return typed(
        T_CLUSTER,
        name=inbound_cluster(),
        type="STATIC",
        connect_timeout="10s",
        load_assignment={
            "cluster_name": inbound_cluster(),
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": {"pipe": {"path": str(workload.app_socket)}}}}
                    ]
                }
            ],
        },
    )


def _authn_authz_filters(config: MeshConfig, proxy: Proxy) -> list[Config]:
    """Istio's order on every inbound or gateway HCM: jwt_authn first, then RBAC."""
    jwt = jwt_filter(config, proxy, ROOT_NAMESPACE)
    return [*([jwt] if jwt else []), *rbac_filters(config, proxy, ROOT_NAMESPACE)]


def _outbound(
    config: MeshConfig, topology: Topology, sidecar: Sidecar, paths: Paths, out: ProxyConfig
) -> None:
    """The listeners the app (or the load generator) calls its peers at, and their routes."""
    for host, port in sorted(sidecar.outbound_ports.items()):
        route = sidecar_route_config(config, topology, host)
        out.routes[route["name"]] = route
        out.listeners.append(
            outbound_listener(
                host, port, route["name"], paths.route_dir(sidecar.name),
                paths.access_log(sidecar.name), topology.trace_sampling,
            )
        )  # fmt: skip


def _sidecar(
    config: MeshConfig, topology: Topology, workload: Workload, certs: CertPaths, paths: Paths
) -> ProxyConfig:
    out = ProxyConfig(
        clusters=[*outbound_clusters(config, topology, workload, certs), _app_cluster(workload)]
    )
    out.listeners.append(
        inbound_listener(
            workload.inbound_port,
            mode=mtls_mode(config, workload),
            service_account=workload.service_account,
            certs=certs,
            filters=_authn_authz_filters(config, workload),
            access_log=paths.access_log(workload.name),
            sampling=topology.trace_sampling,
        )
    )
    _outbound(config, topology, workload, paths, out)
    return out


def _client(
    config: MeshConfig, topology: Topology, client: Client, certs: CertPaths, paths: Paths
) -> ProxyConfig:
    """Outbound only. istiod gives a pod no Service selects a virtualInbound of passthrough
    chains alone (no chain for an app port, no inbound cluster); with no app and no traffic
    interception here, there is nothing for such a listener to pass through to."""
    out = ProxyConfig(clusters=outbound_clusters(config, topology, client, certs))
    _outbound(config, topology, client, paths, out)
    return out


def _gateway_for(config: MeshConfig, ingress: Ingress) -> Gateway:
    bound = [g for g in config.gateways if g.spec.selector.items() <= ingress.labels.items()]
    if len(bound) != 1:
        raise IstioConfigError(
            f"local mode needs exactly one Gateway selecting the ingress ({ingress.labels}); "
            f"found {len(bound)}"
        )
    return bound[0]


def _ingress(config: MeshConfig, topology: Topology, certs: CertPaths, paths: Paths) -> ProxyConfig:
    ingress = topology.ingress
    gateway = _gateway_for(config, ingress)
    if len(gateway.spec.servers) != 1:
        raise IstioConfigError(
            f"Gateway {gateway.metadata.namespace}/{gateway.metadata.name}: spec.servers: "
            "local mode serves exactly one HTTP server (on the ingress port)"
        )
    server_port = gateway.spec.servers[0].port.number
    route = gateway_route_config(config, topology, gateway, server_port)
    listener = gateway_listener(
        ingress.port, route["name"], paths.route_dir(ingress.name),
        _authn_authz_filters(config, ingress),
        paths.access_log(ingress.name), topology.trace_sampling,
    )  # fmt: skip
    return ProxyConfig(
        listeners=[listener],
        clusters=outbound_clusters(config, topology, ingress, certs),
        routes={route["name"]: route},
    )


def translate(
    config: MeshConfig, topology: Topology, certs: CertPaths, paths: Paths
) -> dict[str, ProxyConfig]:
    """Envoy resources for every proxy, keyed by proxy name. Raises IstioConfigError."""
    result = {w.name: _sidecar(config, topology, w, certs, paths) for w in topology.workloads}
    result |= {c.name: _client(config, topology, c, certs, paths) for c in topology.clients}
    result[topology.ingress.name] = _ingress(config, topology, certs, paths)
    return result


__all__ = ["Paths", "ProxyConfig", "mtls_mode", "outbound_cluster", "translate"]
