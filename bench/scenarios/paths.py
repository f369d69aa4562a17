"""The four ways to reach catalog-service's GET /catalogs in one shop, as Istio's perf harness
compares them: no proxy, the server's sidecar only, ingress + sidecar, sidecar + sidecar."""

from __future__ import annotations

from pathlib import Path

from bench.fortio import Target
from bench.shop import Shop

CATALOG = "catalog-service"


def app_direct(shop: Shop, service: str = CATALOG, path: str = "/catalogs",
               headers: tuple[str, ...] = (), payload: str | None = None) -> Target:  # fmt: skip
    """The app's own unix socket: what its sidecar talks to (no proxy at all)."""
    socket = Path(shop.workload(service)["app_socket"])
    return Target(f"http://{service}{path}", headers, unix_socket=socket, payload=payload)


def own_sidecar(shop: Shop) -> Target:
    """mTLS straight into catalog's sidecar, presenting order-service's workload certificate
    (a caller its AuthorizationPolicy admits): one proxy, the server side."""
    inbound = shop.workload(CATALOG)["sidecar_inbound"]
    return Target(f"https://{inbound}/catalogs", client_cert=shop.cert("order-service"))


def ingress(shop: Shop, path: str = "/catalog-service/catalogs",
            headers: tuple[str, ...] = (), payload: str | None = None) -> Target:  # fmt: skip
    """Through the ingress gateway, then mTLS to the sidecar: how users come in."""
    return Target(f"{shop.ingress}{path}", headers, payload=payload)


def sidecar_to_sidecar(shop: Shop) -> Target:
    """order-service's outbound listener for catalog-service, then mTLS to catalog's sidecar:
    Istio's two-proxy path for in-mesh calls."""
    outbound = shop.outbound("order-service", CATALOG)
    return Target(f"http://{outbound}/catalogs", ("Host: catalog-service:8080",))


PATHS = {
    "app": app_direct,
    "sidecar": own_sidecar,
    "ingress+sidecar": ingress,
    "sidecar+sidecar": sidecar_to_sidecar,
}
