"""Scenario 5, last option: HTTP/1.1 keep-alive vs HTTP/2 between proxies, on one shop.

The same shop serves both: istio/destination-rule-all-http1.yaml (h2UpgradePolicy:
DO_NOT_UPGRADE, Istio's mesh default) applied live, as a user would, then the default rules
(istio/destination-rule-all-mtls.yaml: UPGRADE, chosen from these numbers), which stay.
Three paths where the upstream protocol differs: the ingress to catalog's sidecar, order's
sidecar to catalog's sidecar (Istio's two-proxy path), and GET /users/{id}, whose fan-out
crosses two such hops.
"""

from __future__ import annotations

from typing import Any

from bench.fortio import Target, load
from bench.plan import Plan
from bench.sampler import sampling
from bench.scenarios.paths import CATALOG, ingress, sidecar_to_sidecar
from bench.shop import Shop
from bench.shopper import sign_up
from mesh.envoy.process import stats

DEFAULT_RULES = "istio/destination-rule-all-mtls.yaml"
HTTP1, HTTP2 = "HTTP/1.1 (DO_NOT_UPGRADE)", "HTTP/2 (UPGRADE, the default)"
PROTOCOLS = {HTTP1: "istio/destination-rule-all-http1.yaml", HTTP2: DEFAULT_RULES}
FIXED_RATE = 500  # rps of the latency runs (at most): below every path's saturation here


def _targets(shop: Shop) -> dict[str, Target]:
    reader = sign_up(shop.ingress)
    return {
        "GET /catalogs ingress+sidecar": ingress(shop),
        "GET /catalogs sidecar+sidecar": sidecar_to_sidecar(shop),
        "GET /users/{id} ingress (fan-out)": ingress(
            shop, f"/user-service/users/{reader.user_id}", (reader.bearer,)
        ),
    }


def _measure(shop: Shop, plan: Plan, target: Target) -> dict[str, Any]:
    load(target, qps=0, seconds=1, connections=plan.max_connections)  # new connections, warm
    with sampling(shop.kinds()) as window:
        most = load(target, qps=0, seconds=plan.max_seconds, connections=plan.max_connections)
    rate = min(FIXED_RATE, max(plan.rates))
    fixed = load(target, qps=rate, seconds=plan.fixed_seconds, connections=plan.connections)
    return {
        "max": {**most.as_dict(), "usage": window.as_dict(most.actual_qps)},
        "fixed": {"rate": rate, **fixed.as_dict()},
    }


def _http2_streams_into_catalog(shop: Shop) -> int:
    """Requests catalog's sidecar received as HTTP/2 streams: proof of which protocol ran."""
    admin = int(shop.workload(CATALOG)["sidecar_admin_url"].rsplit(":", 1)[1])
    return sum(stats(admin, r"http\.inbound_8080\.downstream_rq_http2_total$").values())


def run(shop: Shop, plan: Plan) -> dict[str, Any]:
    targets = _targets(shop)
    out: dict[str, Any] = {}
    try:
        for label, rules in PROTOCOLS.items():
            shop.apply(rules)
            before = _http2_streams_into_catalog(shop)
            paths = {}
            for path, target in targets.items():
                print(f"  protocol: {label}, {path}", flush=True)
                paths[path] = _measure(shop, plan, target)
            streams = _http2_streams_into_catalog(shop) - before
            out[label] = {"paths": paths, "http2_streams_into_catalog": streams}
    finally:
        shop.apply(DEFAULT_RULES)
    return out
