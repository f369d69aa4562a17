"""Envoy's file-based xDS: bootstrap, and atomic swaps of LDS/CDS/RDS files.

Envoy's filesystem subscription watches the directory with inotify and reloads a file only
when one is moved over it (a rename, IN_MOVED_TO; writing in place is not noticed), so every
write goes to a temp file in the same directory and is then renamed. Clusters are written as
the union of old and new first, so a route never points at a cluster that does not exist yet:
an apply drops no request. `read_proxy` reads back what is on disk, so a refused apply can
put it back with the same `write_proxy`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mesh.control.topology import Proxy
from mesh.envoy.common import ZIPKIN_CLUSTER, Config
from mesh.envoy.listeners import route_file
from mesh.envoy.translate import Paths, ProxyConfig

# libyaml when PyYAML has it: a sidecar's lds.yaml takes ~0.15 s with the pure-Python loader.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _version(resources: Any) -> str:
    return hashlib.sha256(json.dumps(resources, sort_keys=True).encode()).hexdigest()[:16]


def _write_atomically(path: Path, document: Config) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".yaml")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        yaml.dump(document, out, Dumper=_DUMPER, sort_keys=False)
    os.replace(tmp, path)


def _read_resources(path: Path) -> list[Config]:
    try:
        loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}  # noqa: S506
    except FileNotFoundError:
        return []
    resources: list[Config] = loaded.get("resources", [])
    return resources


def _xds_file(resources: list[Config]) -> Config:
    return {"version_info": _version(resources), "resources": resources}


@dataclass(frozen=True)
class Versions:
    """The version_info of a proxy's files: what its Envoy reports once it has taken them."""

    lds: str
    cds: str
    routes: dict[str, str]


def versions(config: ProxyConfig) -> Versions:
    routes = {name: _version(route) for name, route in config.routes.items()}
    return Versions(_version(config.listeners), _version(config.clusters), routes)


def read_proxy(paths: Paths, proxy: str) -> ProxyConfig:
    """The config on disk (what the proxy runs, unless it refused it); empty before any write."""
    directory = paths.proxy_dir(proxy)
    routes = {}
    for file in sorted(paths.route_dir(proxy).glob("*.yaml")):
        for route in _read_resources(file):
            routes[route["name"]] = route
    return ProxyConfig(
        listeners=_read_resources(directory / "lds.yaml"),
        clusters=_read_resources(directory / "cds.yaml"),
        routes=routes,
    )


def write_proxy(paths: Paths, proxy: str, config: ProxyConfig) -> Versions:
    """Swap in a proxy's new config; returns the versions Envoy will report once it took it."""
    directory = paths.proxy_dir(proxy)
    cds = directory / "cds.yaml"
    new_names = {c["name"] for c in config.clusters}
    old = [c for c in _read_resources(cds) if c["name"] not in new_names]
    if old:  # phase 1: old and new clusters side by side while routes switch over
        _write_atomically(cds, _xds_file([*config.clusters, *old]))
    else:
        _write_atomically(cds, _xds_file(config.clusters))
    for name, route in config.routes.items():
        document = {"version_info": _version(route), "resources": [route]}
        _write_atomically(paths.route_dir(proxy) / route_file(name), document)
    _write_atomically(directory / "lds.yaml", _xds_file(config.listeners))
    if old:  # phase 2: drop the clusters nothing routes to any more
        _write_atomically(cds, _xds_file(config.clusters))
    return versions(config)


# The runtime defaults pilot-agent gives every Envoy (pkg/bootstrap/config.go
# extractRuntimeFlags); notably regexes up to RE2 program size 32768 (Envoy's default: 100),
# which is what istio's validation (1024 characters) assumes.
ISTIO_RUNTIME_FLAGS: Config = {
    "re2.max_program_size.error_level": "32768",
    "envoy.deprecated_features:envoy.config.listener.v3.Listener.hidden_envoy_deprecated_use_original_dst": True,  # noqa: E501
    "envoy.reloadable_features.http_reject_path_with_fragment": False,
    "envoy.reloadable_features.fixed_heap_use_allocated": True,
    "envoy.reloadable_features.coalesce_lb_rebuilds_on_batch_update": False,
}


def bootstrap(paths: Paths, proxy: Proxy, node_cluster: str, zipkin_port: int | None) -> Path:
    """Write the proxy's bootstrap.yaml, the file Envoy is started with."""
    path = paths.proxy_dir(proxy.name) / "bootstrap.yaml"
    _write_atomically(path, bootstrap_document(paths, proxy, node_cluster, zipkin_port))
    return path


def bootstrap_document(
    paths: Paths, proxy: Proxy, node_cluster: str, zipkin_port: int | None
) -> Config:
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
        "layered_runtime": {
            "layers": [
                {"name": "global config", "static_layer": ISTIO_RUNTIME_FLAGS},
                {"name": "admin", "admin_layer": {}},
            ]
        },
    }
    return document
