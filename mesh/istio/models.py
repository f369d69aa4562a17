"""The subset of the Istio API that local mode supports, as pydantic models.

`extra="forbid"` everywhere: a field outside the subset is an error naming its path, never
silently ignored. Field names are Istio's (camelCase). Defaults are Istio's.
"""

from __future__ import annotations

import re
from datetime import timedelta
from http import HTTPStatus
from typing import Annotated, Literal

import re2
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from mesh.istio.hosts import overlap

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


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the refusal carries the message; no absl line on stderr


def valid_regex(regex: str) -> None:
    """validateStringRegexp: RE2 syntax (Envoy's engine; Go's regexp in istio's validation),
    at most 1024 characters."""
    if not regex:
        raise ValueError("regex string match should not be empty")
    if len(regex) > 1024:
        raise ValueError("regex is too large, max length allowed is 1024")
    try:
        re2.compile(regex, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(f"{regex!r} is not a valid RE2 regex: {reason}") from None


class StringMatch(Strict):
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> StringMatch:
        """A protobuf oneof: istio cannot even decode a match with two kinds."""
        if sum(v is not None for v in (self.exact, self.prefix, self.regex)) > 1:
            raise ValueError("set only one of exact, prefix or regex")
        if self.regex is not None:
            valid_regex(self.regex)
        return self


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


class HeaderOperations(Strict):
    set: dict[str, str] = Field(default_factory=dict)
    add: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _as_istio_validates(self) -> HeaderOperations:
        for name, value in (*self.set.items(), *self.add.items()):
            if name.lower() in (":authority", "host"):
                raise ValueError(f"{name}: rewriting the authority is not supported in local mode")
            if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
                raise ValueError(f"header value configuration {value} is invalid")
            if "%" in value.replace("%%", ""):
                raise ValueError(f"{name}: Envoy's %COMMAND% header values are not supported")
        for name in (*self.set, *self.add, *self.remove):
            if not name:
                raise ValueError("header name cannot be empty")
            if name.startswith(":") and name.lower() != ":authority":
                raise ValueError(f'invalid header "{name}": header cannot have ":" prefix')
        return self


def _no_host(names: list[str]) -> None:
    """ValidateHTTPHeaderOperationName: Host may be set on requests only, never removed."""
    for name in names:
        if name.lower() == "host":
            raise ValueError(f'invalid header "{name}": cannot set Host header')


class Headers(Strict):
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None

    @model_validator(mode="after")
    def _as_istio_validates(self) -> Headers:
        if self.request is not None:
            _no_host(self.request.remove)
        if self.response is not None:
            _no_host([*self.response.set, *self.response.add, *self.response.remove])
        return self


class HTTPRouteDestination(Strict):
    destination: Destination
    weight: int | None = Field(default=None, ge=0)
    headers: Headers | None = None


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
    retryRemoteLocalities: bool | None = None

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


class CorsPolicy(Strict):
    allowOrigins: list[StringMatch] = Field(default_factory=list)
    allowMethods: list[str] = Field(default_factory=list)
    allowHeaders: list[str] = Field(default_factory=list)
    exposeHeaders: list[str] = Field(default_factory=list)
    maxAge: Duration | None = None
    allowCredentials: bool | None = None
    unmatchedPreflights: Literal["UNSPECIFIED", "FORWARD", "IGNORE"] = "UNSPECIFIED"


class HTTPRoute(Strict):
    name: str | None = None
    match: list[HTTPMatchRequest] = Field(default_factory=list)
    route: list[HTTPRouteDestination] = Field(min_length=1)
    rewrite: HTTPRewrite | None = None
    timeout: Duration | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrorPercentage: Percent | None = None
    headers: Headers | None = None
    corsPolicy: CorsPolicy | None = None

    @model_validator(mode="after")
    def _as_istio_validates(self) -> HTTPRoute:
        """validateHTTPRouteDestinations: of several destinations, one must carry weight."""
        if len(self.route) > 1 and not sum(d.weight or 0 for d in self.route):
            raise ValueError("total destination weight = 0")
        return self


class VirtualServiceSpec(Strict):
    hosts: list[str] = Field(min_length=1)
    gateways: list[str] = Field(default_factory=list)
    http: list[HTTPRoute] = Field(min_length=1)

    @model_validator(mode="after")
    def _as_istio_validates(self) -> VirtualServiceSpec:
        """validateVirtualService on hosts, and JWT claim routing only on gateways."""
        applies_to_mesh = not self.gateways or "mesh" in self.gateways
        if applies_to_mesh and "*" in self.hosts:
            raise ValueError(
                "wildcard host * is not allowed for virtual services bound to the mesh gateway"
            )
        for i, host in enumerate(self.hosts):
            for other in self.hosts[i + 1 :]:
                if overlap(host, other):
                    raise ValueError(f"duplicate hosts in virtual service: {host} & {other}")
        for route in self.http:
            for match in route.match:
                for key in match.headers:
                    if key.startswith("@request.auth.claims"):
                        raise ValueError(
                            f"headers: {key}: JWT claim based routing is not supported in "
                            "local mode"
                        )
        return self


class TCPSettings(Strict):
    maxConnections: int | None = Field(default=None, ge=0)
    connectTimeout: Duration | None = None


class HTTPSettings(Strict):
    http1MaxPendingRequests: int | None = Field(default=None, ge=0)
    http2MaxRequests: int | None = Field(default=None, ge=0)
    maxRequestsPerConnection: int | None = Field(default=None, ge=0)
    maxRetries: int | None = Field(default=None, ge=0)
    # UPGRADE: HTTP/2 to the destination's sidecar; DEFAULT follows the mesh (DO_NOT_UPGRADE).
    h2UpgradePolicy: Literal["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"] | None = None


class ConnectionPoolSettings(Strict):
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> ConnectionPoolSettings:
        if self.tcp is None and self.http is None:
            raise ValueError("connection pool must have at least one field")
        return self


class OutlierDetection(Strict):
    consecutive5xxErrors: int | None = Field(default=None, ge=0)
    consecutiveGatewayErrors: int | None = Field(default=None, ge=0)
    interval: Duration | None = None
    baseEjectionTime: Duration | None = None
    maxEjectionPercent: int | None = Field(default=None, ge=0, le=100)


class HTTPCookie(Strict):
    name: str
    path: str | None = None
    ttl: Duration | None = None


class RingHash(Strict):
    minimumRingSize: int = Field(default=0, ge=0)


class Maglev(Strict):
    tableSize: int = Field(default=0, ge=0)


class ConsistentHashLB(Strict):
    httpHeaderName: str | None = None
    httpCookie: HTTPCookie | None = None
    useSourceIp: bool | None = None
    httpQueryParameterName: str | None = None
    ringHash: RingHash | None = None
    maglev: Maglev | None = None

    @model_validator(mode="after")
    def _one_key_one_algorithm(self) -> ConsistentHashLB:
        """Both are protobuf oneofs: at most one hash key, at most one of ringHash/maglev."""
        keys = (self.httpHeaderName, self.httpCookie, self.useSourceIp, self.httpQueryParameterName)
        if sum(k is not None for k in keys) > 1:
            raise ValueError(
                "set only one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName"
            )
        if self.ringHash is not None and self.maglev is not None:
            raise ValueError("set only one of ringHash or maglev")
        return self


class LoadBalancerSettings(Strict):
    # LEAST_CONN is Istio's deprecated name for LEAST_REQUEST.
    simple: (
        Literal["ROUND_ROBIN", "LEAST_REQUEST", "LEAST_CONN", "RANDOM", "UNSPECIFIED"] | None
    ) = None
    consistentHash: ConsistentHashLB | None = None

    @model_validator(mode="before")
    @classmethod
    def _consistent_hash_wins(cls, data: object) -> object:
        """A protobuf oneof that istio decodes leniently: given both, istiod uses the
        consistent hash whatever the order (tests/conformance has such cases)."""
        if isinstance(data, dict) and "simple" in data and "consistentHash" in data:
            return {k: v for k, v in data.items() if k != "simple"}
        return data


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
    host: str = Field(pattern=r"^[^*]+$")  # wildcard hosts are outside local mode's subset
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
    # Workload (container) port -> mode; in local mode only the app port, 8080, has a
    # listener. A null or empty entry is UNSET: the workload's mode.
    portLevelMtls: dict[int, PeerAuthenticationMTLS | None] | None = None

    @model_validator(mode="after")
    def _as_istio_validates(self) -> PeerAuthenticationSpec:
        """ValidatePeerAuthentication on portLevelMtls."""
        if self.portLevelMtls is None:
            return self
        if not self.portLevelMtls:
            raise ValueError(
                "portLevelMtls: port level mTLS, if defined, must have at least one element"
            )
        if self.selector is None or not self.selector.matchLabels:
            raise ValueError(
                "portLevelMtls: mesh/namespace peer authentication cannot have port level mTLS"
            )
        if any(not 1 <= port <= 65535 for port in self.portLevelMtls):
            raise ValueError("portLevelMtls: port must be in range 1..65535")
        return self


NonEmpty = Annotated[str, Field(min_length=1)]


class JWTHeader(Strict):
    """A header the token is read from (Envoy's from_headers), `prefix` stripped first."""

    name: NonEmpty
    prefix: str = ""


class JWTRule(Strict):
    issuer: str
    jwksUri: str
    # A token's `aud` must contain one of these (Envoy's audiences; otherwise Envoy's 403).
    audiences: list[NonEmpty] = Field(default_factory=list)
    # Where the token is read from; either replaces the default, `Authorization: Bearer`.
    fromHeaders: list[JWTHeader] = Field(default_factory=list)
    fromParams: list[NonEmpty] = Field(default_factory=list)
    forwardOriginalToken: bool = False
    # The verified payload, base64url, in this request header for the app (Envoy's
    # forward_payload_header); jwt_authn removes any client-sent value of it first.
    outputPayloadToHeader: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]+$")


