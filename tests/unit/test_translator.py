"""The Istio -> Envoy mapping, field by field, against golden fragments; and the rejections."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mesh.control.state import DEFAULT_FILES
from mesh.control.topology import build_topology
from mesh.envoy.common import CertPaths
from mesh.envoy.translate import Paths, ProxyConfig, translate
from mesh.istio.loader import IstioConfigError, MeshConfig, parse_documents
from mesh.paths import ISTIO_DIR

SERVICES = ("user-service", "catalog-service", "order-service")
ORDER = "order-service.meshmart.svc.cluster.local"
CERTS = CertPaths(Path("/certs"), Path("/ca/root-cert.pem"))
PATHS = Paths(Path("/proxies"))
TOPOLOGY = build_topology(
    {("user-service", "v1"): 1, ("catalog-service", "v1"): 1, ("order-service", "v1"): 2,
     ("order-service", "v2"): 1},
    SERVICES,
    Path("/sockets"),
    zipkin_port=9411,
)  # fmt: skip


def baseline(*extra: str) -> MeshConfig:
    config = MeshConfig()
    for name in DEFAULT_FILES:
        config.apply(parse_documents(ISTIO_DIR / name, (ISTIO_DIR / name).read_text()))
    for index, text in enumerate(extra):
        config.apply(parse_documents(Path(f"extra-{index}.yaml"), text))
    return config


def proxies(*extra: str) -> dict[str, ProxyConfig]:
    return translate(baseline(*extra), TOPOLOGY, CERTS, PATHS)


def order_routes(result: dict[str, ProxyConfig]) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = result["user-service-v1-0"].routes[f"outbound|8080||{ORDER}"][
        "virtual_hosts"
    ][0]["routes"]
    return routes


def cluster(result: dict[str, ProxyConfig], proxy: str, name: str) -> dict[str, Any]:
    return next(c for c in result[proxy].clusters if c["name"] == name)


def vs(http: str) -> str:
    return (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        "metadata: {name: order-service, namespace: meshmart}\n"
        f"spec:\n  hosts: [order-service]\n  http:\n{http}"
    )


def dr(traffic_policy: str) -> str:
    return (
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: order-service, namespace: meshmart}\n"
        f"spec:\n  host: order-service\n  trafficPolicy:\n{traffic_policy}"
        "  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n"
    )


def test_default_retry_policy_is_istios() -> None:
    route = order_routes(proxies())[0]["route"]
    assert route["cluster"] == f"outbound|8080|v1|{ORDER}"
    assert route["timeout"] == "0s"
    assert route["retry_policy"]["num_retries"] == 2
    assert route["retry_policy"]["retry_on"] == (
        "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    )
    assert "retriable_status_codes" not in route["retry_policy"]  # 503 is not retried
    assert route["retry_policy"]["retry_host_predicate"][0]["name"] == (
        "envoy.retry_host_predicates.previous_hosts"
    )


def test_weights_become_weighted_clusters() -> None:
    result = proxies(
        vs("  - route:\n    - {destination: {host: order-service, subset: v1}, weight: 90}\n"
           "    - {destination: {host: order-service, subset: v2}, weight: 10}\n")
    )  # fmt: skip
    assert order_routes(result)[0]["route"]["weighted_clusters"] == {
        "clusters": [
            {"name": f"outbound|8080|v1|{ORDER}", "weight": 90},
            {"name": f"outbound|8080|v2|{ORDER}", "weight": 10},
        ]
    }


def test_header_match_timeout_retries_and_fault() -> None:
    result = proxies(
        vs("  - match: [{headers: {x-canary: {exact: v2}}}]\n"
           "    route: [{destination: {host: order-service, subset: v2}}]\n"
           "    timeout: 0.5s\n"
           "    retries: {attempts: 3, perTryTimeout: 200ms, retryOn: '5xx,503'}\n"
           "    fault: {delay: {fixedDelay: 2s, percentage: {value: 50}},"
           " abort: {httpStatus: 503, percentage: {value: 12.5}}}\n"
           "  - route: [{destination: {host: order-service, subset: v1}}]\n")
    )  # fmt: skip
    canary, default = order_routes(result)
    assert canary["match"] == {
        "prefix": "/",
        "headers": [{"name": "x-canary", "string_match": {"exact": "v2"}}],
    }
    assert canary["route"]["timeout"] == "0.500s"
    assert canary["route"]["retry_policy"]["num_retries"] == 3
    assert canary["route"]["retry_policy"]["retry_on"] == "5xx,retriable-status-codes"
    assert canary["route"]["retry_policy"]["retriable_status_codes"] == [503]
    assert canary["route"]["retry_policy"]["per_try_timeout"] == "0.200s"
    fault = canary["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert fault["delay"] == {
        "fixed_delay": "2.000s",
        "percentage": {"numerator": 500000, "denominator": "MILLION"},
    }
    assert fault["abort"] == {
        "http_status": 503,
        "percentage": {"numerator": 125000, "denominator": "MILLION"},
    }
    assert "typed_per_filter_config" not in default


def test_zero_attempts_disables_retries() -> None:
    result = proxies(
        vs("  - route: [{destination: {host: order-service, subset: v1}}]\n"
           "    retries: {attempts: 0}\n")
    )  # fmt: skip
    assert "retry_policy" not in order_routes(result)[0]["route"]


def test_ingress_prefix_rewrite() -> None:
    result = proxies()
    routes = result["istio-ingressgateway"].routes["http.80"]["virtual_hosts"][0]["routes"]
    user = next(r for r in routes if r["match"].get("prefix") == "/user-service/")
    assert user["route"]["prefix_rewrite"] == "/"
    assert user["route"]["cluster"] == "outbound|8080||user-service.meshmart.svc.cluster.local"


def test_connection_pool_and_outlier_detection() -> None:
    result = proxies(
        dr("    connectionPool: {tcp: {maxConnections: 1},"
           " http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}}\n"
           "    outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s,"
           " maxEjectionPercent: 100}\n"
           "    loadBalancer: {simple: ROUND_ROBIN}\n")
    )  # fmt: skip
    v1 = cluster(result, "user-service-v1-0", f"outbound|8080|v1|{ORDER}")
    limits = v1["circuit_breakers"]["thresholds"][0]
    assert (limits["max_connections"], limits["max_pending_requests"]) == (1, 1)
    assert limits["max_requests"] == limits["max_retries"] == 4294967295  # Istio's defaults
    options = v1["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]
    assert options["common_http_protocol_options"] == {"max_requests_per_connection": 1}
    assert v1["outlier_detection"] == {
        "enforcing_success_rate": 0,
        "consecutive_5xx": 3,
        "enforcing_consecutive_5xx": 100,
        "interval": "1.000s",
        "base_ejection_time": "30.000s",
        "max_ejection_percent": 100,
    }
    assert v1["lb_policy"] == "ROUND_ROBIN"
    assert len(v1["load_assignment"]["endpoints"][0]["lb_endpoints"]) == 2  # two v1 replicas


def _upstream_protocol(policy: str, proxy: str = "user-service-v1-0") -> dict[str, object]:
    found = cluster(proxies(dr(policy)), proxy, f"outbound|8080|v1|{ORDER}")
    options = found.get("typed_extension_protocol_options", {})
    http = options.get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", {})
    return dict(http.get("explicit_http_config", {}))


def test_h2_upgrade_policy_chooses_the_upstream_protocol() -> None:
    assert _upstream_protocol("    connectionPool: {http: {h2UpgradePolicy: UPGRADE}}\n") == {
        "http2_protocol_options": {}
    }
    assert _upstream_protocol(  # the gateway's clusters follow the same rule
        "    connectionPool: {http: {h2UpgradePolicy: UPGRADE}}\n", "istio-ingressgateway"
    ) == {"http2_protocol_options": {}}
    for kept in ("DEFAULT", "DO_NOT_UPGRADE"):  # the mesh default: DO_NOT_UPGRADE
        assert (
            _upstream_protocol(f"    connectionPool: {{http: {{h2UpgradePolicy: {kept}}}}}\n") == {}
        )
    with_cap = (
        "    connectionPool: {http: {h2UpgradePolicy: DEFAULT, maxRequestsPerConnection: 2}}\n"
    )
    assert _upstream_protocol(with_cap) == {"http_protocol_options": {}}


def test_defaults_without_traffic_policy() -> None:
    v2 = cluster(proxies(), "user-service-v1-0", f"outbound|8080|v2|{ORDER}")
    assert v2["lb_policy"] == "LEAST_REQUEST"  # Istio's default
    assert "outlier_detection" not in v2
    tls = v2["transport_socket"]["typed_config"]["common_tls_context"]
    assert tls["validation_context"]["match_typed_subject_alt_names"] == [
        {
            "san_type": "URI",
            "matcher": {"exact": "spiffe://cluster.local/ns/meshmart/sa/order-service"},
        }
    ]
    assert (
        tls["tls_certificates"][0]["certificate_chain"]["filename"]
        == "/certs/user-service.cert.pem"
    )


def test_tls_disable_means_plaintext_upstream() -> None:
    result = proxies(dr("    tls: {mode: DISABLE}\n"))
    assert "transport_socket" not in cluster(
        result, "user-service-v1-0", f"outbound|8080|v1|{ORDER}"
    )


def test_peer_authentication_modes() -> None:
    strict = proxies()["order-service-v1-0"].listeners[0]
    assert strict["name"] == "virtualInbound" and len(strict["filter_chains"]) == 1
    tls = strict["filter_chains"][0]["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is True
    permissive = (ISTIO_DIR / "peer-authentication-mesh-permissive.yaml").read_text()
    chains = proxies(permissive)["order-service-v1-0"].listeners[0]["filter_chains"]
    assert [c["filter_chain_match"]["transport_protocol"] for c in chains] == ["tls", "raw_buffer"]


def _http_filters(listener: dict[str, Any]) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = listener["filter_chains"][0]["filters"][0]["typed_config"][
        "http_filters"
    ]
    return filters


def test_authorization_policy_becomes_rbac_on_spiffe_principals() -> None:
    filters = _http_filters(proxies()["catalog-service-v1-0"].listeners[0])
    rbac = next(f for f in filters if f["name"] == "envoy.filters.http.rbac.allow")
    policies = rbac["typed_config"]["rules"]["policies"]
    # One policy per ALLOW AuthorizationPolicy, named as istiod names them.
    assert set(policies) == {"ns[meshmart]-policy[catalog-service]-rule[0]",
                             "ns[meshmart]-policy[catalog-service-loadgen]-rule[0]"}  # fmt: skip
    policy = policies["ns[meshmart]-policy[catalog-service]-rule[0]"]
    # istiod's shape (authz/model): each principal an AND of fields, each field an OR.
    (source_principals,) = policy["principals"][0]["and_ids"]["ids"]
    principals = source_principals["or_ids"]["ids"]
    names = {p["authenticated"]["principal_name"]["exact"] for p in principals}
    assert names == {
        "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
        "spiffe://cluster.local/ns/meshmart/sa/order-service",
    }
    assert [f["name"] for f in filters][-3:] == [  # istiod's order
        "envoy.filters.http.fault",
        "envoy.filters.http.cors",
        "envoy.filters.http.router",
    ]


def test_request_authentication_becomes_jwt_authn_at_the_ingress() -> None:
    filters = _http_filters(proxies()["istio-ingressgateway"].listeners[0])
    assert [f["name"] for f in filters][:3] == [
        "envoy.filters.http.jwt_authn",
        "envoy.filters.http.rbac.allow",
        "envoy.filters.http.fault",
    ]
    jwt = filters[0]["typed_config"]
    provider = jwt["providers"]["origins-0"]
    assert provider["issuer"] == "meshmart-user-service"
    assert provider["remote_jwks"]["http_uri"]["cluster"] == (
        "outbound|8080||user-service.meshmart.svc.cluster.local"
    )
    # Missing tokens pass (RBAC decides); present but invalid tokens are 401 — Istio's split.
    assert jwt["rules"][0]["requires"]["requires_any"]["requirements"][-1] == {"allow_missing": {}}


def test_request_authentication_without_selector_verifies_in_every_sidecar() -> None:
    for name in ("user-service-v1-0", "catalog-service-v1-0", "order-service-v1-0"):
        filters = _http_filters(proxies()[name].listeners[0])
        # Istio's inbound order: authentication before authorization.
        assert [f["name"] for f in filters][:2] == [
            "envoy.filters.http.jwt_authn",
            "envoy.filters.http.rbac.allow",
        ]
        provider = filters[0]["typed_config"]["providers"]["origins-0"]
        # outputPayloadToHeader is Envoy's forward_payload_header; forwardOriginalToken: forward.
        assert provider["forward_payload_header"] == "x-jwt-payload"
        assert provider["forward"] is True


def test_every_connection_manager_normalises_paths_as_istiod_does() -> None:
    # istiod's buildHTTPConnectionManager for meshConfig DECODE_AND_MERGE_SLASHES.
    expected = {
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "UNESCAPE_AND_FORWARD",
    }
    managers = _managers(proxies())
    kinds = {hcm["stat_prefix"].split("_")[0] for hcm in managers}
    assert kinds == {"inbound", "outbound", "gateway"}
    for hcm in managers:
        assert {key: hcm.get(key) for key in expected} == expected, hcm["stat_prefix"]


def test_the_gateway_replaces_client_sent_certificate_details() -> None:
    hcm = proxies()["istio-ingressgateway"].listeners[0]["filter_chains"][0]["filters"][0]
    assert hcm["typed_config"]["forward_client_cert_details"] == "SANITIZE_SET"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (vs("  - route: [{destination: {host: order-service, subset: v1}}]\n"
            "    redirect: {uri: /elsewhere}\n"),
         "spec.http.0.redirect: not supported in local mode"),
        (vs("  - route: [{destination: {host: order-service, subset: v9}}]\n"),
         "no DestinationRule for order-service.meshmart.svc.cluster.local defines subset 'v9'"),
        (vs("  - route: [{destination: {host: payments}}]\n"), "'payments' is not a mesh service"),
        (vs("  - route:\n    - {destination: {host: order-service, subset: v1}, weight: 0}\n"
            "    - {destination: {host: order-service, subset: v2}}\n"),
         "total destination weight = 0"),
        (vs("  - route: [{destination: {host: order-service}}]\n    timeout: soon\n"),
         "'soon' is not a duration"),
        # Refused as istio's validation webhook refuses them (pkg/config/validation).
        (vs("  - route: [{destination: {host: order-service}}]\n"
            "    retries: {attempts: 2, retryOn: '5xx,not-a-policy'}\n"),
         "'not-a-policy' is not a valid retryOn policy"),
        (vs("  - route: [{destination: {host: order-service}}]\n"
            "    retries: {attempts: 0, retryOn: 5xx}\n"),
         "http retry policy configured when attempts are set to 0 (disabled)"),
        (vs("  - route: [{destination: {host: order-service}}]\n"
            "    retries: {attempts: 0, perTryTimeout: 1s}\n"),
         "http retry policy configured when attempts are set to 0 (disabled)"),
        (vs("  - route: [{destination: {host: order-service}}]\n    fault: {}\n"),
         "HTTP fault injection must have an abort and/or a delay"),
        ("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec: {}\n",
         "kind 'ServiceEntry' not supported"),
        ("apiVersion: networking.istio.io/v1alpha9\nkind: VirtualService\nmetadata: {name: x}\n",
         "apiVersion must be one of"),
    ],
)  # fmt: skip
def test_rejections_name_file_resource_and_field(text: str, message: str) -> None:
    with pytest.raises(IstioConfigError) as info:
        proxies(text)
    assert message in str(info.value)
    assert "extra-0.yaml" in str(info.value) or "VirtualService meshmart/order-service" in str(
        info.value
    )


def test_every_scenario_file_is_inside_the_supported_subset() -> None:
    for path in sorted(ISTIO_DIR.glob("*.yaml")):
        proxies(path.read_text())  # raises with file and field on anything unsupported


def test_empty_matches_mean_present_header_and_any_path() -> None:
    """istiod's translateHeaderMatch and uri handling (tests/conformance checks the same)."""
    text = vs(
        "  - match: [{headers: {end-user: {}}, uri: {}, method: {}}]\n"
        "    route: [{destination: {host: order-service, subset: v2}}]\n"
        "  - route: [{destination: {host: order-service, subset: v1}}]\n"
    )
    first = order_routes(proxies(text))[0]["match"]
    assert first == {
        "prefix": "/",
        "headers": [
            {"name": "end-user", "present_match": True},
            {"name": ":method", "present_match": True},
        ],
    }


