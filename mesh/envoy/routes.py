"""VirtualServices -> Envoy route configurations, with Istio's defaults where YAML is silent."""

from __future__ import annotations

from mesh.envoy.clusters import destination_rule_for
from mesh.envoy.common import (
    FAULT_FILTER,
    T_FAULT,
    T_PREVIOUS_HOSTS,
    T_ROUTE,
    Config,
    duration,
    outbound_cluster,
    typed,
)
from mesh.istio.loader import IstioConfigError, MeshConfig
from mesh.istio.models import (
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRetry,
    HTTPRoute,
    StringMatch,
    VirtualService,
)
from mesh.topology import Topology, fqdn

# Istio's default route retry policy (pilot/pkg/networking/core/route/retry): 2 retries on
# connection-level failures only; 503 responses are not retried unless retryOn says so.
DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"


def _where(vs: VirtualService, index: int, field: str) -> str:
    return f"VirtualService {vs.metadata.namespace}/{vs.metadata.name}: spec.http[{index}].{field}"


def retry_policy(retries: HTTPRetry | None) -> Config | None:
    base: Config = {
        "num_retries": 2,
        "retry_on": DEFAULT_RETRY_ON,
        "host_selection_retry_max_attempts": 5,
        "retry_host_predicate": [
            {"name": "envoy.retry_host_predicates.previous_hosts",
             "typed_config": typed(T_PREVIOUS_HOSTS)}
        ],
    }  # fmt: skip
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
    return base


def _percentage(value: float | None) -> Config:
    return {
        "numerator": round((100.0 if value is None else value) * 10_000),
        "denominator": "MILLION",
    }


def fault_config(fault: HTTPFaultInjection) -> Config:
    out: Config = {}
    if fault.delay is not None:
        out["delay"] = {
            "fixed_delay": duration(fault.delay.fixedDelay),
            "percentage": _percentage(
                fault.delay.percentage.value if fault.delay.percentage else None
            ),
        }
    if fault.abort is not None:
        out["abort"] = {
            "http_status": fault.abort.httpStatus,
            "percentage": _percentage(
                fault.abort.percentage.value if fault.abort.percentage else None
            ),
        }
    return typed(T_FAULT, **out)


def _string_match(match: StringMatch) -> Config:
    if match.exact is not None:
        return {"exact": match.exact}
    if match.prefix is not None:
        return {"prefix": match.prefix}
    if match.regex is not None:
        return {"safe_regex": {"regex": match.regex}}
    raise ValueError("empty string match")


def _header_match(name: str, match: StringMatch) -> Config:
    """istiod's translateHeaderMatch: an empty match (`{}`) means "present"."""
    if (match.exact, match.prefix, match.regex) == (None, None, None):
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


def _destinations(
    config: MeshConfig, topology: Topology, vs: VirtualService, index: int, http: HTTPRoute
) -> Config:
    targets = []
    for number, dest in enumerate(http.route):
        host = fqdn(dest.destination.host, vs.metadata.namespace)
        where = _where(vs, index, f"route[{number}].destination")
        if host not in topology.service_hosts():
            raise IstioConfigError(f"{where}.host: {dest.destination.host!r} is not a mesh service")
        subset = dest.destination.subset
        if subset is not None:
            rule = destination_rule_for(config, host)
            if rule is None or subset not in {s.name for s in rule.spec.subsets}:
                raise IstioConfigError(
                    f"{where}.subset: no DestinationRule for {host} defines subset {subset!r}"
                )
        weight = 100 if dest.weight is None and len(http.route) == 1 else dest.weight or 0
        targets.append((outbound_cluster(host, subset), weight))
    live = [(name, weight) for name, weight in targets if weight > 0]
    if len(http.route) > 1 and sum(w for _, w in targets) != 100:
        raise IstioConfigError(f"{_where(vs, index, 'route')}: weights must add up to 100")
    if len(live) == 1:
        return {"cluster": live[0][0]}
    return {"weighted_clusters": {"clusters": [{"name": n, "weight": w} for n, w in live]}}


def _routes_of(config: MeshConfig, topology: Topology, vs: VirtualService) -> list[Config]:
    routes = []
    for index, http in enumerate(vs.spec.http):
        action = _destinations(config, topology, vs, index, http)
        action["timeout"] = duration(http.timeout) if http.timeout else "0s"  # Istio: no timeout
        if (retry := retry_policy(http.retries)) is not None:
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
            if http.fault is not None:
                route["typed_per_filter_config"] = {FAULT_FILTER: fault_config(http.fault)}
            routes.append(route)
    return routes


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
    bound = [
        vs
        for vs in sorted(
            config.virtual_services, key=lambda v: (v.metadata.namespace, v.metadata.name)
        )
        if _binds_mesh(vs) and host in {fqdn(h, vs.metadata.namespace) for h in vs.spec.hosts}
    ]
    if len(bound) > 1:
        names = ", ".join(f"{v.metadata.namespace}/{v.metadata.name}" for v in bound)
        raise IstioConfigError(f"VirtualServices {names} all define host {host}; keep one")
    if bound:
        routes = _routes_of(config, topology, bound[0])
    else:  # no VirtualService: Istio's default route to every endpoint of the service
        routes = [
            {
                "name": "default",
                "match": {"prefix": "/"},
                "route": {"cluster": outbound_cluster(host), "timeout": "0s",
                          "retry_policy": retry_policy(None)},
            }
        ]  # fmt: skip
    name = outbound_cluster(host)
    return typed(
        T_ROUTE,
        name=name,
        virtual_hosts=[{"name": host, "domains": ["*"], "routes": routes}],
        validate_clusters=False,
    )


def gateway_route_config(
    config: MeshConfig, topology: Topology, gateway: tuple[str, str], port: int
) -> Config:
    bound = [
        vs
        for vs in sorted(
            config.virtual_services, key=lambda v: (v.metadata.namespace, v.metadata.name)
        )
        if _binds_gateway(vs, gateway)
    ]
    hosts: dict[str, list[Config]] = {}
    for vs in bound:
        for host in vs.spec.hosts:
            hosts.setdefault(host, []).extend(_routes_of(config, topology, vs))
    return typed(
        T_ROUTE,
        name=f"http.{port}",
        virtual_hosts=[
            {
                "name": f"{host}:{port}",
                "domains": ["*"] if host == "*" else [host, f"{host}:*"],
                "routes": r,
            }
            for host, r in hosts.items()
        ],
        validate_clusters=False,
    )