class RequestAuthenticationSpec(Strict):
    selector: WorkloadSelector | None = None
    jwtRules: list[JWTRule] = Field(min_length=1)


_PATH_TEMPLATE_LITERAL = re.compile(r"^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$")


def _no_empty_values(values: list[str], field: str) -> None:
    """security.CheckEmptyValues."""
    if any(value == "" for value in values):
        raise ValueError(f"empty value not allowed, found in {field}")


def _valid_path_templates(paths: list[str], field: str) -> None:
    """security.CheckValidPathTemplate: `{*}` is one segment, `{**}` the last operator."""
    for path in paths:
        has_template = "{*}" in path or "{**}" in path
        trimmed = path.strip("/")
        found_any = False
        for glob in trimmed.split("/"):
            if glob in ("{*}", "{**}"):
                if found_any:
                    raise ValueError(
                        f"invalid or unsupported path {trimmed}, found in {field}. "
                        "{**} is not the last operator"
                    )
                found_any = glob == "{**}"
                continue
            if "{" in glob or "}" in glob:
                raise ValueError(
                    f"invalid or unsupported path {trimmed}, found in {field}. "
                    "Contains '{' or '}' beyond a supported path template"
                )
            if has_template and not _PATH_TEMPLATE_LITERAL.match(glob):
                raise ValueError(
                    f"invalid or unsupported path {trimmed}, found in {field}. "
                    f"Contains segment {glob} with invalid string literal"
                )


