"""Mirroring, header operations, CORS and consistent hashing, as istiod translates them
(tests/conformance compares every generated case with istiod; these pin the shapes)."""

from __future__ import annotations

from typing import Any

import pytest

from mesh.istio.loader import IstioConfigError
from tests.unit.test_translator import ORDER, cluster, dr, order_routes, proxies, vs


def test_mirror_copies_every_request_unless_a_percentage_says_otherwise() -> None:
    (route,) = order_routes(proxies(vs(
        "  - route: [{destination: {host: order-service, subset: v1}}]\n"
        "    mirror: {host: order-service, subset: v2}\n"
    )))  # fmt: skip
    (mirror,) = route["route"]["request_mirror_policies"]
    assert mirror["cluster"] == f"outbound|8080|v2|{ORDER}"
    assert mirror["runtime_fraction"] == {
        "default_value": {"numerator": 100, "denominator": "HUNDRED"}
    }
    (none,) = order_routes(proxies(vs(
        "  - route: [{destination: {host: order-service, subset: v1}}]\n"
        "    mirror: {host: order-service, subset: v2}\n    mirrorPercentage: {value: 0}\n"
    )))  # fmt: skip
    assert "request_mirror_policies" not in none["route"]


def test_headers_set_overwrite_add_appends_and_pseudo_headers_are_refused() -> None:
    (route,) = order_routes(proxies(vs(
        "  - route: [{destination: {host: order-service}}]\n"
        "    headers:\n      request: {set: {x-b: '1', x-a: '2'}, add: {x-c: '3'}}\n"
        "      response: {remove: [x-envoy-upstream-service-time]}\n"
    )))  # fmt: skip
    assert [(h["header"]["key"], h["append_action"]) for h in route["request_headers_to_add"]] == [
        ("x-a", "OVERWRITE_IF_EXISTS_OR_ADD"),
        ("x-b", "OVERWRITE_IF_EXISTS_OR_ADD"),
        ("x-c", "APPEND_IF_EXISTS_OR_ADD"),
    ]
    assert route["response_headers_to_remove"] == ["x-envoy-upstream-service-time"]
    with pytest.raises(IstioConfigError, match='header cannot have ":" prefix'):
        proxies(vs(
            "  - route: [{destination: {host: order-service}}]\n"
            "    headers: {request: {set: {':path': /x}}}\n"
        ))  # fmt: skip


def test_cors_policy_is_the_cors_filters_per_route_config() -> None:
    (route,) = order_routes(proxies(vs(
        "  - route: [{destination: {host: order-service}}]\n"
        "    corsPolicy: {allowOrigins: [{exact: 'https://shop.example'}],"
        " allowMethods: [GET, POST], maxAge: 24h, unmatchedPreflights: IGNORE}\n"
    )))  # fmt: skip
    policy: dict[str, Any] = route["typed_per_filter_config"]["envoy.filters.http.cors"]
    assert policy["allow_origin_string_match"] == [{"exact": "https://shop.example"}]
    assert policy["allow_methods"] == "GET,POST"
    assert policy["max_age"] == "86400"
    assert policy["forward_not_matching_preflights"] is False


def test_consistent_hash_builds_a_ring_and_keeps_retries_on_the_same_host() -> None:
    result = proxies(dr("    loadBalancer: {consistentHash: {httpHeaderName: x-user}}\n"))
    (route,) = order_routes(result)
    assert route["route"]["hash_policy"] == [{"header": {"header_name": "x-user"}}]
    assert "retry_host_predicate" not in route["route"]["retry_policy"]
    ring = cluster(result, "user-service-v1-0", f"outbound|8080|v1|{ORDER}")
    assert ring["lb_policy"] == "RING_HASH"
    assert ring["ring_hash_lb_config"] == {"minimum_ring_size": 1024}


def test_least_conn_is_least_request_and_remote_localities_a_retry_priority() -> None:
    result = proxies(dr("    loadBalancer: {simple: LEAST_CONN}\n"), vs(
        "  - route: [{destination: {host: order-service}}]\n"
        "    retries: {attempts: 3, retryRemoteLocalities: true}\n"
    ))  # fmt: skip
    assert cluster(result, "user-service-v1-0", f"outbound|8080||{ORDER}")["lb_policy"] == (
        "LEAST_REQUEST"
    )
    (route,) = order_routes(result)
    assert route["route"]["retry_policy"]["retry_priority"]["typed_config"]["update_frequency"] == 2
