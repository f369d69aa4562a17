"""The local control plane's state: applied Istio resources and the topology, on disk.

`meshmart run` writes them; `meshmart apply` (another process) reads them, applies a file the
way `kubectl apply` would, re-translates and swaps the Envoy files. Envoy does the rest.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from mesh.envoy.common import CertPaths
from mesh.envoy.files import write_proxy
from mesh.envoy.process import route_versions
from mesh.envoy.translate import Paths, translate
from mesh.istio.loader import IstioConfigError, MeshConfig, parse_documents
from mesh.topology import Ingress, Topology, Workload

REPO_ROOT = Path(__file__).resolve().parents[1]
ISTIO_DIR = REPO_ROOT / "istio"
# What `meshmart run` applies at start: the mesh's baseline (see istio/README.md).
DEFAULT_FILES = (
    "gateway-meshmart.yaml",
    "destination-rule-all-mtls.yaml",
    "peer-authentication-mesh-strict.yaml",
    "request-authentication-ingress-jwt.yaml",
    "request-authentication-services-jwt.yaml",
    "authorization-policy-ingress-jwt.yaml",
    "authorization-policy-services.yaml",
    "virtual-service-all-v1.yaml",
)


class MeshState:
    def __init__(self, run_dir: Path) -> None:
        self.root = run_dir.resolve() / "mesh"
        self.paths = Paths(self.root / "proxies")
        self.certs = CertPaths(self.root / "certs", self.root / "ca" / "root-cert.pem")

    # --- applied resources: raw documents, so they round-trip exactly as written ----------

    def _applied_file(self) -> Path:
        return self.root / "applied.yaml"

    def applied_documents(self) -> dict[str, dict[str, Any]]:
        try:
            docs = list(yaml.safe_load_all(self._applied_file().read_text(encoding="utf-8")))
        except FileNotFoundError:
            return {}
        return {_key(d): d for d in docs if d}

    def config(self, documents: dict[str, dict[str, Any]] | None = None) -> MeshConfig:
        docs = self.applied_documents() if documents is None else documents
        config = MeshConfig()
        config.apply(parse_documents(self._applied_file(), yaml.safe_dump_all(list(docs.values()))))
        return config

    def save_documents(self, documents: dict[str, dict[str, Any]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._applied_file().with_suffix(".tmp")
        tmp.write_text(
            yaml.safe_dump_all(list(documents.values()), sort_keys=False), encoding="utf-8"
        )
        tmp.replace(self._applied_file())

    # --- topology ----------------------------------------------------------------------

    def save_topology(self, topology: Topology) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "topology.json").write_text(
            json.dumps(asdict(topology), default=str, indent=2)
        )

    def topology(self) -> Topology:
        try:
            raw = json.loads((self.root / "topology.json").read_text())
        except FileNotFoundError:
            raise IstioConfigError(f"no local mesh running from {self.root.parent}") from None
        workloads = tuple(
            Workload(**{**w, "app_socket": Path(w["app_socket"])}) for w in raw["workloads"]
        )
        return Topology(
            workloads, Ingress(**raw["ingress"]), tuple(raw["services"]), raw["zipkin_port"]
        )


def _key(document: dict[str, Any]) -> str:
    meta = document.get("metadata") or {}
    return f"{document.get('kind')}/{meta.get('namespace', 'default')}/{meta.get('name')}"


def read_documents(path: Path) -> list[dict[str, Any]]:
    """Validated raw documents of one file (the validation is the loader's, with its errors)."""
    text = path.read_text(encoding="utf-8")
    parse_documents(path, text)
    return [d for d in yaml.safe_load_all(text) if d]


def render(state: MeshState, documents: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Translate and write every proxy's files; returns each proxy's route versions."""
    topology = state.topology()
    translated = translate(state.config(documents), topology, state.certs, state.paths)
    return {name: write_proxy(state.paths, name, cfg) for name, cfg in translated.items()}


def apply_files(state: MeshState, files: list[Path]) -> dict[str, dict[str, str]]:
    """`kubectl apply` for the local mesh: validate everything first, then swap, then save."""
    documents = state.applied_documents()
    for path in files:
        for doc in read_documents(path):
            documents[_key(doc)] = doc
    # Translating before writing anything: a change the translator rejects changes nothing.
    translate(state.config(documents), state.topology(), state.certs, state.paths)
    versions = render(state, documents)
    state.save_documents(documents)
    return versions


def wait_applied(
    state: MeshState, versions: dict[str, dict[str, str]], timeout: float = 10.0
) -> float:
    """Block until every Envoy reports the new route versions; returns the seconds it took."""
    topology = state.topology()
    admin = {p.name: p.admin_port for p in topology.proxies}
    started = time.monotonic()
    pending = dict(versions)
    while pending and time.monotonic() - started < timeout:
        for proxy, wanted in list(pending.items()):
            try:
                live = route_versions(admin[proxy])
            except OSError:
                continue
            if all(live.get(name) == version for name, version in wanted.items()):
                del pending[proxy]
        time.sleep(0.02)
    if pending:
        raise IstioConfigError(
            f"Envoy did not take the new config in {timeout}s: {sorted(pending)}"
        )
    return time.monotonic() - started
