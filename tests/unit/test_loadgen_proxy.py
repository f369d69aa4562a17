"""The loadgen workload of local mode: a client-only sidecar with its own identity, outbound
listeners for every service and nothing inbound; it survives the trip through topology.json."""

from __future__ import annotations

from pathlib import Path

from mesh.control.state import DEFAULT_FILES, MeshState
from mesh.control.topology import LOADGEN, Client, build_topology
from mesh.envoy.common import CertPaths
from mesh.envoy.translate import Paths, translate
from mesh.istio.loader import MeshConfig, parse_documents
from mesh.paths import ISTIO_DIR

SERVICES = ("user-service", "catalog-service", "order-service")
HOSTS = [f"{s}.meshmart.svc.cluster.local" for s in SERVICES]
CERTS = CertPaths(Path("/certs"), Path("/ca/root-cert.pem"))
TOPOLOGY = build_topology(
    {("user-service", "v1"): 1, ("catalog-service", "v1"): 1, ("order-service", "v1"): 1,
     ("order-service", "v2"): 1},
    SERVICES, Path("/sockets"), zipkin_port=9411,
)  # fmt: skip


def _baseline() -> MeshConfig:
    config = MeshConfig()
    for name in DEFAULT_FILES:
        config.apply(parse_documents(ISTIO_DIR / name, (ISTIO_DIR / name).read_text()))
    return config


def test_loadgen_is_a_client_of_every_service_with_its_own_identity() -> None:
    loadgen = TOPOLOGY.loadgen
    assert isinstance(loadgen, Client) and loadgen.name == LOADGEN
    assert loadgen.labels == {"app": "loadgen", "version": "v1"}
    assert loadgen.spiffe_id == "spiffe://cluster.local/ns/meshmart/sa/loadgen"
    assert sorted(loadgen.outbound_ports) == sorted(HOSTS)
    # A caller only: no Service selects it, so no service host has it as an endpoint.
    assert all(loadgen not in TOPOLOGY.endpoints(h) for h in HOSTS)
    assert loadgen in TOPOLOGY.proxies and loadgen in TOPOLOGY.sidecars
    assert build_topology({}, SERVICES, Path("/s"), loadgen=False).clients == ()


def test_its_sidecar_only_calls_out_with_mtls_as_loadgen() -> None:
    proxy = translate(_baseline(), TOPOLOGY, CERTS, Paths(Path("/proxies")))[LOADGEN]
    loadgen = TOPOLOGY.loadgen
    assert loadgen is not None
    listeners = {item["name"]: item for item in proxy.listeners}
    assert sorted(listeners) == sorted(f"outbound_{h}" for h in HOSTS)  # nothing inbound
    for host, port in loadgen.outbound_ports.items():
        address = listeners[f"outbound_{host}"]["address"]["socket_address"]
        assert address == {"address": "127.0.0.1", "port_value": port}
    assert sorted(proxy.routes) == sorted(f"outbound|8080||{h}" for h in HOSTS)
    assert not [c for c in proxy.clusters if c["name"].startswith("inbound|")]
    order = next(
        c
        for c in proxy.clusters
        if c["name"] == "outbound|8080|v1|order-service.meshmart.svc.cluster.local"
    )
    tls = order["transport_socket"]["typed_config"]["common_tls_context"]
    assert tls["tls_certificates"] == [CERTS.tls_certificate("loadgen")]  # its client identity
    (san,) = tls["validation_context"]["match_typed_subject_alt_names"]
    assert san["matcher"] == {"exact": "spiffe://cluster.local/ns/meshmart/sa/order-service"}


def test_the_topology_round_trips_through_its_file(tmp_path: Path) -> None:
    state = MeshState(tmp_path / "run")
    state.save_topology(TOPOLOGY)
    assert state.topology() == TOPOLOGY
    assert state.envoy_log(TOPOLOGY, LOADGEN) == tmp_path / "run" / "logs" / "loadgen-envoy.log"