# --- mappings the istiod comparison found (tests/conformance proves each against istiod) ----


def test_weights_split_by_their_total_and_zero_weights_are_left_out() -> None:
    route = order_routes(proxies(vs(
        "  - route:\n    - {destination: {host: order-service, subset: v1}, weight: 60}\n"
        "    - {destination: {host: order-service, subset: v2}, weight: 60}\n"
        "    - {destination: {host: order-service}, weight: 0}\n"
    )))[0]["route"]  # fmt: skip
    assert route["weighted_clusters"]["clusters"] == [
        {"name": f"outbound|8080|v1|{ORDER}", "weight": 60},
        {"name": f"outbound|8080|v2|{ORDER}", "weight": 60},
    ]


def test_a_fault_without_percentage_injects_into_no_request() -> None:
    (route,) = order_routes(proxies(vs(
        "  - route: [{destination: {host: order-service}}]\n"
        "    fault: {delay: {fixedDelay: 1s}, abort: {httpStatus: 503}}\n"
    )))  # fmt: skip
    fault = route["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert fault["delay"]["percentage"] == {"numerator": 0, "denominator": "HUNDRED"}
    assert "percentage" not in fault["abort"]  # Envoy's default: 0


def test_nothing_after_a_catch_all_route_is_sent() -> None:
    routes = order_routes(proxies(vs(
        "  - match: [{uri: {prefix: /}}, {headers: {x-canary: {exact: v2}}}]\n"
        "    route: [{destination: {host: order-service, subset: v1}}]\n"
        "  - route: [{destination: {host: order-service, subset: v2}}]\n"
    )))  # fmt: skip
    assert [r["match"] for r in routes] == [{"prefix": "/"}]


def _rbac(*extra: str) -> dict[str, dict[str, Any]]:
    filters = _http_filters(proxies(*extra)["catalog-service-v1-0"].listeners[0])
    return {
        f["name"]: f["typed_config"]
        for f in filters
        if f["name"].startswith("envoy.filters.http.rbac")
    }


def policy(name: str, spec: str, annotations: str = "{}") -> str:
    return (
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        f"metadata: {{name: {name}, namespace: meshmart, annotations: {annotations}}}\n"
        f"spec:\n  selector: {{matchLabels: {{app: catalog-service}}}}\n{spec}"
    )


def test_dry_run_policies_are_shadow_rules_and_audit_is_envoys_log() -> None:
    filters = _rbac(
        policy("dry", "  action: DENY\n  rules: [{}]\n", "{istio.io/dry-run: 'true'}"),
        policy("audit", "  action: AUDIT\n  rules: [{}]\n"),
    )
    # istiod's order: AUDIT, DENY, ALLOW.
    assert list(filters) == [f"envoy.filters.http.rbac.{a}" for a in ("audit", "deny", "allow")]
    deny = filters["envoy.filters.http.rbac.deny"]
    assert "rules" not in deny  # nothing enforced
    assert deny["shadow_rules"]["action"] == "DENY"
    assert list(deny["shadow_rules"]["policies"]) == ["ns[meshmart]-policy[dry]-rule[0]"]
    assert filters["envoy.filters.http.rbac.audit"]["rules"]["action"] == "LOG"


def test_path_templates_and_wildcards_map_as_istiod_maps_them() -> None:
    filters = _rbac(policy("t", (
        "  rules:\n  - from: [{source: {principals: ['*/sa/order-service'],"
        " requestPrincipals: ['*']}}]\n"
        "    to: [{operation: {paths: ['/catalogs/{*}'], methods: ['P*']}}]\n"
    )))  # fmt: skip
    policies = filters["envoy.filters.http.rbac.allow"]["rules"]["policies"]
    rule = policies["ns[meshmart]-policy[t]-rule[0]"]
    method, path = rule["permissions"][0]["and_rules"]["rules"]
    assert method == {"or_rules": {"rules": [
        {"header": {"name": ":method", "string_match": {"prefix": "P"}}}
    ]}}  # fmt: skip
    template = path["or_rules"]["rules"][0]["uri_template"]["typed_config"]["path_template"]
    assert template == "/catalogs/*"
    principal, request_principal = rule["principals"][0]["and_ids"]["ids"]
    name = principal["or_ids"]["ids"][0]["authenticated"]["principal_name"]
    # Go's regexp.QuoteMeta leaves '-' alone (Python's re.escape would not).
    assert name == {"safe_regex": {"regex": "spiffe://.*/sa/order-service"}}
    # `*` needs both an issuer and a subject, as istiod requires.
    claims = [i["metadata"]["path"][1]["key"] for i in request_principal["and_ids"]["ids"]]
    assert claims == ["iss", "sub"]


JWKS = "http://user-service.meshmart.svc.cluster.local:8080/.well-known/jwks.json"


def request_authentication(name: str, app: str, rule: str) -> str:
    return (
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
        f"metadata: {{name: {name}, namespace: meshmart}}\n"
        f"spec:\n  selector: {{matchLabels: {{app: {app}}}}}\n"
        f"  jwtRules:\n  - {{issuer: meshmart-user-service, jwksUri: '{JWKS}', {rule}}}\n"
    )


def test_audiences_and_token_locations_map_as_istiod_maps_them() -> None:
    jwt = _http_filters(proxies(request_authentication("aud", "order-service", (
        "audiences: [meshmart-orders], fromParams: [token],"
        " fromHeaders: [{name: x-meshmart-token, prefix: 'Token '}, {name: x-raw}]"
    )))["order-service-v1-0"].listeners[0])[0]["typed_config"]  # fmt: skip
    # services-jwt (the namespace's, older) first, then the workload's: same issuer.
    plain, narrowed = jwt["providers"]["origins-0"], jwt["providers"]["origins-1"]
    assert plain["forward"] is True and "audiences" not in plain and "from_headers" not in plain
    assert narrowed["audiences"] == ["meshmart-orders"]
    # Explicit locations replace Envoy's default Authorization header (istiod adds nothing).
    assert narrowed["from_headers"] == [
        {"name": "x-meshmart-token", "value_prefix": "Token "}, {"name": "x-raw"}
    ]  # fmt: skip
    assert narrowed["from_params"] == ["token"]
    assert "forward" not in narrowed  # forwardOriginalToken false: left out, as istiod does
    # Several providers: any one valid token, or each provider's token valid or missing.
    either = jwt["rules"][0]["requires"]["requires_any"]["requirements"]
    assert either[:2] == [{"provider_name": "origins-0"}, {"provider_name": "origins-1"}]
    assert either[2]["requires_all"]["requirements"][1] == {"requires_any": {"requirements": [
        {"provider_name": "origins-1"}, {"allow_missing": {}}
    ]}}  # fmt: skip


def peer_authentication(name: str, labels: str, spec: str) -> str:
    return (
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
        f"metadata: {{name: {name}, namespace: meshmart}}\n"
        f"spec:\n  selector: {{matchLabels: {labels}}}\n{spec}"
    )


def _inbound_transports(result: dict[str, ProxyConfig], proxy: str) -> list[str]:
    (listener,) = [x for x in result[proxy].listeners if x["name"] == "virtualInbound"]
    return [
        c.get("filter_chain_match", {}).get("transport_protocol", "tls")
        for c in listener["filter_chains"]
    ]


def test_port_level_mtls_decides_the_app_port_only() -> None:
    result = proxies(
        peer_authentication("catalog", "{app: catalog-service}",
                            "  portLevelMtls: {8080: {mode: PERMISSIVE}}\n"),
        peer_authentication("order", "{app: order-service}", "  mtls: {mode: PERMISSIVE}\n"
                            "  portLevelMtls: {9090: {mode: STRICT}}\n"),
        peer_authentication("user", "{app: user-service}",
                            "  mtls: {mode: PERMISSIVE}\n  portLevelMtls: {8080: {}}\n"),
    )  # fmt: skip
    # Under the namespace's STRICT, port 8080 PERMISSIVE takes plaintext too.
    assert _inbound_transports(result, "catalog-service-v1-0") == ["tls", "raw_buffer"]
    # Another port has no listener in local mode: the workload's mode stays.
    assert _inbound_transports(result, "order-service-v1-0") == ["tls", "raw_buffer"]
    # UNSET on the port keeps the workload's mode.
    assert _inbound_transports(result, "user-service-v1-0") == ["tls", "raw_buffer"]


def test_the_oldest_workload_peer_authentication_wins() -> None:
    # As istiod (ComposePeerAuthentication): one policy per scope, the first created; its
    # UNSET inherits from the namespace (STRICT), not from the other workload policy.
    older = peer_authentication("z-older", "{app: catalog-service}", "  mtls: {}\n")
    newer = peer_authentication("a-newer", "{app: catalog-service}", "  mtls: {mode: PERMISSIVE}\n")
    assert _inbound_transports(proxies(older, newer), "catalog-service-v1-0") == ["tls"]
    assert _inbound_transports(proxies(newer, older), "catalog-service-v1-0") == [
        "tls", "raw_buffer"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (peer_authentication("p", "{}", "  portLevelMtls: {8080: {mode: STRICT}}\n"),
         "portLevelMtls: mesh/namespace peer authentication cannot have port level mTLS"),
        (peer_authentication("p", "{app: x}", "  portLevelMtls: {70000: {mode: STRICT}}\n"),
         "portLevelMtls: port must be in range 1..65535"),
        (peer_authentication("p", "{app: x}", "  portLevelMtls: {8080: {mode: DISABLE}}\n"),
         "spec.portLevelMtls.8080.mode: Input should be 'STRICT', 'PERMISSIVE' or 'UNSET'"),
        (request_authentication("r", "x", "audiences: ['']"),
         "spec.jwtRules.0.audiences.0: String should have at least 1 character"),
        (request_authentication("r", "x", "fromHeaders: [{prefix: 'Bearer '}]"),
         "spec.jwtRules.0.fromHeaders.0.name: Field required"),
        (request_authentication("r", "x", "fromCookies: [session]"),
         "spec.jwtRules.0.fromCookies: not supported in local mode"),
    ],
)  # fmt: skip
def test_security_field_refusals_name_the_field(text: str, message: str) -> None:
    with pytest.raises(IstioConfigError) as info:
        proxies(text)
    assert message in str(info.value)


def _managers(result: dict[str, ProxyConfig]) -> list[dict[str, Any]]:
    return [
        chain["filters"][0]["typed_config"]
        for proxy in result.values()
        for listener in proxy.listeners
        for chain in listener["filter_chains"]
    ]


@pytest.mark.parametrize("percent", [1.0, 100.0])
def test_every_proxy_samples_new_traces_at_the_meshs_rate(percent: float) -> None:
    topology = replace(TOPOLOGY, trace_sampling_percent=percent)
    managers = _managers(translate(baseline(), topology, CERTS, PATHS))
    assert len(managers) > 3
    for hcm in managers:
        assert hcm["tracing"]["random_sampling"] == {"value": percent}, hcm["stat_prefix"]
        assert hcm["tracing"]["provider"]["name"] == "envoy.tracers.zipkin"


def test_no_zipkin_means_no_tracing() -> None:
    topology = replace(TOPOLOGY, zipkin_port=None)
    assert all(
        "tracing" not in hcm for hcm in _managers(translate(baseline(), topology, CERTS, PATHS))
    )
