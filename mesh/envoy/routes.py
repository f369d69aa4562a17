"""VirtualServices -> Envoy route configurations, with Istio's defaults where YAML is silent."""

from __future__ import annotations

from mesh.control.topology import SERVICE_PORT, Topology, fqdn
from mesh.envoy.clusters import destination_rule_for
from mesh.envoy.common import (
    FAULT_FILTER,
    T_FAULT,
    T_PREVIOUS_HOSTS,
    T_PREVIOUS_PRIORITIES,
    T_ROUTE,
    Config,
    duration,
    outbound_cluster,
    typed,
)
from mesh.envoy.route_options import (
    CORS_FILTER,
    consistent_hash,
    cors_policy,
    extend_headers,
    hash_policy,
    header_operations,
    mirror_policy,
    service_hash,
    string_matcher,
)
from mesh.istio.hosts import intersection, is_wildcard
from mesh.istio.loader import IstioConfigError, MeshConfig
from mesh.istio.models import (
    Destination,
    Gateway,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRetry,
    HTTPRoute,
    StringMatch,
    VirtualService,
)

# Istio's default route retry policy (pilot/pkg/networking/core/route/retry): 2 retries on
# connection-level failures only; 503 responses are not retried unless retryOn says so.
DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"


def _where(vs: VirtualService, index: int, field: str) -> str:
    return f"VirtualService {vs.metadata.namespace}/{vs.metadata.name}: spec.http[{index}].{field}"


_PREVIOUS_PRIORITIES = {
    "name": "envoy.retry_priorities.previous_priorities",
    "typed_config": typed(T_PREVIOUS_PRIORITIES, update_frequency=2),
}


def retry_policy(retries: HTTPRetry | None, consistent_hash: bool = False) -> Config | None:
    """retry.ConvertPolicy. With a consistent hash the retry may not move to another host
    (no previous_hosts predicate): it would defeat the hash."""
    base: Config = {
        "num_retries": 2,
        "retry_on": DEFAULT_RETRY_ON,
        "host_selection_retry_max_attempts": 5,
    }
    if not consistent_hash:
        base["retry_host_predicate"] = [
            {"name": "envoy.retry_host_predicates.previous_hosts",
             "typed_config": typed(T_PREVIOUS_HOSTS)}
        ]  # fmt: skip
    if retries is None:
        return base
    if retries.attempts <= 0:
        return None  # explicitly disabled
    base["num_retries"] = retries.attempts
    if retries.retryOn:
        parts = [p.strip() for p in retries.retryOn.split(",") if p.strip()]
        codes = [int(p) for p in parts if p.isdigit()]
        words = [p for p in parts if not p.isdigit()]
        if codes and "retriable-status-codes" not in words:
            words.append("retriable-status-codes")
        base["retry_on"] = ",".join(words)
        if codes:
            base["retriable_status_codes"] = codes
    if retries.perTryTimeout is not None:
        base["per_try_timeout"] = duration(retries.perTryTimeout)
    if retries.retryRemoteLocalities:
        # One locality here, so it changes nothing; istiod sets it all the same.
        base["retry_priority"] = _PREVIOUS_PRIORITIES
    return base


def _percent(value: float) -> Config:
    """translatePercentToFractionalPercent, truncating as Go's uint32() does."""
    return {"numerator": int(value * 10_000), "denominator": "MILLION"}


def fault_config(fault: HTTPFaultInjection) -> Config:
    """istiod's TranslateFault. Without `percentage` a delay gets the deprecated integer
    `percent` (0 when unset) and an abort none: both inject into no request."""
    out: Config = {}
    if fault.delay is not None:
        out["delay"] = {
            "fixed_delay": duration(fault.delay.fixedDelay),
            "percentage": _percent(fault.delay.percentage.value)
            if fault.delay.percentage
            else {"numerator": 0, "denominator": "HUNDRED"},
        }
    if fault.abort is not None:
        out["abort"] = {"http_status": fault.abort.httpStatus}
        if fault.abort.percentage is not None:
            out["abort"]["percentage"] = _percent(fault.abort.percentage.value)
    return typed(T_FAULT, **out)


def _string_match(match: StringMatch) -> Config:
    converted = string_matcher(match)
    if converted is None:  # callers map an empty match before it gets here
        raise ValueError("empty string match")
    return converted


def _header_match(name: str, match: StringMatch) -> Config:
    """istiod's translateHeaderMatch: an empty match (`{}`) and the regex `*` mean "present"."""
    if (match.exact, match.prefix, match.regex) == (None, None, None) or match.regex == "*":
        return {"name": name, "present_match": True}
    return {"name": name, "string_match": _string_match(match)}


