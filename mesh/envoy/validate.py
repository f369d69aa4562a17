"""Envoy's own verdict on generated config before any file is written: `envoy --mode validate`.

Validate mode reads no path-based xDS file (a bootstrap pointing at a broken lds.yaml validates
as OK), so each proxy is checked as a bootstrap with its listeners and clusters as static
resources and every RDS reference replaced by the route configuration it names. Static
resources get Envoy's strict parsing (unknown fields are errors), at least as strict as the
live proxies' `--reject-unknown-dynamic-fields`. The proxies go to one Envoy together; when it
refuses, each goes to its own (in parallel) so the refusal names the proxy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mesh.envoy.common import T_CLUSTER, T_LISTENER, T_ROUTE, Config
from mesh.envoy.process import envoy_binary
from mesh.envoy.translate import ProxyConfig

_REFUSED = re.compile(r"error initializing configuration '[^']*': ")
TIMEOUT = 60.0


def _static(resource: Config, type_url: str) -> Config:
    """A static resource is the message itself: no `@type` as an xDS resource carries."""
    got = resource.get("@type", type_url)
    if got != type_url:
        raise ValueError(f"{resource.get('name')!r} is a {got}, not a {type_url}")
    return {k: v for k, v in resource.items() if k != "@type"}


def _inline_routes(node: Any, routes: dict[str, Config]) -> Any:
    if isinstance(node, list):
        return [_inline_routes(item, routes) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _inline_routes(v, routes) for k, v in node.items() if k != "rds"}
    if isinstance(node.get("rds"), dict) and "route_config_name" in node["rds"]:
        name = node["rds"]["route_config_name"]
        if name not in routes:
            raise ValueError(f"a listener routes by {name!r}, which is not generated")
        out["route_config"] = _static(routes[name], T_ROUTE)
    return out


_NOT_VALIDATED = ("admin", "dynamic_resources")  # the live proxy's, not part of the check


def validation_bootstrap(bootstrap: Config, config: ProxyConfig) -> Config:
    """The proxy's bootstrap with its xDS resources made static; no admin, nothing dynamic."""
    static = bootstrap.get("static_resources", {})
    return {
        **{k: v for k, v in bootstrap.items() if k not in _NOT_VALIDATED},
        "static_resources": {
            "clusters": [*static.get("clusters", []),
                         *(_static(c, T_CLUSTER) for c in config.clusters)],
            "listeners": [_inline_routes(_static(listener, T_LISTENER), config.routes)
                          for listener in config.listeners],
        },
    }  # fmt: skip


def _envoy_validate(path: Path) -> str | None:
    argv = [
        str(envoy_binary()), "--mode", "validate", "-c", str(path),
        "--disable-hot-restart", "--reject-unknown-dynamic-fields", "--concurrency", "1",
        "--log-level", "critical", "--log-format", "%v",
    ]  # fmt: skip
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return f"envoy --mode validate did not finish within {TIMEOUT:.0f}s"
    if done.returncode == 0:
        return None
    said = done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}"
    return _REFUSED.sub("", said, count=1).strip()


# Where one proxy's config names its own clusters (routes, jwt_authn's JWKS, endpoints).
_CLUSTER_REFERENCES = ("cluster", "cluster_name", "collector_cluster")


def _renamed(node: Any, names: set[str], prefix: str) -> Any:
    if isinstance(node, list):
        return [_renamed(item, names, prefix) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _renamed(v, names, prefix) for k, v in node.items()}
    for key in _CLUSTER_REFERENCES:
        if isinstance(out.get(key), str) and out[key] in names:
            out[key] = prefix + out[key]
    if isinstance(out.get("weighted_clusters"), dict):
        weighted = out["weighted_clusters"]
        weighted["clusters"] = [
            {**c, "name": prefix + c["name"]} if c.get("name") in names else c
            for c in weighted.get("clusters", [])
        ]
    return out


def _together(bootstraps: dict[str, Config], documents: dict[str, Config]) -> Config | None:
    """Every proxy in one bootstrap, each one's names prefixed with `<proxy>~`, so one Envoy
    validates them all (each Envoy start costs ~0.2 s). None if the bootstraps differ in more
    than what each proxy has its own of: then each proxy is validated on its own."""

    def common(bootstrap: Config) -> Config:
        return {k: v for k, v in bootstrap.items() if k not in (*_NOT_VALIDATED, "node")}

    first, *others = (common(bootstraps[proxy]) for proxy in documents)
    if any(other != first for other in others):
        return None
    shared = first.get("static_resources", {}).get("clusters", [])
    clusters, listeners = list(shared), []
    for proxy, document in documents.items():
        static = document["static_resources"]
        own = static["clusters"][len(shared) :]
        names, prefix = {c["name"] for c in own}, f"{proxy}~"
        clusters += [{**_renamed(c, names, prefix), "name": prefix + c["name"]} for c in own]
        listeners += [
            {**_renamed(lsn, names, prefix), "name": prefix + lsn["name"]}
            for lsn in static["listeners"]
        ]
    together = next(iter(documents.values()))
    return {**together, "static_resources": {"clusters": clusters, "listeners": listeners}}


def _verdicts(documents: dict[str, Config], tmp: Path) -> dict[str, str | None]:
    """Envoy's verdict on each document, several Envoys at a time."""
    files = {}
    for name, document in documents.items():
        files[name] = tmp / f"{name}.json"
        files[name].write_text(json.dumps(document), encoding="utf-8")
    workers = max(1, min(len(files), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(files, pool.map(_envoy_validate, files.values()), strict=True))


def refusals(bootstraps: dict[str, Config], configs: dict[str, ProxyConfig]) -> dict[str, str]:
    """What Envoy says about each proxy's config it would refuse, keyed by proxy.

    All proxies go to one Envoy first; only if it refuses (or cannot take them together) is
    each proxy validated alone, so the refusal names the proxies it is about.
    """
    found: dict[str, str] = {}
    documents: dict[str, Config] = {}
    for proxy, config in configs.items():
        try:
            documents[proxy] = validation_bootstrap(bootstraps[proxy], config)
        except ValueError as exc:
            found[proxy] = str(exc)
    with tempfile.TemporaryDirectory(prefix="meshmart-validate-") as tmp:
        together = _together(bootstraps, documents) if len(documents) > 1 else None
        if together is not None and _verdicts({"~all": together}, Path(tmp))["~all"] is None:
            return found
        verdicts = _verdicts(documents, Path(tmp))
    found.update({proxy: said for proxy, said in verdicts.items() if said is not None})
    return found