class Source(Strict):
    principals: list[str] = Field(default_factory=list)
    notPrincipals: list[str] = Field(default_factory=list)
    requestPrincipals: list[str] = Field(default_factory=list)
    notRequestPrincipals: list[str] = Field(default_factory=list)
    namespaces: list[str] = Field(default_factory=list)
    notNamespaces: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _as_istio_validates(self) -> Source:
        """ValidateAuthorizationPolicy on `from.source`."""
        fields = self.model_dump()
        if not any(fields.values()):
            raise ValueError("`from.source` must not be empty")
        for name, values in fields.items():
            _no_empty_values(values, name[0].upper() + name[1:])
        return self


class From(Strict):
    source: Source


class Operation(Strict):
    methods: list[str] = Field(default_factory=list)
    notMethods: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list)
    notPaths: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _as_istio_validates(self) -> Operation:
        """ValidateAuthorizationPolicy on `to.operation`."""
        fields = self.model_dump()
        if not any(fields.values()):
            raise ValueError("`to.operation` must not be empty")
        for name, values in fields.items():
            _no_empty_values(values, name[0].upper() + name[1:])
        _valid_path_templates(self.paths, "Paths")
        _valid_path_templates(self.notPaths, "NotPaths")
        return self


class To(Strict):
    operation: Operation