def _route_match(match: HTTPMatchRequest | None) -> Config:
    out: Config = {"prefix": "/"}
    if match is None:
        return out
    uri = match.uri
    if uri is not None and (uri.exact, uri.prefix, uri.regex) != (None, None, None):
        out = {}  # `uri: {}` matches everything, like no uri at all (istiod: prefix "/")
        if uri.exact is not None:
            out["path"] = uri.exact
        elif uri.prefix is not None:
            out["prefix"] = uri.prefix
        elif uri.regex is not None:
            out["safe_regex"] = {"regex": uri.regex}
    if match.ignoreUriCase:
        out["case_sensitive"] = False
    headers = [_header_match(k, v) for k, v in sorted(match.headers.items())]
    if match.method is not None:
        headers.append(_header_match(":method", match.method))
    if headers:
        out["headers"] = headers
    return out


def _checked_cluster(
    config: MeshConfig, topology: Topology, destination: Destination, namespace: str, where: str
) -> str:
    host = fqdn(destination.host, namespace)
    if host not in topology.service_hosts():
        raise IstioConfigError(f"{where}.host: {destination.host!r} is not a mesh service")
    port = destination.port
    if port is not None and port.number != SERVICE_PORT:
        raise IstioConfigError(
            f"{where}.port.number: {host} has no port {port.number} (only {SERVICE_PORT})"
        )
    subset = destination.subset
    if subset is not None:
        rule = destination_rule_for(config, host)
        if rule is None or subset not in {s.name for s in rule.spec.subsets}:
            raise IstioConfigError(
                f"{where}.subset: no DestinationRule for {host} defines subset {subset!r}"
            )
    return outbound_cluster(host, subset)


def _destinations(
    config: MeshConfig, topology: Topology, vs: VirtualService, index: int, http: HTTPRoute,
    route_headers: Config,
) -> Config:  # fmt: skip
    """istiod's translateRoute for `route`: one destination takes everything whatever its
    weight; of several, those with weight 0 are left out and the rest split by weight, any
    total. Destination headers and consistent-hash policies come along."""
    namespace = vs.metadata.namespace
    hashes: list[Config] = []
    clusters: list[Config] = []
    for number, dest in enumerate(http.route):
        where = _where(vs, index, f"route[{number}].destination")
        cluster = _checked_cluster(config, topology, dest.destination, namespace, where)
        if len(http.route) > 1 and not dest.weight:
            continue
        hashing = hash_policy(consistent_hash(config, dest.destination, namespace))
        hashes += [hashing] if hashing else []
        headers = header_operations(dest.headers)
        if len(http.route) == 1:
            extend_headers(route_headers, headers)
            action: Config = {"cluster": cluster}
        else:
            clusters.append({"name": cluster, "weight": dest.weight, **headers})
    if clusters:
        action = {"weighted_clusters": {"clusters": clusters}}
    if hashes:
        action["hash_policy"] = hashes
    return action


def _mirror(config: MeshConfig, topology: Topology, vs: VirtualService, index: int,
            http: HTTPRoute) -> list[Config]:  # fmt: skip
    if http.mirror is None:
        return []
    where = _where(vs, index, "mirror")
    cluster = _checked_cluster(config, topology, http.mirror, vs.metadata.namespace, where)
    policy = mirror_policy(cluster, http.mirrorPercentage)
    return [policy] if policy else []


def _routes_of(config: MeshConfig, topology: Topology, vs: VirtualService) -> list[Config]:
    routes = []
    for index, http in enumerate(vs.spec.http):
        headers = header_operations(http.headers)
        action = _destinations(config, topology, vs, index, http, headers)
        action["timeout"] = duration(http.timeout) if http.timeout else "0s"  # Istio: no timeout
        if mirrors := _mirror(config, topology, vs, index, http):
            action["request_mirror_policies"] = mirrors
        hashed = len(http.route) == 1 and "hash_policy" in action
        if (retry := retry_policy(http.retries, consistent_hash=hashed)) is not None:
            action["retry_policy"] = retry
        for number, match in enumerate(http.match or [None]):
            if http.rewrite is not None and http.rewrite.uri is not None:
                if match is not None and match.uri is not None and match.uri.regex is not None:
                    raise IstioConfigError(
                        f"{_where(vs, index, f'match[{number}].uri.regex')}: rewrite.uri with a "
                        "regex match is not supported in local mode"
                    )
                action = {**action, "prefix_rewrite": http.rewrite.uri}
            route: Config = {
                "name": http.name or f"{vs.metadata.name}.{vs.metadata.namespace}.{index}",
                "match": _route_match(match),
                "route": action,
                "decorator": {"operation": f"{vs.metadata.name}.{vs.metadata.namespace}:{index}"},
            }
            route.update(headers)
            per_filter: Config = {}
            if http.fault is not None:
                per_filter[FAULT_FILTER] = fault_config(http.fault)
            if http.corsPolicy is not None:
                per_filter[CORS_FILTER] = cors_policy(http.corsPolicy)
            if per_filter:
                route["typed_per_filter_config"] = per_filter
            routes.append(route)
            if _catches_all(route["match"]):
                # As istiod: nothing after a route that matches every request is reachable,
                # so no later route or match is sent (BuildHTTPRoutesForVirtualService).
                return routes
    return routes


