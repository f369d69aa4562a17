"""Running istiod's config generation (tools/istio-oracle) on local mode's inputs.

The oracle gets the same Istio YAML, Kubernetes objects describing local mode's topology (a
Service per service and for the ingress gateway, a ready Pod and an EndpointSlice entry per
replica, and a ready Pod that no Service selects for each client-only sidecar such as loadgen,
as k8s/components/loadgen deploys it), and the mesh config and PILOT_* settings cluster mode
installs (k8s/components/addons/istio-operator.yaml).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mesh.control.topology import SERVICE_PORT, Topology
from mesh.paths import REPO_ROOT as REPO

OPERATOR = REPO / "k8s" / "components" / "addons" / "istio-operator.yaml"
ISTIO_VERSION = "1.31.0"  # the proxies' version, set explicitly (the pinned istio.io/api)
GATEWAY_SERVICE_PORT = 80  # the Gateway's server port; the ingress pod listens on 8080


def build() -> Path:
    """The oracle binary, built once into .cache (tools/istio-oracle/build.sh)."""
    result = subprocess.run(
        [str(REPO / "tools" / "istio-oracle" / "build.sh")],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"tools/istio-oracle/build.sh failed:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def _operator() -> dict[str, Any]:
    operator: dict[str, Any] = yaml.safe_load(OPERATOR.read_text())
    return operator


def mesh_config() -> str:
    """The MeshConfig cluster mode installs, as YAML for istiod's own defaulting."""
    return yaml.safe_dump(_operator()["spec"]["meshConfig"])


def pilot_env() -> dict[str, str]:
    env: dict[str, str] = _operator()["spec"]["values"]["pilot"]["env"]
    return {k: str(v) for k, v in env.items()}


@dataclass(frozen=True)
class ProxySpec:
    name: str
    type: str
    namespace: str
    ip: str
    labels: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "type": self.type, "namespace": self.namespace, "ip": self.ip,
            "labels": self.labels, "istioVersion": ISTIO_VERSION,
        }  # fmt: skip


def proxies(topology: Topology) -> list[ProxySpec]:
    """One proxy per workload and per client sidecar (pod IPs 10.244.0.N, data only: nothing
    is sent anywhere) and the ingress gateway."""
    specs = [
        ProxySpec(s.name, "sidecar", s.namespace, f"10.244.0.{i + 10}",
                  {**s.labels, "security.istio.io/tlsMode": "istio"})
        for i, s in enumerate(topology.sidecars)
    ]  # fmt: skip
    ingress = topology.ingress
    specs.append(ProxySpec(ingress.name, "router", ingress.namespace, "10.244.0.2", ingress.labels))
    return specs


def kube_objects(topology: Topology) -> str:
    """Services, ServiceAccounts, Pods and EndpointSlices for `topology`, as kubectl would see
    them on kind."""
    docs: list[dict[str, Any]] = []
    by_ip = {p.name: p for p in proxies(topology)}
    for index, service in enumerate(topology.services, start=10):
        docs.append(
            _service(index, service, "meshmart", {"app": service}, SERVICE_PORT, SERVICE_PORT)
        )
        backends = [w for w in topology.workloads if w.service == service]
        docs.append(_endpoint_slice(service, "meshmart", [by_ip[w.name].ip for w in backends],
                                    [w.name for w in backends], SERVICE_PORT))  # fmt: skip
    ingress = topology.ingress
    docs.append(_service(2, ingress.name, ingress.namespace, {"istio": "ingressgateway"},
                         GATEWAY_SERVICE_PORT, SERVICE_PORT))  # fmt: skip
    docs.append(_endpoint_slice(ingress.name, ingress.namespace, [by_ip[ingress.name].ip],
                                [ingress.name], SERVICE_PORT))  # fmt: skip
    for namespace, account in sorted({(p.namespace, p.service_account) for p in topology.proxies}):
        docs.append({"apiVersion": "v1", "kind": "ServiceAccount",
                     "metadata": {"name": account, "namespace": namespace}})  # fmt: skip
    for proxy in topology.proxies:
        spec = by_ip[proxy.name]
        docs.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": proxy.name, "namespace": proxy.namespace, "labels": spec.labels},
            "spec": {"serviceAccountName": proxy.service_account,
                     "containers": [{"name": "app", "image": "meshmart"}]},
            "status": {"phase": "Running", "podIP": spec.ip, "podIPs": [{"ip": spec.ip}],
                       "conditions": [{"type": "Ready", "status": "True"}]},
        })  # fmt: skip
    return yaml.safe_dump_all(docs)


def _service(
    index: int, name: str, ns: str, selector: dict[str, str], port: int, target: int
) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": selector, "clusterIP": f"10.96.0.{index}",
                 "ports": [{"name": "http", "port": port, "targetPort": target,
                            "protocol": "TCP"}]},
    }  # fmt: skip


def _endpoint_slice(
    service: str, ns: str, ips: list[str], pods: list[str], port: int
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"{service}-slice", "namespace": ns,
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": [ip], "conditions": {"ready": True},
             "targetRef": {"kind": "Pod", "name": pod, "namespace": ns}}
            for ip, pod in zip(ips, pods, strict=True)
        ],
    }  # fmt: skip


@dataclass(frozen=True)
class Case:
    name: str
    config: str  # Istio YAML
    topology: Topology

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "config": self.config, "kube": kube_objects(self.topology),
            "mesh": mesh_config(), "proxies": [p.as_json() for p in proxies(self.topology)],
        }  # fmt: skip


@dataclass(frozen=True)
class Result:
    """istiod's answer for one case: what istio's validation refused, or every proxy's config."""

    rejected: list[dict[str, str]]
    proxies: dict[str, Any]


def run(binary: Path, cases: list[Case], workdir: Path) -> dict[str, Result]:
    """istiod's result for every case, by case name; raises when the oracle itself fails."""
    output = workdir / "istiod.json"
    result = subprocess.run(
        [str(binary), str(output)], input=json.dumps([c.as_json() for c in cases]),
        capture_output=True, text=True, timeout=1200, env={**os.environ, **pilot_env()},
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"istio-oracle failed:\n{result.stderr[-3000:]}{result.stdout[-3000:]}")
    out: dict[str, Result] = {}
    for item in json.loads(output.read_text()):
        if item.get("error"):
            raise RuntimeError(f"istio-oracle, case {item['name']}: {item['error']}")
        out[item["name"]] = Result(item.get("rejected") or [], item.get("proxies") or {})
    return out