# The `when` keys local mode translates (istio's authz model generator has more).
_CONDITION_KEY = re.compile(
    r"^(request\.headers\[[^\[\]]+\]|request\.auth\.claims(\[[^\[\]]+\])+)$"
)


class Condition(Strict):
    key: str
    values: list[str] = Field(default_factory=list)
    notValues: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _as_istio_validates(self) -> Condition:
        if not self.values and not self.notValues:
            raise ValueError(
                f"at least one of `values` or `notValues` must be set for key {self.key}"
            )
        if not _CONDITION_KEY.match(self.key):
            raise ValueError(
                f"key {self.key!r} not supported in local mode "
                "(supported: request.headers[NAME], request.auth.claims[NAME]...)"
            )
        _no_empty_values(self.values, self.key)
        return self


class Rule(Strict):
    # `from: []` is no `from` at all once decoded into protobuf, as istio sees it.
    from_: list[From] = Field(default_factory=list, alias="from")
    to: list[To] = Field(default_factory=list)
    when: list[Condition] = Field(default_factory=list)


class AuthorizationPolicySpec(Strict):
    selector: WorkloadSelector | None = None
    action: Literal["ALLOW", "DENY", "AUDIT"] = "ALLOW"
    rules: list[Rule] | None = None

    @model_validator(mode="after")
    def _as_istio_validates(self) -> AuthorizationPolicySpec:
        if self.action == "DENY" and not self.rules:  # `rules: []` is no rules in protobuf
            raise ValueError(
                "DENY action without `rules` is meaningless as it will never be triggered, "
                "add an empty rule `{}` if you want it be triggered for every request"
            )
        return self


# --- resources ---------------------------------------------------------------------------


DRY_RUN = "istio.io/dry-run"
# Go's strconv.ParseBool, which istio's validation and authz builder use for DRY_RUN.
GO_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}


class Resource(Strict):
    apiVersion: str
    kind: str
    metadata: Metadata

    @model_validator(mode="after")
    def _dry_run_only_on_authorization_policies(self) -> Resource:
        """validateMetadata / checkDryRunAnnotation."""
        meta = self.metadata
        if DRY_RUN in meta.annotations and self.kind != "AuthorizationPolicy":
            raise ValueError(
                f"{meta.namespace}/{meta.name} has unsupported annotation {DRY_RUN}, "
                "please remove the annotation"
            )
        return self


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

    @model_validator(mode="after")
    def _valid_dry_run(self) -> AuthorizationPolicy:
        value = self.metadata.annotations.get(DRY_RUN)
        if value is None:
            return self
        where = f"{self.metadata.namespace}/{self.metadata.name}"
        if self.spec.action not in ("ALLOW", "DENY"):
            raise ValueError(
                f"the annotation {DRY_RUN} currently only supports action ALLOW/DENY, "
                f"found action {self.spec.action} in {where}"
            )
        if value not in GO_BOOLS:
            raise ValueError(f"{where} has annotation {DRY_RUN} with invalid value ({value})")
        return self

    @property
    def dry_run(self) -> bool:
        """Istio shadows such a policy: evaluated and counted, never enforced."""
        return GO_BOOLS.get(self.metadata.annotations.get(DRY_RUN, ""), False)


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