def _catches_all(match: Config) -> bool:
    """IsCatchAllRoute: prefix "/" or regex ".*", and no header match."""
    path = match.get("prefix") == "/" or match.get("safe_regex", {}).get("regex") == ".*"
    return path and not match.get("headers")


def _binds_mesh(vs: VirtualService) -> bool:
    return not vs.spec.gateways or "mesh" in vs.spec.gateways


def _binds_gateway(vs: VirtualService, gateway: tuple[str, str]) -> bool:
    namespace, name = gateway
    for ref in vs.spec.gateways:
        ref_ns, _, ref_name = ref.rpartition("/")
        if (ref_ns or vs.metadata.namespace, ref_name) == (namespace, name):
            return True
    return False


def sidecar_route_config(config: MeshConfig, topology: Topology, host: str) -> Config:
    """What a sidecar's outbound listener for `host` routes by (Istio's VirtualService merge)."""
    in_mesh = [
        vs
        for vs in sorted(
            config.virtual_services, key=lambda v: (v.metadata.namespace, v.metadata.name)
        )
        if _binds_mesh(vs)
    ]
    for vs in in_mesh:
        for index, name in enumerate(vs.spec.hosts):
            if is_wildcard(name):
                raise IstioConfigError(
                    f"VirtualService {vs.metadata.namespace}/{vs.metadata.name}: "
                    f"spec.hosts[{index}]: wildcard hosts on the mesh are not supported in "
                    "local mode; name each service"
                )
    bound = [
        vs for vs in in_mesh if host in {fqdn(h, vs.metadata.namespace) for h in vs.spec.hosts}
    ]
    if len(bound) > 1:
        first, second = bound[0], bound[1]
        raise IstioConfigError(
            f"VirtualService {second.metadata.namespace}/{second.metadata.name}: spec.hosts: "
            f"{host} is also defined by VirtualService {first.metadata.namespace}/"
            f"{first.metadata.name}; local mode needs one VirtualService per host"
        )
    if bound:
        routes = _routes_of(config, topology, bound[0])
    else:  # no VirtualService: Istio's default route to every endpoint of the service
        action: Config = {"cluster": outbound_cluster(host), "timeout": "0s",
                          "retry_policy": retry_policy(None)}  # fmt: skip
        if hashing := hash_policy(service_hash(config, host)):
            action["hash_policy"] = [hashing]
        routes = [{"name": "default", "match": {"prefix": "/"}, "route": action}]
    name = outbound_cluster(host)
    return typed(
        T_ROUTE,
        name=name,
        virtual_hosts=[{"name": host, "domains": ["*"], "routes": routes}],
        validate_clusters=False,
    )


def _server_hosts(hosts: list[str], vs_namespace: str, gateway_namespace: str) -> list[str]:
    """NamesForNamespace: `ns/host` applies to VirtualServices in ns (`*` any, `.` the
    Gateway's own); a bare host to all."""
    out = []
    for entry in hosts:
        namespace, slash, name = entry.partition("/")
        if slash:
            if namespace == ".":
                namespace = gateway_namespace
            if namespace not in (vs_namespace, "*"):
                continue
            entry = name
        out.append(entry)
    return out


def gateway_route_config(
    config: MeshConfig, topology: Topology, gateway: Gateway, port: int
) -> Config:
    """buildGatewayHTTPRouteConfig: a virtual host per host that both the Gateway's server and
    a bound VirtualService name (the narrower of the two), routes merged in VirtualService
    order with catch-all routes last, virtual hosts sorted by name."""
    key = (gateway.metadata.namespace, gateway.metadata.name)
    bound = [
        vs
        for vs in sorted(
            config.virtual_services, key=lambda v: (v.metadata.namespace, v.metadata.name)
        )
        if _binds_gateway(vs, key)
    ]
    server_hosts = [h for server in gateway.spec.servers for h in server.hosts]
    vhosts: dict[str, list[Config]] = {}
    for vs in bound:
        served = _server_hosts(server_hosts, vs.metadata.namespace, gateway.metadata.namespace)
        hosts = intersection(served, vs.spec.hosts)
        if not hosts:
            continue
        routes = _routes_of(config, topology, vs)
        for host in hosts:
            vhosts.setdefault(host.lower(), []).extend(routes)
    if not vhosts:  # istiod: a blackhole virtual host, every request 404
        return typed(T_ROUTE, name=f"http.{port}", validate_clusters=False, virtual_hosts=[
            {"name": f"blackhole:{port}", "domains": ["*"], "routes": []}
        ])  # fmt: skip
    virtual_hosts = [
        {
            "name": f"{host}:{port}",
            "domains": [host],
            # SortVHostRoutes: catch-all routes move behind the others, order kept otherwise.
            "routes": [r for r in routes if not _catches_all(r["match"])]
            + [r for r in routes if _catches_all(r["match"])],
        }
        for host, routes in vhosts.items()
    ]
    return typed(
        T_ROUTE,
        name=f"http.{port}",
        virtual_hosts=sorted(virtual_hosts, key=lambda v: str(v["name"])),
        validate_clusters=False,
    )
