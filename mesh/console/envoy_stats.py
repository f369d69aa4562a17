"""One Envoy's figures, read off its admin API: counters, p99s and per-endpoint counters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

# The HTTP connection managers (outbound_<service>, gateway_<port>, inbound) and the
# outbound clusters: everything the graph draws, nothing else (a sidecar has ~2,000 stats).
STATS_FILTER = r"^(http\.(outbound|gateway|inbound)|cluster\.outbound\|)"
ENDPOINT_COUNTERS = ("rq_total", "rq_error", "rq_success", "rq_timeout")


@dataclass(frozen=True)
class EnvoySnapshot:
    at: float
    counters: dict[str, int] = field(default_factory=dict)
    # histogram -> p99 in ms over Envoy's last flush interval (None: no request in it)
    p99_ms: dict[str, float | None] = field(default_factory=dict)
    # (cluster, "127.0.0.1:port") -> the endpoint's counters
    endpoints: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)


def parse_stats(document: dict[str, Any]) -> tuple[dict[str, int], dict[str, float | None]]:
    """`/stats?format=json`: counters and gauges by name, each histogram's interval p99."""
    counters: dict[str, int] = {}
    p99: dict[str, float | None] = {}
    for entry in document.get("stats", []):
        if "histograms" in entry:
            histograms = entry["histograms"]
            quantiles = histograms.get("supported_quantiles", [])
            at = quantiles.index(99) if 99 in quantiles else None
            for item in histograms.get("computed_quantiles", []):
                values = item.get("values", [])
                value = values[at].get("interval") if at is not None and values else None
                p99[item["name"]] = None if value is None else float(value)
        elif isinstance(entry.get("value"), int | float):
            counters[entry["name"]] = int(entry["value"])
    return counters, p99


def parse_clusters(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, int]]:
    """`/clusters?format=json`: each endpoint's request counters (proto3 JSON omits zeros)."""
    endpoints: dict[tuple[str, str], dict[str, int]] = {}
    for cluster in document.get("cluster_statuses", []):
        for host in cluster.get("host_statuses", []):
            socket = host.get("address", {}).get("socket_address", {})
            if "port_value" not in socket:
                continue  # a unix socket: the inbound cluster to the app
            address = f"{socket.get('address')}:{socket['port_value']}"
            stats = {s["name"]: int(s.get("value", 0)) for s in host.get("stats", [])}
            endpoints[(cluster["name"], address)] = {k: stats.get(k, 0) for k in ENDPOINT_COUNTERS}
    return endpoints


async def read_envoy(session: aiohttp.ClientSession, admin_port: int) -> EnvoySnapshot:
    """Both documents from one proxy; aiohttp.ClientError or TimeoutError if it is down."""
    base = f"http://127.0.0.1:{admin_port}"
    params = {"format": "json", "usedonly": "", "filter": STATS_FILTER}
    async with session.get(f"{base}/stats", params=params) as response:
        response.raise_for_status()
        counters, p99 = parse_stats(await response.json(content_type=None))
    async with session.get(f"{base}/clusters", params={"format": "json"}) as response:
        response.raise_for_status()
        endpoints = parse_clusters(await response.json(content_type=None))
    return EnvoySnapshot(time.monotonic(), counters, p99, endpoints)
