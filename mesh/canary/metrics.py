"""Where the canary's numbers come from: the canary sidecars' Envoy stats (local mode) or
Prometheus' Istio metrics (kind), both as the destination side reports them."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Protocol

from prometheus_client.parser import text_string_to_metric_families

from mesh.canary.analysis import Snapshot
from mesh.envoy.listeners import INBOUND_STAT_PREFIX as INBOUND_PREFIX


class MetricsSource(Protocol):
    def snapshot(self) -> Snapshot: ...


def parse_envoy_inbound(text: str) -> Snapshot:
    """Counters and latency buckets of a sidecar's inbound listener from /stats/prometheus."""
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("envoy_http_conn_manager_prefix") != INBOUND_PREFIX:
                continue
            # The parser names counter samples with a `_total` suffix; Envoy's text has none.
            if sample.name in ("envoy_http_downstream_rq_xx", "envoy_http_downstream_rq_xx_total"):
                requests += sample.value
                if sample.labels.get("envoy_response_code_class") == "5":
                    errors += sample.value
            elif sample.name == "envoy_http_downstream_rq_time_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return Snapshot(requests, errors, buckets)


class EnvoyMetrics:
    """The sum over every sidecar of the canary version (each replica counts)."""

    def __init__(self, admin_urls: list[str]) -> None:
        if not admin_urls:
            raise ValueError("no running workload of the canary version")
        self.admin_urls = admin_urls

    def snapshot(self) -> Snapshot:
        total = Snapshot()
        for url in self.admin_urls:
            with urllib.request.urlopen(f"{url}/stats/prometheus", timeout=5) as resp:  # noqa: S310
                total = total + parse_envoy_inbound(resp.read().decode())
        return total


class PrometheusMetrics:
    """Istio's standard metrics for the canary workload, reporter="destination"."""

    def __init__(self, url: str, workload: str, namespace: str) -> None:
        self.url = url.rstrip("/")
        self.selector = (
            f'reporter="destination",destination_workload="{workload}",'
            f'destination_workload_namespace="{namespace}"'
        )

    def _query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        query = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=10) as resp:  # noqa: S310
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus query failed: {body.get('error', body)}")
        return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]

    def snapshot(self) -> Snapshot:
        def total(promql: str) -> float:
            return sum(value for _, value in self._query(promql))

        requests = total(f"sum(istio_requests_total{{{self.selector}}})")
        errors = total(f'sum(istio_requests_total{{{self.selector},response_code=~"5.."}})')
        buckets = {
            float(labels["le"]): value
            for labels, value in self._query(
                f"sum by (le) (istio_request_duration_milliseconds_bucket{{{self.selector}}})"
            )
        }
        return Snapshot(requests, errors, buckets)
