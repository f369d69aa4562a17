"""Listeners: a sidecar's inbound (mTLS, RBAC) and outbound ones, and the ingress gateway's."""

from __future__ import annotations

from pathlib import Path

from mesh.envoy.common import (
    FAULT_FILTER,
    HCM_PATH_NORMALIZATION,
    PATH_NORMALIZATION,
    T_DOWNSTREAM_TLS,
    T_FAULT,
    T_FILE_LOG,
    T_HCM,
    T_LISTENER,
    T_ROUTER,
    T_TLS_INSPECTOR,
    T_ZIPKIN,
    ZIPKIN_CLUSTER,
    CertPaths,
    Config,
    inbound_cluster,
    typed,
)
from mesh.envoy.route_options import CORS_FILTER, T_CORS

# Stat prefixes without dots: Envoy splits stat names at dots when it extracts Prometheus
# labels, so `inbound_0.0.0.0_8080` would come out as a label value of `inbound_0`.
INBOUND_STAT_PREFIX = "inbound_8080"
ROUTER = {"name": "envoy.filters.http.router", "typed_config": typed(T_ROUTER)}
# Present but empty so routes can carry their own fault config (typed_per_filter_config).
FAULT = {"name": FAULT_FILTER, "typed_config": typed(T_FAULT)}
# Likewise for routes' corsPolicy; istiod's order: ..., fault, cors, router.
CORS = {"name": CORS_FILTER, "typed_config": typed(T_CORS)}


def _access_log(path: Path) -> list[Config]:
    return [
        {
            "name": "envoy.access_loggers.file",
            "typed_config": typed(
                T_FILE_LOG,
                path=str(path),
                log_format={
                    "text_format_source": {
                        "inline_string": (
                            '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% '
                            '%PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %DURATION%ms '
                            '"%UPSTREAM_CLUSTER%" "%UPSTREAM_HOST%" "%REQ(X-REQUEST-ID)%" '
                            '"%DOWNSTREAM_PEER_URI_SAN%"\n'
                        )
                    }
                },
            ),
        }
    ]


def _tracing(sampling: float | None) -> Config | None:
    """Zipkin tracing at `sampling` percent of the requests this proxy starts a trace for
    (istiod's random_sampling from Telemetry randomSamplingPercentage; None: no tracing)."""
    if sampling is None:
        return None
    return {
        "provider": {
            "name": "envoy.tracers.zipkin",
            "typed_config": typed(
                T_ZIPKIN,
                collector_cluster=ZIPKIN_CLUSTER,
                collector_endpoint="/api/v2/spans",
                collector_endpoint_version="HTTP_JSON",
                shared_span_context=False,
            ),
        },
        "random_sampling": {"value": sampling},
    }


def http_connection_manager(
    stat_prefix: str,
    *,
    route_name: str | None,
    route_dir: Path | None,
    inline_route: Config | None = None,
    filters: list[Config],
    access_log: Path,
    sampling: float | None,
    inbound: bool = False,
    gateway: bool = False,
) -> Config:
    hcm = typed(
        T_HCM,
        stat_prefix=stat_prefix,
        http_filters=[*filters, FAULT, CORS, ROUTER],
        access_log=_access_log(access_log),
        generate_request_id=True,
        # Istio's sidecars keep the caller's x-request-id so one id follows the whole call tree.
        preserve_external_request_id=True,
        # Only the edge takes the peer's address as the client's (istiod: gateways true,
        # sidecar inbound and outbound false); checked against istiod in tests/conformance.
        use_remote_address=gateway,
        # One spelling per path before any filter (RBAC, jwt_authn) or route sees it.
        **HCM_PATH_NORMALIZATION[PATH_NORMALIZATION],
    )
    if route_name is not None and route_dir is not None:
        hcm["rds"] = {
            "route_config_name": route_name,
            "config_source": {
                "path_config_source": {
                    "path": str(route_dir / f"{route_file(route_name)}"),
                    "watched_directory": {"path": str(route_dir)},
                },
                "resource_api_version": "V3",
            },
        }
    else:
        hcm["route_config"] = inline_route
    if inbound:
        # The app learns who called it: the caller's SPIFFE ID in x-forwarded-client-cert.
        hcm["forward_client_cert_details"] = "SANITIZE_SET"
        hcm["set_current_client_cert_details"] = {"uri": True}
    if gateway:
        # As istiod sets it on gateways (buildGatewayConnectionManager): a client's own
        # x-forwarded-client-cert never reaches the mesh.
        hcm["forward_client_cert_details"] = "SANITIZE_SET"
        hcm["set_current_client_cert_details"] = {
            "subject": True, "cert": True, "dns": True, "uri": True,
        }  # fmt: skip
    if (tracing := _tracing(sampling)) is not None:
        hcm["tracing"] = tracing
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}


