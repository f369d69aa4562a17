"""The running shop as the console sees it: `meshmart run`'s state.json and the mesh state.

Everything is re-read when its file changes, so a `meshmart apply` from a terminal (or from
the console's own page) shows at the next refresh.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh.control.state import MeshState, shown
from mesh.control.topology import Topology
from mesh.envoy.files import read_proxy
from mesh.istio.loader import IstioConfigError, MeshConfig


class NotRunning(Exception):
    """No `meshmart run` in mesh mode is running from the console's run folder."""


@dataclass(frozen=True)
class Instance:
    """One workload replica as the supervisor started it."""

    name: str
    service: str
    version: str
    app_pid: int
    sidecar_pid: int
    admin_port: int


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


class Shop:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.mesh = MeshState(run_dir)
        self._cache: dict[str, tuple[float, Any]] = {}

    def _cached(self, key: str, path: Path, load: Any) -> Any:
        stamp = _mtime(path)
        hit = self._cache.get(key)
        if hit is None or hit[0] != stamp:
            hit = (stamp, load())
            self._cache[key] = hit
        return hit[1]

    def state(self) -> dict[str, Any]:
        path = self.run_dir / "state.json"

        def load() -> dict[str, Any]:
            try:
                state: dict[str, Any] = json.loads(path.read_text())
            except (FileNotFoundError, ValueError):
                raise NotRunning(f"no `meshmart run` is running from {self.run_dir}") from None
            if state.get("mode") != "mesh":
                raise NotRunning("the shop runs in direct mode: there is no mesh to show")
            return state

        state: dict[str, Any] = self._cached("state", path, load)
        return state

    def topology(self) -> Topology:
        self.state()
        path = self.mesh.root / "topology.json"
        topology: Topology = self._cached("topology", path, self.mesh.topology)
        return topology

    def documents(self) -> dict[str, dict[str, Any]]:
        path = self.mesh.root / "applied.yaml"
        documents: dict[str, dict[str, Any]] = self._cached(
            "documents", path, self.mesh.applied_documents
        )
        return documents

    def sources(self) -> dict[str, Path]:
        path = self.mesh.root / "applied-sources.json"
        sources: dict[str, Path] = self._cached("sources", path, self.mesh.sources)
        return sources

    def file_of(self, key: str) -> str | None:
        """The file a resource ("Kind/namespace/name") was applied from, as a person types it."""
        source = self.sources().get(key)
        return None if source is None else str(shown(source))

    def config(self) -> MeshConfig:
        path = self.mesh.root / "applied.yaml"

        def load() -> MeshConfig:
            try:
                return self.mesh.config()
            except IstioConfigError:
                return MeshConfig()  # meshmart apply only saves what it accepted

        config: MeshConfig = self._cached("config", path, load)
        return config

    def tls_clusters(self, proxy: str) -> frozenset[str]:
        """The clusters of `proxy` that originate (m)TLS, from the files Envoy was given."""
        path = self.mesh.paths.proxy_dir(proxy) / "cds.yaml"

        def load() -> frozenset[str]:
            clusters = read_proxy(self.mesh.paths, proxy).clusters
            return frozenset(c["name"] for c in clusters if "transport_socket" in c)

        clusters: frozenset[str] = self._cached(f"tls:{proxy}", path, load)
        return clusters

    def instances(self) -> list[Instance]:
        state, topology = self.state(), self.topology()
        workloads = state.get("workloads", {})
        return [
            Instance(
                w.name,
                w.service,
                w.version,
                workloads.get(w.name, {}).get("app_pid", 0),
                workloads.get(w.name, {}).get("sidecar_pid", 0),
                w.admin_port,
            )
            for w in topology.workloads
        ]

    @property
    def zipkin_url(self) -> str:
        return str(self.state()["zipkin_url"])

    @property
    def kafka_bootstrap_servers(self) -> str:
        return str(self.state()["kafka_bootstrap_servers"])
