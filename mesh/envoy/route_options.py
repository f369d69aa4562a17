"""What a VirtualService route does besides choosing clusters: header operations, mirroring,
CORS and consistent-hash policies, each as istiod's route.go translates it."""

from __future__ import annotations

from mesh.control.topology import fqdn
from mesh.envoy.clusters import destination_rule_for
from mesh.envoy.common import Config, outbound_cluster, typed
from mesh.istio.loader import MeshConfig
from mesh.istio.models import (
    ConsistentHashLB,
    CorsPolicy,
    Destination,
    HeaderOperations,
    Headers,
    Percent,
    StringMatch,
)

CORS_FILTER = "envoy.filters.http.cors"
T_CORS = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
T_CORS_POLICY = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"
HEADER_FIELDS = (
    "request_headers_to_add", "request_headers_to_remove",
    "response_headers_to_add", "response_headers_to_remove",
)  # fmt: skip


def _internal(name: str) -> bool:
    """isInternalHeader: pseudo-headers and Host, which Envoy will not let a route modify."""
    return name.startswith(":") or name.lower() == "host"


def _append(headers: dict[str, str], action: str) -> list[Config]:
    """translateAppendHeaders: sorted by name, pseudo-headers dropped."""
    return [
        {"header": {"key": name, "value": value}, "append_action": action}
        for name, value in sorted(headers.items())
        if not _internal(name)
    ]


def _operations(ops: HeaderOperations | None) -> tuple[list[Config], list[str]]:
    if ops is None:
        return [], []
    added = _append(ops.set, "OVERWRITE_IF_EXISTS_OR_ADD") + _append(
        ops.add, "APPEND_IF_EXISTS_OR_ADD"
    )
    return added, [name for name in ops.remove if not _internal(name)]


def header_operations(headers: Headers | None) -> Config:
    """TranslateHeadersOperations: `set` overwrites, `add` appends, `remove` removes."""
    if headers is None:
        return {}
    request_add, request_remove = _operations(headers.request)
    response_add, response_remove = _operations(headers.response)
    values = (request_add, request_remove, response_add, response_remove)
    return {name: value for name, value in zip(HEADER_FIELDS, values, strict=True) if value}


def extend_headers(target: Config, more: Config) -> None:
    """Destination headers after the route's own, as processDestination appends them."""
    for name, values in more.items():
        target[name] = [*target.get(name, []), *values]


def _fraction(percent: Percent | None) -> Config:
    if percent is None:
        return {"numerator": 100, "denominator": "HUNDRED"}
    return {"numerator": int(percent.value * 10_000), "denominator": "MILLION"}


def mirror_policy(cluster: str, percent: Percent | None) -> Config | None:
    """TranslateRequestMirrorPolicy with MirrorPercent: 100 % unless `mirrorPercentage` says
    otherwise, none at 0 %; the mirror's Host keeps its name (DISABLE_SHADOW_HOST_SUFFIX)."""
    if percent is not None and percent.value <= 0:
        return None
    return {
        "cluster": cluster,
        "runtime_fraction": {"default_value": _fraction(percent)},
        "trace_sampled": False,
        "disable_shadow_host_suffix_append": True,
    }


def string_matcher(match: StringMatch) -> Config | None:
    """util.ConvertToEnvoyMatch."""
    if match.exact is not None:
        return {"exact": match.exact}
    if match.prefix is not None:
        return {"prefix": match.prefix}
    if match.regex is not None:
        return {"safe_regex": {"regex": match.regex}}
    return None


def cors_policy(cors: CorsPolicy) -> Config:
    """TranslateCORSPolicy, the per-route config of the HCM's CORS filter."""
    out: Config = {
        # Forward preflights that match no origin to the app, unless told to ignore them.
        "forward_not_matching_preflights": cors.unmatchedPreflights != "IGNORE",
        "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
    }
    origins = [m for m in map(string_matcher, cors.allowOrigins) if m is not None]
    if origins:
        out["allow_origin_string_match"] = origins
    if cors.allowCredentials is not None:
        out["allow_credentials"] = cors.allowCredentials
    lists = {"allow_headers": cors.allowHeaders, "allow_methods": cors.allowMethods,
             "expose_headers": cors.exposeHeaders}  # fmt: skip
    for field, values in lists.items():
        if values:
            out[field] = ",".join(values)
    if cors.maxAge is not None:
        out["max_age"] = str(int(cors.maxAge.total_seconds()))
    return typed(T_CORS_POLICY, **out)


def hash_policy(hashing: ConsistentHashLB | None) -> Config | None:
    """ConsistentHashToHashPolicy: what the request is hashed on."""
    if hashing is None:
        return None
    if hashing.httpHeaderName is not None:
        return {"header": {"header_name": hashing.httpHeaderName}}
    if hashing.httpCookie is not None:
        cookie: Config = {"name": hashing.httpCookie.name}
        if hashing.httpCookie.ttl is not None:
            cookie["ttl"] = f"{hashing.httpCookie.ttl.total_seconds():g}s"
        if hashing.httpCookie.path:
            cookie["path"] = hashing.httpCookie.path
        return {"cookie": cookie}
    if hashing.useSourceIp is not None:
        return {"connection_properties": {"source_ip": hashing.useSourceIp}}
    if hashing.httpQueryParameterName is not None:
        return {"query_parameter": {"name": hashing.httpQueryParameterName}}
    return None


def consistent_hash(
    config: MeshConfig, destination: Destination, namespace: str
) -> ConsistentHashLB | None:
    """HashForHTTPDestination: the subset's consistentHash, else the rule's."""
    rule = destination_rule_for(config, fqdn(destination.host, namespace))
    if rule is None:
        return None
    top = rule.spec.trafficPolicy
    hashing = top.loadBalancer.consistentHash if top and top.loadBalancer else None
    for subset in rule.spec.subsets:
        if subset.name == destination.subset:
            policy = subset.trafficPolicy
            if policy and policy.loadBalancer and policy.loadBalancer.consistentHash:
                hashing = policy.loadBalancer.consistentHash
    return hashing


def service_hash(config: MeshConfig, host: str) -> ConsistentHashLB | None:
    """hashForService: for a service without VirtualService, the rule's top-level hash."""
    rule = destination_rule_for(config, host)
    top = rule.spec.trafficPolicy if rule else None
    return top.loadBalancer.consistentHash if top and top.loadBalancer else None


def mirror_cluster(destination: Destination, namespace: str) -> str:
    return outbound_cluster(fqdn(destination.host, namespace), destination.subset)
