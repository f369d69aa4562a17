"""Envoy's file-based xDS: bootstrap, and atomic swaps of LDS/CDS/RDS files.

Envoy notices a change only when a file is renamed over the watched one (see
shared/reference/envoy-notes.md), so every write goes to a temp file in the same directory
and is then renamed. Clusters are written as the union of old and new first, so a route never
points at a cluster that does not exist yet: an apply drops no request.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from mesh.envoy.common import ZIPKIN_CLUSTER, Config
from mesh.envoy.listeners import route_file
from mesh.envoy.translate import Paths, ProxyConfig
from mesh.topology import Proxy


def _version(resources: Any) -> str:
    return hashlib.sha256(json.dumps(resources, sort_keys=True).encode()).hexdigest()[:16]


def _write_atomically(path: Path, document: Config) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".yaml")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        yaml.safe_dump(document, out, sort_keys=False)
    os.replace(tmp, path)


def _read_resources(path: Path) -> list[Config]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return []
    resources: list[Config] = loaded.get("resources", [])
    return resources


def _xds_file(resources: list[Config]) -> Config:
    return {"version_info": _version(resources), "resources": resources}


def write_proxy(paths: Paths, proxy: str, config: ProxyConfig) -> dict[str, str]:
    """Swap in a proxy's new config; returns the version of each route config written."""
    directory = paths.proxy_dir(proxy)
    cds = directory / "cds.yaml"
    new_names = {c["name"] for c in config.clusters}
    old = [c for c in _read_resources(cds) if c["name"] not in new_names]
    if old:  # phase 1: old and new clusters side by side while routes switch over
        _write_atomically(cds, _xds_file([*config.clusters, *old]))
    else:
        _write_atomically(cds, _xds_file(config.clusters))
    versions: dict[str, str] = {}
    for name, route in config.routes.items():
        versions[name] = _version(route)
        document = {"version_info": versions[name], "resources": [route]}
        _write_atomically(paths.route_dir(proxy) / route_file(name), document)
    _write_atomically(directory / "lds.yaml", _xds_file(config.listeners))
    if old:  # phase 2: drop the clusters nothing routes to any more
        _write_atomically(cds, _xds_file(config.clusters))
    return versions


def bootstrap(paths: Paths, proxy: Proxy, node_cluster: str, zipkin_port: int | None) -> Path:
    """The static part of a proxy: identity, admin on loopback, where its xDS files are."""
    directory = paths.proxy_dir(proxy.name)

    def source(file: str) -> Config:
        return {
            "path_config_source": {
                "path": str(directory / file),
                "watched_directory": {"path": str(directory)},
            },
            "resource_api_version": "V3",
        }

    static_clusters = []
    if zipkin_port is not None:
        static_clusters.append(
            {
                "name": ZIPKIN_CLUSTER,
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {
                    "cluster_name": ZIPKIN_CLUSTER,
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                        "socket_address": {"address": "127.0.0.1", "port_value": zipkin_port}
                    }}}]}],
                },
            }
        )  # fmt: skip
    document = {
        "node": {"id": f"{proxy.name}.{proxy.namespace}", "cluster": node_cluster},
        "admin": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": proxy.admin_port}}
        },
        "static_resources": {"clusters": static_clusters},
        # Latency histograms reach /stats every flush: 1 s keeps canary analysis current.
        "stats_flush_interval": "1s",
        "dynamic_resources": {"lds_config": source("lds.yaml"), "cds_config": source("cds.yaml")},
    }
    path = directory / "bootstrap.yaml"
    _write_atomically(path, document)
    return path
