"""The subset of the Istio API that local mode supports, as pydantic models.

`extra="forbid"` everywhere: a field outside the subset is an error naming its path, never
silently ignored. Field names are Istio's (camelCase). Defaults are Istio's.
"""

from __future__ import annotations

import re
from datetime import timedelta
from http import HTTPStatus
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(value: object) -> object:
    """Istio durations are protobuf strings such as `0.5s`, `250ms`, `1m`."""
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match is None:
            raise ValueError(f"{value!r} is not a duration like 1s, 500ms or 1m")
        return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Metadata(Strict):
    name: str
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


# --- networking.istio.io -----------------------------------------------------------------


class StringMatch(Strict):
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None


class HTTPMatchRequest(Strict):
    name: str | None = None
    uri: StringMatch | None = None
    method: StringMatch | None = None
    headers: dict[str, StringMatch] = Field(default_factory=dict)
    ignoreUriCase: bool = False


class PortSelector(Strict):
    number: int


class Destination(Strict):
    host: str
    subset: str | None = None
    port: PortSelector | None = None


class HTTPRouteDestination(Strict):
    destination: Destination
    weight: int | None = Field(default=None, ge=0, le=100)


class HTTPRewrite(Strict):
    uri: str | None = None


# Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on policies, as istio's validation lists
# them (pkg/config/validation supportedRetryOnPolicies); an HTTP status code is valid too.
RETRY_ON_POLICIES = frozenset({
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx",
    "refused-stream", "retriable-status-codes", "retriable-headers", "envoy-ratelimited",
    "http3-post-connect-failure", "cancelled", "deadline-exceeded", "internal",
    "resource-exhausted", "unavailable",
})  # fmt: skip


def _is_status_code(value: str) -> bool:
    try:
        HTTPStatus(int(value))
    except ValueError:
        return False
    return True


class HTTPRetry(Strict):
    attempts: int = Field(ge=0)
    perTryTimeout: Duration | None = None
    retryOn: str | None = None

    @model_validator(mode="after")
    def _as_istio_validates(self) -> HTTPRetry:
        """validateHTTPRetry: no policy on disabled retries, and only policies Envoy knows
        (Envoy silently ignores an unknown one)."""
        if self.attempts == 0 and (self.perTryTimeout is not None or self.retryOn):
            raise ValueError("http retry policy configured when attempts are set to 0 (disabled)")
        for policy in (self.retryOn or "").split(",") if self.retryOn else []:
            if policy not in RETRY_ON_POLICIES and not _is_status_code(policy):
                raise ValueError(f"{policy!r} is not a valid retryOn policy")
        return self


class Percent(Strict):
    value: float = Field(ge=0, le=100)


class Delay(Strict):
    fixedDelay: Duration
    percentage: Percent | None = None


class Abort(Strict):
    httpStatus: int = Field(ge=200, le=599)
    percentage: Percent | None = None


class HTTPFaultInjection(Strict):
    delay: Delay | None = None
    abort: Abort | None = None

    @model_validator(mode="after")
    def _as_istio_validates(self) -> HTTPFaultInjection:
        """validateHTTPFaultInjection: a fault injects something."""
        if self.delay is None and self.abort is None:
            raise ValueError("HTTP fault injection must have an abort and/or a delay")
        return self


class HTTPRoute(Strict):
    name: str | None = None
    match: list[HTTPMatchRequest] = Field(default_factory=list)
    route: list[HTTPRouteDestination] = Field(min_length=1)
    rewrite: HTTPRewrite | None = None
    timeout: Duration | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None


class VirtualServiceSpec(Strict):
    hosts: list[str] = Field(min_length=1)
    gateways: list[str] = Field(default_factory=list)
    http: list[HTTPRoute] = Field(min_length=1)


class TCPSettings(Strict):
    maxConnections: int | None = Field(default=None, ge=1)
    connectTimeout: Duration | None = None


class HTTPSettings(Strict):
    http1MaxPendingRequests: int | None = Field(default=None, ge=1)
    http2MaxRequests: int | None = Field(default=None, ge=1)
    maxRequestsPerConnection: int | None = Field(default=None, ge=0)
    maxRetries: int | None = Field(default=None, ge=0)


class ConnectionPoolSettings(Strict):
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


class OutlierDetection(Strict):
    consecutive5xxErrors: int | None = Field(default=None, ge=0)
    consecutiveGatewayErrors: int | None = Field(default=None, ge=0)
    interval: Duration | None = None
    baseEjectionTime: Duration | None = None
    maxEjectionPercent: int | None = Field(default=None, ge=0, le=100)


