"""Bringing up the local mesh: certificates, Envoy configs, apps behind sidecars, the loadgen
client sidecar, the ingress."""

from __future__ import annotations

import hashlib
import os
from functools import partial
from pathlib import Path

from mesh.control.ca import LocalCA
from mesh.control.state import DEFAULT_FILES, MeshState, read_documents, render
from mesh.control.topology import Client, Proxy, Topology, Workload, build_topology
from mesh.control.workloads import SERVICES, by_name
from mesh.envoy.files import bootstrap
from mesh.envoy.process import envoy_child, is_ready
from mesh.infra.kafka import KafkaBroker
from mesh.infra.zipkin import ZipkinServer
from mesh.paths import ISTIO_DIR
from mesh.runtime.appenv import app_env
from mesh.runtime.ports import unix_http_ok
from mesh.runtime.processes import Child, python_module
from mesh.runtime.supervisor import Supervisor


def _issue_certificates(state: MeshState, topology: Topology) -> None:
    ca = LocalCA.load_or_create(state.root / "ca")
    for proxy in topology.proxies:
        ca.issue_workload(proxy.namespace, proxy.service_account, state.certs.directory)


def _node_cluster(proxy: Proxy) -> str:
    """What Zipkin and Kiali call the proxy: `<service>.<namespace>` as in Istio."""
    service = proxy.service if isinstance(proxy, Workload) else proxy.name
    return f"{service}.{proxy.namespace}"


def _app_env(
    workload: Workload,
    run_dir: Path,
    admin_dsn: str,
    broker: KafkaBroker,
    zipkin: ZipkinServer,
) -> dict[str, str]:
    return app_env(
        by_name(workload.service),
        run_dir=run_dir,
        admin_dsn=admin_dsn,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        listen={"MESHMART_UNIX_SOCKET": str(workload.app_socket)},
        # The app calls its peers at its own sidecar's outbound listener for them.
        peers={
            h.split(".")[0]: f"http://127.0.0.1:{p}" for h, p in workload.outbound_ports.items()
        },
        version=workload.version,
        zipkin_endpoint=zipkin.collector_endpoint,
    )


def start_local_mesh(
    sup: Supervisor,
    admin_dsn: str,
    broker: KafkaBroker,
    zipkin: ZipkinServer,
    *,
    replicas: dict[tuple[str, str], int],
    ingress_port: int,
    test_endpoints: bool = False,
    trace_sampling_percent: float = 100.0,
    proxy_concurrency: int = 1,
    app_access_log: bool = False,
) -> Topology:
    run_dir = sup.run_dir
    state = MeshState(run_dir)
    sockets = app_socket_dir(run_dir)
    services = tuple(s.name for s in SERVICES)
    topology = build_topology(
        replicas,
        services,
        sockets,
        ingress_port=ingress_port,
        zipkin_port=zipkin.port,
        trace_sampling_percent=trace_sampling_percent,
    )
    state.save_topology(topology)
    _issue_certificates(state, topology)
    documents = {}
    for name in DEFAULT_FILES:
        for doc in read_documents(ISTIO_DIR / name):
            documents[
                f"{doc['kind']}/{doc['metadata'].get('namespace')}/{doc['metadata']['name']}"
            ] = doc
    render(state, documents)
    state.save_documents(documents)
    sup.progress(f"translated {len(documents)} Istio resources from istio/ into Envoy config")

    logs = run_dir / "logs"
    apps: list[tuple[Workload, Child]] = []
    for workload in topology.workloads:
        workload.app_socket.unlink(missing_ok=True)  # left over by a killed run
        env = _app_env(workload, run_dir, admin_dsn, broker, zipkin)
        if test_endpoints:
            env["MESHMART_TEST_ENDPOINTS"] = "true"
        env["MESHMART_TRACE_SAMPLING_PERCENT"] = str(trace_sampling_percent)
        # Behind a sidecar, the sidecar's access log is the request log (method, path, status,
        # duration, the caller's SPIFFE ID, x-request-id); the app's own line would cost a
        # third of its CPU per request (docs/benchmarks.md, "Server options").
        env["MESHMART_ACCESS_LOG"] = "true" if app_access_log else "false"
        child = Child(
            workload.name, python_module(by_name(workload.service).package), env,
            logs / f"{workload.name}.log",
        )  # fmt: skip
        apps.append((workload, sup.start(child)))
    # The loadgen sidecar starts with the others: nothing calls it, it only calls out.
    sidecars = [
        (s, _start_envoy(sup, state, s, zipkin, logs, proxy_concurrency)) for s in topology.sidecars
    ]
    for workload, child in apps:
        sup.wait_ready(child, partial(unix_http_ok, workload.app_socket), workload.name)
    for sidecar, child in sidecars:
        sup.wait_ready(child, partial(is_ready, sidecar.admin_port), f"{sidecar.name} sidecar")
    ingress = _start_envoy(sup, state, topology.ingress, zipkin, logs, proxy_concurrency)
    sup.wait_ready(ingress, lambda: is_ready(topology.ingress.admin_port), "ingress gateway")
    return topology


def _start_envoy(
    sup: Supervisor,
    state: MeshState,
    proxy: Proxy,
    zipkin: ZipkinServer,
    logs: Path,
    concurrency: int,
) -> Child:
    node_cluster = _node_cluster(proxy)
    config = bootstrap(state.paths, proxy, node_cluster, zipkin.port)
    name = f"{proxy.name}-envoy" if isinstance(proxy, Workload | Client) else proxy.name
    return sup.start(envoy_child(name, config, node_cluster, logs / f"{name}.log", concurrency))


def app_socket_dir(run_dir: Path) -> Path:
    """A short private directory for the apps' unix sockets (paths are limited to 107 bytes)."""
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:10]
    path = Path("/tmp") / f"meshmart-{os.getuid()}-{digest}"  # noqa: S108 - private 0700 dir
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
    return path