def route_file(route_name: str) -> str:
    """A file name for a route configuration (cluster-style names contain `|`)."""
    return route_name.replace("|", "_") + ".yaml"


def _listener(name: str, port: int, filter_chains: list[Config], **extra: object) -> Config:
    return typed(
        T_LISTENER,
        name=name,
        address={"socket_address": {"address": "127.0.0.1", "port_value": port}},
        filter_chains=filter_chains,
        **extra,
    )


def inbound_listener(
    port: int,
    *,
    mode: str,
    service_account: str,
    certs: CertPaths,
    filters: list[Config],
    access_log: Path,
    sampling: float | None,
) -> Config:
    """mTLS-terminating listener in front of the app; PERMISSIVE also takes plaintext."""
    route = {
        "name": "inbound",
        "virtual_hosts": [
            {
                "name": "inbound",
                "domains": ["*"],
                "routes": [
                    {"match": {"prefix": "/"},
                     "route": {"cluster": inbound_cluster(), "timeout": "0s"},
                     "decorator": {"operation": "inbound"}}
                ],
            }
        ],
    }  # fmt: skip

    def hcm() -> Config:
        return http_connection_manager(
            INBOUND_STAT_PREFIX,
            route_name=None,
            route_dir=None,
            inline_route=route,
            filters=filters,
            access_log=access_log,
            sampling=sampling,
            inbound=True,
        )

    tls = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": typed(
            T_DOWNSTREAM_TLS,
            require_client_certificate=True,
            common_tls_context={
                "tls_certificates": [certs.tls_certificate(service_account)],
                "validation_context": {"trusted_ca": certs.trusted_ca()},
            },
        ),
    }
    if mode == "STRICT":
        return _listener("virtualInbound", port, [{"transport_socket": tls, "filters": [hcm()]}])
    chains: list[Config] = [
        {"filter_chain_match": {"transport_protocol": "tls"}, "transport_socket": tls,
         "filters": [hcm()]},
        {"filter_chain_match": {"transport_protocol": "raw_buffer"}, "filters": [hcm()]},
    ]  # fmt: skip
    inspector = {
        "name": "envoy.filters.listener.tls_inspector",
        "typed_config": typed(T_TLS_INSPECTOR),
    }
    return _listener("virtualInbound", port, chains, listener_filters=[inspector])


def outbound_listener(
    host: str, port: int, route_name: str, route_dir: Path, access_log: Path, sampling: float | None
) -> Config:
    """Where the app calls `host`: plaintext on loopback, routed by the host's VirtualService."""
    hcm = http_connection_manager(
        f"outbound_{host.split('.')[0]}",
        route_name=route_name,
        route_dir=route_dir,
        filters=[],
        access_log=access_log,
        sampling=sampling,
    )
    return _listener(f"outbound_{host}", port, [{"filters": [hcm]}])


def gateway_listener(
    port: int,
    route_name: str,
    route_dir: Path,
    filters: list[Config],
    access_log: Path,
    sampling: float | None,
) -> Config:
    hcm = http_connection_manager(
        f"gateway_{port}",
        route_name=route_name,
        route_dir=route_dir,
        filters=filters,
        access_log=access_log,
        sampling=sampling,
        gateway=True,
    )
    return _listener(f"0.0.0.0_{port}", port, [{"filters": [hcm]}])
