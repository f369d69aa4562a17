"""Generated Istio resources within local mode's subset, for the comparison with istiod.

Hypothesis strategies over the fields the pydantic models (mesh/istio/models.py) accept:
VirtualService matches, weights, rewrites, timeouts, retries and faults; DestinationRule pools,
outlier detection and load balancing; AuthorizationPolicy sources, operations, conditions,
actions and dry-run. Some values are invalid on purpose (an empty principal, a DENY without
rules, retries disabled with a policy, a fault that injects nothing, a bad dry-run value; see
_MISTAKES): istio's validation must refuse them, and local mode must refuse exactly those.

`cases(n)` draws `n` resources deterministically (derandomized, no example database), so a
failure names a case that the next run reproduces.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

Doc = dict[str, Any]
HOSTS = ("order-service", "catalog-service", "user-service")
SUBSETS = ("v1", "v2")
ACCOUNTS = ("user-service", "catalog-service", "order-service")
RETRY_ON = ("5xx", "gateway-error", "reset", "connect-failure", "retriable-4xx",
            "refused-stream", "unavailable", "cancelled", "503", "429")  # fmt: skip

H2_UPGRADE = ("DEFAULT", "DO_NOT_UPGRADE", "UPGRADE")

_word = st.sampled_from(("orders", "catalogs", "users", "health", "v2", "a-b", "x.y"))
_path = st.lists(_word, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))
_duration = st.sampled_from(("250ms", "0.5s", "1s", "2s", "10s", "1m"))
_percent = st.sampled_from((0, 0.1, 10, 50, 99.9, 100))


def _string_match(values: st.SearchStrategy[str]) -> st.SearchStrategy[Doc]:
    return st.one_of(
        values.map(lambda v: {"exact": v}),
        values.map(lambda v: {"prefix": v}),
        values.map(lambda v: {"regex": v.replace(".", "\\.") + ".*"}),
        st.just({}),
    )


_header_names = st.sampled_from(("end-user", "x-canary", "x-request-id", "user-agent"))
_header_values = st.sampled_from(("jason", "v2", "curl/8", "a b"))


@st.composite
def _match(draw: st.DrawFn) -> Doc:
    match: Doc = {}
    if draw(st.booleans()):
        match["uri"] = draw(_string_match(_path))
    if draw(st.booleans()):
        names = draw(st.lists(_header_names, max_size=2, unique=True))
        match["headers"] = {n: draw(_string_match(_header_values)) for n in names}
    if draw(st.integers(0, 3)) == 0:
        match["method"] = draw(_string_match(st.sampled_from(("GET", "POST"))))
    if draw(st.integers(0, 4)) == 0:
        match["ignoreUriCase"] = True
    if draw(st.integers(0, 4)) == 0:
        match["name"] = draw(st.sampled_from(("canary", "by-user")))
    return match


@st.composite
def _destinations(draw: st.DrawFn, host: str) -> list[Doc]:
    count = draw(st.integers(1, 3))
    out = []
    for _ in range(count):
        destination: Doc = {"host": host}
        if draw(st.booleans()):
            destination["subset"] = draw(st.sampled_from(SUBSETS))
        if draw(st.integers(0, 5)) == 0:
            destination["port"] = {"number": 8080}
        entry: Doc = {"destination": destination}
        if count > 1 or draw(st.integers(0, 3)) == 0:
            entry["weight"] = draw(st.sampled_from((0, 1, 10, 25, 50, 90, 100)))
        out.append(entry)
    return out


@st.composite
def _retries(draw: st.DrawFn) -> Doc:
    retries: Doc = {"attempts": draw(st.integers(0, 5))}
    if draw(st.booleans()):
        retries["perTryTimeout"] = draw(_duration)
    if draw(st.integers(0, 3)) == 0:
        retries["retryRemoteLocalities"] = draw(st.booleans())
    if draw(st.booleans()):
        retries["retryOn"] = ",".join(draw(st.lists(st.sampled_from(RETRY_ON), min_size=1,
                                                    max_size=3, unique=True)))  # fmt: skip
    return retries


@st.composite
def _fault(draw: st.DrawFn) -> Doc:
    fault: Doc = {}
    if draw(st.booleans()):
        fault["delay"] = {"fixedDelay": draw(_duration)}
        if draw(st.booleans()):
            fault["delay"]["percentage"] = {"value": draw(_percent)}
    if draw(st.booleans()):
        fault["abort"] = {"httpStatus": draw(st.sampled_from((400, 500, 503)))}
        if draw(st.booleans()):
            fault["abort"]["percentage"] = {"value": draw(_percent)}
    return fault  # possibly empty: istio refuses a fault that injects nothing


@st.composite
def _http_route(draw: st.DrawFn, host: str) -> Doc:
    route: Doc = {"route": draw(_destinations(host))}
    if draw(st.booleans()):
        route["match"] = draw(st.lists(_match(), min_size=1, max_size=2))
    if draw(st.integers(0, 3)) == 0:
        route["name"] = draw(st.sampled_from(("primary", "canary")))
    if draw(st.integers(0, 4)) == 0 and not any(
        "regex" in (m.get("uri") or {}) for m in route.get("match", [])
    ):
        route["rewrite"] = {"uri": draw(st.sampled_from(("/", "/v2/", "/orders")))}
    if draw(st.booleans()):
        route["timeout"] = draw(_duration)
    if draw(st.booleans()):
        route["retries"] = draw(_retries())
    if draw(st.integers(0, 2)) == 0:
        route["fault"] = draw(_fault())
    if draw(st.integers(0, 3)) == 0:
        route["headers"] = draw(_headers())
    if draw(st.integers(0, 4)) == 0:
        route["mirror"] = {"host": draw(st.sampled_from(HOSTS))}
        if draw(st.booleans()):
            route["mirror"]["subset"] = draw(st.sampled_from(SUBSETS))
        if draw(st.booleans()):
            route["mirrorPercentage"] = {"value": draw(_percent)}
    if draw(st.integers(0, 4)) == 0:
        route["corsPolicy"] = draw(_cors())
    return route


_header_op_names = st.sampled_from(("x-canary", "x-shop", "cache-control", ":path", "Host"))


@st.composite
def _header_operations(draw: st.DrawFn) -> Doc:
    ops: Doc = {}
    values = st.sampled_from(("v2", "no-store", "1"))
    names = _header_op_names.filter(lambda n: n != "Host")  # a Host rewrite is refused
    if draw(st.booleans()):
        ops["set"] = draw(st.dictionaries(names, values, min_size=1, max_size=2))
    if draw(st.booleans()):
        ops["add"] = draw(st.dictionaries(names, values, min_size=1, max_size=2))
    if draw(st.booleans()):
        ops["remove"] = draw(st.lists(_header_op_names, min_size=1, max_size=2, unique=True))
    return ops


@st.composite
def _headers(draw: st.DrawFn) -> Doc:
    headers: Doc = {}
    for side in ("request", "response"):
        if draw(st.booleans()):
            headers[side] = draw(_header_operations())
    return headers


@st.composite
def _cors(draw: st.DrawFn) -> Doc:
    cors: Doc = {}
    if draw(st.booleans()):
        origins = st.sampled_from(({"exact": "https://shop.example"}, {"prefix": "https://"},
                                   {"regex": "https://.*[.]example"}))  # fmt: skip
        cors["allowOrigins"] = draw(st.lists(origins, min_size=1, max_size=2))
    for key, values in (("allowMethods", ("GET", "POST")), ("allowHeaders", ("x-canary",)),
                        ("exposeHeaders", ("x-request-id",))):  # fmt: skip
        if draw(st.booleans()):
            cors[key] = list(values)
    if draw(st.booleans()):
        cors["maxAge"] = draw(st.sampled_from(("24h", "1m", "10s")))
    if draw(st.booleans()):
        cors["allowCredentials"] = draw(st.booleans())
    if draw(st.integers(0, 2)) == 0:
        cors["unmatchedPreflights"] = draw(st.sampled_from(("FORWARD", "IGNORE")))
    return cors


@st.composite
def virtual_service(draw: st.DrawFn) -> Doc:
    host = draw(st.sampled_from(HOSTS))
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": host, "namespace": "meshmart"},
        "spec": {
            "hosts": [host],
            "http": draw(st.lists(_http_route(host), min_size=1, max_size=3)),
        },
    }


def _optional(draw: st.DrawFn, doc: Doc, key: str, strategy: st.SearchStrategy[Any]) -> None:
    if draw(st.booleans()):
        doc[key] = draw(strategy)


@st.composite
def _traffic_policy(draw: st.DrawFn) -> Doc:
    policy: Doc = {"tls": {"mode": "ISTIO_MUTUAL"}}
    if draw(st.booleans()):
        tcp: Doc = {}
        _optional(draw, tcp, "maxConnections", st.integers(0, 100))
        _optional(draw, tcp, "connectTimeout", _duration)
        http: Doc = {}
        _optional(draw, http, "http1MaxPendingRequests", st.integers(0, 100))
        _optional(draw, http, "http2MaxRequests", st.integers(0, 100))
        _optional(draw, http, "maxRequestsPerConnection", st.integers(0, 10))
        _optional(draw, http, "maxRetries", st.integers(0, 10))
        _optional(draw, http, "h2UpgradePolicy", st.sampled_from(H2_UPGRADE))
        policy["connectionPool"] = {k: v for k, v in (("tcp", tcp), ("http", http)) if v}
    if draw(st.booleans()):
        outlier: Doc = {}
        _optional(draw, outlier, "consecutive5xxErrors", st.integers(0, 10))
        _optional(draw, outlier, "consecutiveGatewayErrors", st.integers(0, 10))
        _optional(draw, outlier, "interval", _duration)
        _optional(draw, outlier, "baseEjectionTime", _duration)
        _optional(draw, outlier, "maxEjectionPercent", st.integers(0, 100))
        policy["outlierDetection"] = outlier
    if draw(st.booleans()):
        simple = st.sampled_from(
            ("ROUND_ROBIN", "LEAST_REQUEST", "LEAST_CONN", "RANDOM", "UNSPECIFIED")
        )
        policy["loadBalancer"] = {"simple": draw(simple)}
    elif draw(st.integers(0, 2)) == 0:
        policy["loadBalancer"] = {"consistentHash": draw(_consistent_hash())}
    return policy


@st.composite
def _consistent_hash(draw: st.DrawFn) -> Doc:
    keys: tuple[Doc, ...] = (
        {"httpHeaderName": "x-user"}, {"useSourceIp": True},
        {"httpCookie": {"name": "shop", "ttl": "10s"}}, {"httpCookie": {"name": "s", "path": "/"}},
        {"httpQueryParameterName": "user"},
    )  # fmt: skip
    key = draw(st.sampled_from(keys))
    algorithms: tuple[Doc, ...] = (
        {}, {"ringHash": {"minimumRingSize": 2048}}, {"maglev": {"tableSize": 65537}},
        {"ringHash": {}},
    )  # fmt: skip
    algorithm = draw(st.sampled_from(algorithms))
    return {**key, **algorithm}


@st.composite
def destination_rule(draw: st.DrawFn) -> Doc:
    host = draw(st.sampled_from(HOSTS))
    subsets = []
    for name in SUBSETS:
        subset: Doc = {"name": name, "labels": {"version": name}}
        if draw(st.integers(0, 2)) == 0:
            subset["trafficPolicy"] = draw(_traffic_policy())
        subsets.append(subset)
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": host, "namespace": "meshmart"},
        "spec": {"host": host, "trafficPolicy": draw(_traffic_policy()), "subsets": subsets},
    }


_principal = st.one_of(
    st.sampled_from(ACCOUNTS).map(lambda sa: f"cluster.local/ns/meshmart/sa/{sa}"),
    st.sampled_from(("*", "cluster.local/ns/meshmart/*", "*/sa/order-service", "*-service")),
)
_request_principal = st.sampled_from((
    "*", "meshmart-user-service/*", "meshmart-user-service/42", "*/42", "meshmart-*", "*service",
    "https://issuer.example/sub-1",
))  # fmt: skip
_namespace = st.sampled_from(("meshmart", "istio-system", "mesh*", "*"))
_method = st.sampled_from(("GET", "POST", "DELETE", "*", "P*"))
_policy_path = st.sampled_from((
    "/orders", "/catalogs/*", "*/health", "*", "/users/{*}/orders", "/api/{**}", "/a/{**}/b",
    "/health/live",
))  # fmt: skip


def _lists(values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(values, min_size=1, max_size=3, unique=True)


@st.composite
def _source(draw: st.DrawFn) -> Doc:
    source: Doc = {}
    for key, values in (("principals", _principal), ("requestPrincipals", _request_principal),
                        ("namespaces", _namespace)):  # fmt: skip
        if draw(st.integers(0, 2)) == 0:
            source[key] = draw(_lists(values))
        if draw(st.integers(0, 4)) == 0:
            source["not" + key[0].upper() + key[1:]] = draw(_lists(values))
    return source or {"principals": draw(_lists(_principal))}


@st.composite
def _operation(draw: st.DrawFn) -> Doc:
    operation: Doc = {}
    for key, values in (("methods", _method), ("paths", _policy_path)):
        if draw(st.booleans()):
            operation[key] = draw(_lists(values))
        if draw(st.integers(0, 3)) == 0:
            operation["not" + key[0].upper() + key[1:]] = draw(_lists(values))
    return operation


_condition_key = st.sampled_from((
    "request.headers[x-canary]", "request.headers[end-user]", "request.auth.claims[groups]",
    "request.auth.claims[iss]", "request.auth.claims[nested][role]",
))  # fmt: skip
_condition_value = st.sampled_from(("admin", "v2", "jason", "*", "dev*", "*ops"))


@st.composite
def _rule(draw: st.DrawFn) -> Doc:
    rule: Doc = {}
    if draw(st.booleans()):
        rule["from"] = [{"source": draw(_source())} for _ in range(draw(st.integers(1, 2)))]
    if draw(st.booleans()):
        rule["to"] = [{"operation": draw(_operation())} for _ in range(draw(st.integers(1, 2)))]
    if draw(st.integers(0, 2)) == 0:
        conditions = []
        for key in draw(st.lists(_condition_key, min_size=1, max_size=2, unique=True)):
            condition: Doc = {"key": key, "values": draw(_lists(_condition_value))}
            _optional(draw, condition, "notValues", _lists(_condition_value))
            conditions.append(condition)
        rule["when"] = conditions
    return rule


@st.composite
def authorization_policy(draw: st.DrawFn) -> Doc:
    metadata: Doc = {"name": draw(st.sampled_from(("probe-a", "probe-b"))),
                     "namespace": draw(st.sampled_from(("meshmart", "istio-system")))}  # fmt: skip
    spec: Doc = {}
    if draw(st.booleans()):
        spec["selector"] = {"matchLabels": {"app": draw(st.sampled_from(HOSTS))}}
    if draw(st.integers(0, 3)) == 0:
        spec["selector"] = {"matchLabels": {"istio": "ingressgateway"}}
    action = draw(st.sampled_from((None, "ALLOW", "DENY", "AUDIT")))
    if action is not None:
        spec["action"] = action
    if draw(st.integers(0, 5)) != 0:
        spec["rules"] = draw(st.lists(_rule(), max_size=3))
    if draw(st.integers(0, 3)) == 0:
        value = draw(st.sampled_from(("true", "false", "1", "True")))
        metadata["annotations"] = {"istio.io/dry-run": value}
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": metadata,
        "spec": spec,
    }


# One deliberate mistake in an otherwise valid resource: (field path, bad value). Each is
# refused by istio's validation; local mode must refuse it too.
_MISTAKES: dict[str, list[tuple[tuple[str | int, ...], Any]]] = {
    "AuthorizationPolicy": [
        (("spec", "rules"), [{"from": [{"source": {"principals": [""]}}]}]),
        (("spec", "rules"), [{"from": [{"source": {}}]}]),
        (("spec", "rules"), [{"to": [{"operation": {}}]}]),
        (("spec", "rules"), [{"to": [{"operation": {"paths": ["/x{*}"]}}]}]),
        (("spec", "rules"), [{"to": [{"operation": {"paths": ["/{**}/x/{*}"]}}]}]),
        (("spec", "rules"), [{"to": [{"operation": {"methods": [""]}}]}]),
        (("spec", "rules"), [{"when": [{"key": "request.headers[x-canary]"}]}]),
        (("metadata", "annotations"), {"istio.io/dry-run": "yes"}),
    ],
    "VirtualService": [
        (("spec", "http", 0, "fault"), {}),
        (("spec", "http", 0, "retries"), {"attempts": 0, "perTryTimeout": "1s"}),
        (("spec", "http", 0, "retries"), {"attempts": 2, "retryOn": "bogus-policy"}),
        (("spec", "http", 0, "route", 0, "weight"), -1),
        (("spec", "http", 0, "match"), [{"uri": {"exact": "/orders", "prefix": "/o"}}]),
        (("spec", "http", 0, "match"), [{"headers": {"x-canary": {"regex": "(?=v2)"}}}]),
        (("spec", "http", 0, "headers"), {"response": {"set": {"Host": "shop"}}}),
    ],
    "DestinationRule": [
        (("spec", "trafficPolicy", "connectionPool"), {}),
        (("spec", "trafficPolicy", "outlierDetection"), {"maxEjectionPercent": 101}),
        (("spec", "trafficPolicy", "connectionPool"), {"http": {"h2UpgradePolicy": "ALWAYS"}}),
        (
            ("spec", "trafficPolicy", "loadBalancer"),
            {"simple": "RANDOM", "consistentHash": {"useSourceIp": True}},
        ),
    ],
}


@st.composite
def _mistaken(draw: st.DrawFn) -> Doc:
    resource: Doc = draw(st.one_of(virtual_service(), destination_rule(), authorization_policy()))
    path, value = draw(st.sampled_from(_MISTAKES[resource["kind"]]))
    target = resource
    for key in path[:-1]:
        target = target.setdefault(key, {}) if isinstance(key, str) else target[key]
    target[path[-1]] = value
    if resource["kind"] == "AuthorizationPolicy" and path[0] == "metadata":
        resource["spec"]["action"] = "ALLOW"
    return resource


RESOURCES = st.one_of(virtual_service(), destination_rule(), authorization_policy(), _mistaken())


def cases(count: int) -> list[str]:
    """`count` generated resources, one YAML document each, the same on every run."""
    drawn: list[str] = []

    @settings(max_examples=count, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(RESOURCES)
    def collect(resource: Doc) -> None:
        drawn.append(yaml.safe_dump(resource, sort_keys=False))

    collect()
    return drawn
