"""What runs where in local mode: workloads, their sidecars' ports, the ingress.

This is the local stand-in for Kubernetes' Services, Pods and ServiceAccounts: it gives the
translator the labels, identities and addresses that istiod would read from the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mesh.runtime.ports import free_port

NAMESPACE = "meshmart"
TRUST_DOMAIN = "cluster.local"
SERVICE_PORT = 8080  # every shop Service exposes one port named http, as in cluster mode
INGRESS_NAMESPACE = "istio-system"
INGRESS_SERVICE_ACCOUNT = "istio-ingressgateway-service-account"
INGRESS_LABELS = {"istio": "ingressgateway", "app": "istio-ingressgateway"}
# The in-mesh load generator (`meshmart load --via mesh`): pod name, ServiceAccount and `app`.
LOADGEN = "loadgen"


def fqdn(host: str, namespace: str = NAMESPACE) -> str:
    """ResolveShortnameToFQDN: a name without a dot is relative to the resource's namespace;
    anything with a dot is taken as fully qualified (`order-service.meshmart` names no
    Kubernetes service, in istiod as here)."""
    if "." in host or host == "*":
        return host
    return f"{host}.{namespace}.svc.cluster.local"


@dataclass(frozen=True)
class Proxy:
    """One Envoy: a workload's sidecar or the ingress gateway."""

    name: str
    namespace: str
    service_account: str
    labels: dict[str, str]
    admin_port: int

    @property
    def spiffe_id(self) -> str:
        return f"spiffe://{TRUST_DOMAIN}/ns/{self.namespace}/sa/{self.service_account}"


@dataclass(frozen=True)
class Workload(Proxy):
    service: str = ""
    version: str = "v1"
    inbound_port: int = 0
    app_socket: Path = Path()
    # destination service host (FQDN) -> loopback port of this sidecar's outbound listener
    outbound_ports: dict[str, int] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return fqdn(self.service)


@dataclass(frozen=True)
class Client(Proxy):
    """A sidecar with no app behind it: a caller only, like a pod that no Kubernetes Service
    selects (Online Boutique's loadgenerator). It has outbound listeners for every service and
    a client certificate for its ServiceAccount, and no inbound listener: nothing in the mesh
    routes to it."""

    # destination service host (FQDN) -> loopback port of this sidecar's outbound listener
    outbound_ports: dict[str, int] = field(default_factory=dict)


Sidecar = Workload | Client  # every proxy with outbound listeners the translator builds


@dataclass(frozen=True)
class Ingress(Proxy):
    port: int = 8080


@dataclass(frozen=True)
class Topology:
    workloads: tuple[Workload, ...]
    ingress: Ingress
    services: tuple[str, ...]  # short names, e.g. order-service
    zipkin_port: int | None = None
    # Percent of new traces sampled (Telemetry randomSamplingPercentage: Istio's default is 1,
    # its demo profile and cluster mode's telemetry.yaml 100); the apps follow the decision.
    trace_sampling_percent: float = 100.0
    clients: tuple[Client, ...] = ()

    @property
    def trace_sampling(self) -> float | None:
        """What each proxy's tracing samples, or None when there is no Zipkin to send to."""
        return None if self.zipkin_port is None else self.trace_sampling_percent

    @property
    def proxies(self) -> tuple[Proxy, ...]:
        return (*self.workloads, *self.clients, self.ingress)

    @property
    def sidecars(self) -> tuple[Sidecar, ...]:
        return (*self.workloads, *self.clients)

    @property
    def loadgen(self) -> Client | None:
        return next((c for c in self.clients if c.name == LOADGEN), None)

    def service_hosts(self) -> list[str]:
        return [fqdn(s) for s in self.services]

    def endpoints(self, host: str, labels: dict[str, str] | None = None) -> list[Workload]:
        """Workloads behind a service host, optionally narrowed to a subset's labels."""
        return [
            w
            for w in self.workloads
            if w.host == host and all(w.labels.get(k) == v for k, v in (labels or {}).items())
        ]

    def service_account_of(self, host: str) -> str:
        return host.split(".")[0]  # one ServiceAccount per service, named like it


def build_topology(
    replicas: dict[tuple[str, str], int],
    services: tuple[str, ...],
    socket_dir: Path,
    *,
    ingress_port: int = 8080,
    zipkin_port: int | None = None,
    trace_sampling_percent: float = 100.0,
    loadgen: bool = True,
) -> Topology:
    """Allocate loopback ports for `replicas` {(service, version): count}, and for the
    `loadgen` client sidecar unless `loadgen` is False."""
    hosts = [fqdn(s) for s in services]
    workloads = []
    for (service, version), count in sorted(replicas.items()):
        for replica in range(count):
            name = f"{service}-{version}-{replica}"
            workloads.append(
                Workload(
                    name=name,
                    namespace=NAMESPACE,
                    service_account=service,
                    labels={"app": service, "version": version},
                    admin_port=free_port(),
                    service=service,
                    version=version,
                    inbound_port=free_port(),
                    app_socket=socket_dir / f"{name}.sock",
                    outbound_ports={h: free_port() for h in hosts if h != fqdn(service)},
                )
            )
    ingress = Ingress(
        name="istio-ingressgateway",
        namespace=INGRESS_NAMESPACE,
        service_account=INGRESS_SERVICE_ACCOUNT,
        labels=dict(INGRESS_LABELS),
        admin_port=free_port(),
        port=ingress_port,
    )
    clients = (
        Client(
            name=LOADGEN,
            namespace=NAMESPACE,
            service_account=LOADGEN,
            labels={"app": LOADGEN, "version": "v1"},
            admin_port=free_port(),
            outbound_ports={h: free_port() for h in hosts},
        ),
    )
    return Topology(
        tuple(workloads), ingress, services, zipkin_port, trace_sampling_percent,
        clients if loadgen else (),
    )  # fmt: skip
