"""Small shared pieces of Envoy v3 config: type URLs, names, durations, TLS contexts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from mesh.control.topology import SERVICE_PORT

Config = dict[str, Any]

T_CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
T_LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
T_ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
T_HCM = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    ".HttpConnectionManager"
)
T_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
T_FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
T_RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
T_JWT = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
T_DOWNSTREAM_TLS = (
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
)
T_UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
T_FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
T_ZIPKIN = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig"
T_PREVIOUS_HOSTS = (
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
)
T_PREVIOUS_PRIORITIES = (
    "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3."
    "PreviousPrioritiesConfig"
)
T_TLS_INSPECTOR = (
    "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
)
T_HTTP_PROTOCOL_OPTIONS = (
    "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

FAULT_FILTER = "envoy.filters.http.fault"
JWT_FILTER = "envoy.filters.http.jwt_authn"
JWT_PAYLOAD_KEY = "payload"  # as istiod names it (filters.EnvoyJwtFilterPayload)
ZIPKIN_CLUSTER = "zipkin"
UNLIMITED = 4294967295  # Istio's circuit-breaker default: effectively no limit

# meshConfig.pathNormalization, the same in both modes (cluster mode sets it in
# k8s/components/addons/istio-operator.yaml). DECODE_AND_MERGE_SLASHES is Istio's strictest
# option: no resource of the shop has an encoded slash or a double slash in its path, so
# nothing legitimate changes, and every spelling of a path reaches the policies as one.
PATH_NORMALIZATION = "DECODE_AND_MERGE_SLASHES"
# The HCM options istiod generates for each setting (listener_builder.go,
# buildHTTPConnectionManager); every HCM, sidecar or gateway, gets them.
HCM_PATH_NORMALIZATION: dict[str, Config] = {
    "NONE": {"normalize_path": False, "path_with_escaped_slashes_action": "KEEP_UNCHANGED"},
    "BASE": {"normalize_path": True, "path_with_escaped_slashes_action": "KEEP_UNCHANGED"},
    "MERGE_SLASHES": {
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
    },
    "DECODE_AND_MERGE_SLASHES": {
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "UNESCAPE_AND_FORWARD",
    },
}


def duration(value: timedelta) -> str:
    return f"{value.total_seconds():.3f}s"


def outbound_cluster(host: str, subset: str | None = None, port: int = SERVICE_PORT) -> str:
    """Istio's cluster naming, so stats and dashboards read the same in both modes."""
    return f"outbound|{port}|{subset or ''}|{host}"


def inbound_cluster(port: int = SERVICE_PORT) -> str:
    return f"inbound|{port}||"


@dataclass(frozen=True)
class CertPaths:
    """Where the local CA put the workload certificates (`<sa>.cert.pem`, `<sa>.key.pem`)."""

    directory: Path
    root: Path

    def tls_certificate(self, service_account: str) -> Config:
        return {
            "certificate_chain": {"filename": str(self.directory / f"{service_account}.cert.pem")},
            "private_key": {"filename": str(self.directory / f"{service_account}.key.pem")},
        }

    def trusted_ca(self) -> Config:
        return {"filename": str(self.root)}


def typed(type_url: str, **fields: Any) -> Config:
    return {"@type": type_url, **fields}