class LoadBalancerSettings(Strict):
    simple: Literal["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "UNSPECIFIED"]


class ClientTLSSettings(Strict):
    mode: Literal["ISTIO_MUTUAL", "DISABLE"]


class TrafficPolicy(Strict):
    connectionPool: ConnectionPoolSettings | None = None
    outlierDetection: OutlierDetection | None = None
    loadBalancer: LoadBalancerSettings | None = None
    tls: ClientTLSSettings | None = None


class Subset(Strict):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    trafficPolicy: TrafficPolicy | None = None


class DestinationRuleSpec(Strict):
    host: str
    trafficPolicy: TrafficPolicy | None = None
    subsets: list[Subset] = Field(default_factory=list)


class ServerPort(Strict):
    number: int
    name: str
    protocol: Literal["HTTP"]


class Server(Strict):
    port: ServerPort
    hosts: list[str] = Field(min_length=1)


class GatewaySpec(Strict):
    selector: dict[str, str]
    servers: list[Server] = Field(min_length=1)


# --- security.istio.io -------------------------------------------------------------------


class WorkloadSelector(Strict):
    matchLabels: dict[str, str] = Field(default_factory=dict)


class PeerAuthenticationMTLS(Strict):
    mode: Literal["STRICT", "PERMISSIVE", "UNSET"] = "UNSET"


class PeerAuthenticationSpec(Strict):
    selector: WorkloadSelector | None = None
    mtls: PeerAuthenticationMTLS | None = None


class JWTRule(Strict):
    issuer: str
    jwksUri: str
    forwardOriginalToken: bool = False
    # The verified payload, base64url, in this request header for the app (Envoy's
    # forward_payload_header); jwt_authn removes any client-sent value of it first.
    outputPayloadToHeader: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]+$")


class RequestAuthenticationSpec(Strict):
    selector: WorkloadSelector | None = None
    jwtRules: list[JWTRule] = Field(min_length=1)


class Source(Strict):
    principals: list[str] = Field(default_factory=list)
    notPrincipals: list[str] = Field(default_factory=list)
    requestPrincipals: list[str] = Field(default_factory=list)
    notRequestPrincipals: list[str] = Field(default_factory=list)


class From(Strict):
    source: Source


class Operation(Strict):
    methods: list[str] = Field(default_factory=list)
    notMethods: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list)
    notPaths: list[str] = Field(default_factory=list)


class To(Strict):
    operation: Operation


class Rule(Strict):
    from_: list[From] = Field(default_factory=list, alias="from")
    to: list[To] = Field(default_factory=list)


class AuthorizationPolicySpec(Strict):
    selector: WorkloadSelector | None = None
    action: Literal["ALLOW", "DENY"] = "ALLOW"
    rules: list[Rule] = Field(default_factory=list)


# --- resources ---------------------------------------------------------------------------


class Resource(Strict):
    apiVersion: str
    kind: str
    metadata: Metadata


class VirtualService(Resource):
    kind: Literal["VirtualService"]
    spec: VirtualServiceSpec


class DestinationRule(Resource):
    kind: Literal["DestinationRule"]
    spec: DestinationRuleSpec


class Gateway(Resource):
    kind: Literal["Gateway"]
    spec: GatewaySpec


class PeerAuthentication(Resource):
    kind: Literal["PeerAuthentication"]
    spec: PeerAuthenticationSpec = Field(default_factory=PeerAuthenticationSpec)


class RequestAuthentication(Resource):
    kind: Literal["RequestAuthentication"]
    spec: RequestAuthenticationSpec


class AuthorizationPolicy(Resource):
    kind: Literal["AuthorizationPolicy"]
    spec: AuthorizationPolicySpec = Field(default_factory=AuthorizationPolicySpec)


IstioResource = (
    VirtualService
    | DestinationRule
    | Gateway
    | PeerAuthentication
    | RequestAuthentication
    | AuthorizationPolicy
)
KINDS: dict[str, tuple[tuple[str, ...], type[Resource]]] = {
    "VirtualService": (("networking.istio.io/v1", "networking.istio.io/v1beta1"), VirtualService),
    "DestinationRule": (("networking.istio.io/v1", "networking.istio.io/v1beta1"), DestinationRule),
    "Gateway": (("networking.istio.io/v1", "networking.istio.io/v1beta1"), Gateway),
    "PeerAuthentication": (
        ("security.istio.io/v1", "security.istio.io/v1beta1"),
        PeerAuthentication,
    ),
    "RequestAuthentication": (
        ("security.istio.io/v1", "security.istio.io/v1beta1"),
        RequestAuthentication,
    ),
    "AuthorizationPolicy": (
        ("security.istio.io/v1", "security.istio.io/v1beta1"),
        AuthorizationPolicy,
    ),
}
