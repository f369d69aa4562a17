"""The behaviour-carrying part of Envoy config, with the documented design differences
normalised away, so local mode's translation and istiod's can be compared field by field.

Normalised (docs/local-mesh.md, "Conformance"): route, virtual host and filter names,
decorators, metadata and Istio's stats-only fields (max_grpc_timeout, the per-route
`istio` metadata); everything compared is named below.
"""

from __future__ import annotations

from typing import Any

Config = dict[str, Any]

HCM_FIELDS = (
    "normalize_path",
    "merge_slashes",
    "path_with_escaped_slashes_action",
    "use_remote_address",
)
RETRY_FIELDS = (
    "retry_on", "num_retries", "per_try_timeout", "retriable_status_codes",
    "host_selection_retry_max_attempts",
)  # fmt: skip


def _bool(value: Any) -> bool:
    """BoolValue wrappers come as {"value": x} from one side and x from the other."""
    if isinstance(value, dict):
        return bool(value.get("value", False))
    return bool(value)


def hcm_behaviour(hcm: Config) -> Config:
    return {
        "normalize_path": _bool(hcm.get("normalize_path", False)),
        "merge_slashes": bool(hcm.get("merge_slashes", False)),
        "path_with_escaped_slashes_action": hcm.get(
            "path_with_escaped_slashes_action", "IMPLEMENTATION_SPECIFIC_DEFAULT"
        ),
        "use_remote_address": _bool(hcm.get("use_remote_address", False)),
    }


def _duration(value: str | None) -> float | None:
    return None if value is None else float(value.rstrip("s"))


def retry_behaviour(policy: Config | None) -> Config | None:
    if policy is None:
        return None
    predicates = policy.get("retry_host_predicate", [])
    return {
        # Envoy splits retry_on dropping empty tokens (StringUtil::splitToken): istiod's
        # ",retriable-status-codes" for a retryOn of status codes only is the same policy.
        "retry_on": sorted(t for t in policy.get("retry_on", "").split(",") if t),
        "num_retries": _bool_int(policy.get("num_retries", 1)),
        "per_try_timeout": _duration(policy.get("per_try_timeout")),
        "retriable_status_codes": sorted(policy.get("retriable_status_codes", [])),
        "host_selection_retry_max_attempts": int(
            policy.get("host_selection_retry_max_attempts", 0)
        ),
        "retry_host_predicate": sorted(p["name"] for p in predicates),
        "retry_priority": policy.get("retry_priority"),
    }


def _match(match: Config) -> Config:
    keys = ("prefix", "path", "safe_regex", "path_separated_prefix")
    out: Config = {k: match[k] for k in keys if k in match}
    if "safe_regex" in out:
        out["safe_regex"] = out["safe_regex"]["regex"]
    out["case_sensitive"] = _bool(match.get("case_sensitive", True))
    out["headers"] = sorted(
        (
            h["name"],
            repr(sorted(h.get("string_match", {}).items())),
            bool(h.get("present_match", False)),
            bool(h.get("invert_match", False)),
        )
        for h in match.get("headers", [])
    )
    return out


def _weights(route: Config) -> dict[str, int]:
    if "cluster" in route:
        return {route["cluster"]: 100}
    clusters = route["weighted_clusters"]["clusters"]
    return {c["name"]: int(_bool_int(c.get("weight", 0))) for c in clusters}


def _header_ops(entry: Config) -> Config:
    """Header mutations: (name, value, append action) in order, and removals."""
    out: Config = {}
    for key in ("request_headers_to_add", "response_headers_to_add"):
        out[key] = [
            (h["header"]["key"], h["header"].get("value", ""),
             h.get("append_action", "APPEND_IF_EXISTS_OR_ADD"))
            for h in entry.get(key, [])
        ]  # fmt: skip
    for key in ("request_headers_to_remove", "response_headers_to_remove"):
        out[key] = list(entry.get(key, []))
    return out


def _cluster_headers(route: Config) -> dict[str, Config]:
    clusters = route.get("weighted_clusters", {}).get("clusters", [])
    return {c["name"]: _header_ops(c) for c in clusters}


def _mirrors(route: Config) -> list[Config]:
    return [
        {"cluster": m["cluster"],
         "fraction": fraction(m.get("runtime_fraction", {}).get("default_value")),
         "trace_sampled": _bool(m.get("trace_sampled", True)),
         "disable_shadow_host_suffix_append": bool(m.get("disable_shadow_host_suffix_append"))}
        for m in route.get("request_mirror_policies", [])
    ]  # fmt: skip


def _hash(policy: Config) -> Config:
    if "cookie" in policy:
        cookie = dict(policy["cookie"])
        cookie["ttl"] = _duration(cookie.get("ttl"))
        return {"cookie": cookie}
    return policy


def _cors(policy: Config | None) -> Config | None:
    if policy is None:
        return None
    out = {k: v for k, v in policy.items() if k not in ("@type", "filter_enabled")}
    out["filter_enabled"] = fraction(policy.get("filter_enabled", {}).get("default_value"))
    for key in ("allow_credentials", "forward_not_matching_preflights"):
        if key in out:
            out[key] = _bool(out[key])
    return out


def _bool_int(value: Any) -> int:
    return int(value["value"]) if isinstance(value, dict) else int(value)


def route_behaviour(entry: Config) -> Config:
    """One route: what it matches and what it does with a request."""
    out: Config = {"match": _match(entry["match"])}
    if "direct_response" in entry:
        out["direct_response"] = entry["direct_response"].get("status")
        return out
    action = entry["route"]
    out["clusters"] = _weights(action)
    out["timeout"] = _duration(action.get("timeout"))
    out["prefix_rewrite"] = action.get("prefix_rewrite")
    out["retry"] = retry_behaviour(action.get("retry_policy"))
    per_filter = entry.get("typed_per_filter_config", {})
    out["fault"] = _fault(per_filter.get("envoy.filters.http.fault"))
    out["cors"] = _cors(per_filter.get("envoy.filters.http.cors"))
    out["headers"] = _header_ops(entry)
    out["cluster_headers"] = _cluster_headers(action)
    out["mirrors"] = _mirrors(action)
    out["hash_policy"] = [_hash(h) for h in action.get("hash_policy", [])]
    return out


_DENOMINATORS = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000}


def fraction(percent: Config | None) -> float:
    """A FractionalPercent as the share of requests it selects; absent selects none (Envoy's
    default for a fault's percentage), and JSON leaves out a 0 numerator and HUNDRED."""
    if not percent:
        return 0.0
    return int(percent.get("numerator", 0)) / _DENOMINATORS[percent.get("denominator", "HUNDRED")]


def _fault(fault: Config | None) -> Config | None:
    if not fault:
        return None
    out: Config = {}
    if "delay" in fault:
        delay = fault["delay"]
        out["delay"] = (_duration(delay["fixed_delay"]), fraction(delay.get("percentage")))
    if "abort" in fault:
        abort = fault["abort"]
        out["abort"] = (abort.get("http_status"), fraction(abort.get("percentage")))
    if "headers" in fault:
        out["headers"] = fault["headers"]
    return out


def _percent(value: Any) -> float | None:
    """A Percent message: absent is None (Envoy's default applies), {} is 0."""
    if value is None:
        return None
    return float(value.get("value", 0)) if isinstance(value, dict) else float(value)


def cluster_behaviour(cluster: Config) -> Config:
    """How a cluster balances, limits and ejects: everything but discovery and TLS plumbing."""
    thresholds = [
        {
            "max_connections": t.get("max_connections", 1024),
            "max_pending_requests": t.get("max_pending_requests", 1024),
            "max_requests": t.get("max_requests", 1024),
            "max_retries": t.get("max_retries", 3),
            "track_remaining": bool(t.get("track_remaining", False)),
        }
        for t in cluster.get("circuit_breakers", {}).get("thresholds", [])
    ]
    http_options = cluster.get("typed_extension_protocol_options", {}).get(
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", {}
    )
    common = http_options.get("common_http_protocol_options", {})
    outlier = cluster.get("outlier_detection")
    return {
        "lb_policy": cluster.get("lb_policy", "ROUND_ROBIN"),
        "lb_config": {
            k: {name: _bool_int(v) for name, v in cluster[k].items()}
            for k in ("ring_hash_lb_config", "maglev_lb_config", "least_request_lb_config")
            if k in cluster
        },
        "connect_timeout": _duration(cluster.get("connect_timeout")),
        "circuit_breakers": thresholds,
        "panic_threshold": _percent(
            cluster.get("common_lb_config", {}).get("healthy_panic_threshold")
        ),
        "max_requests_per_connection": common.get("max_requests_per_connection"),
        "idle_timeout": _duration(common.get("idle_timeout")),
        # Which upstream protocol config, and inside it which HTTP versions (h2UpgradePolicy).
        "protocol": {k: sorted(v) for k, v in http_options.items() if k.endswith("_config")},
        "outlier_detection": None if outlier is None else _outlier(outlier),
    }


def _outlier(outlier: Config) -> Config:
    def number(key: str, default: int) -> int:
        return _bool_int(outlier.get(key, default))

    return {
        "consecutive_5xx": number("consecutive_5xx", 5),
        "enforcing_consecutive_5xx": number("enforcing_consecutive_5xx", 100),
        "consecutive_gateway_failure": number("consecutive_gateway_failure", 5),
        "enforcing_consecutive_gateway_failure": number("enforcing_consecutive_gateway_failure", 0),
        "enforcing_success_rate": number("enforcing_success_rate", 100),
        "interval": _duration(outlier.get("interval", "10s")),
        "base_ejection_time": _duration(outlier.get("base_ejection_time", "30s")),
        "max_ejection_percent": number("max_ejection_percent", 10),
    }


# jwt_authn provider fields that differ by design, each with what a user sees differently.
# Local mode has no istiod to fetch and inline the keys; its Envoys fetch them as soon as the
# listener starts (remote_jwks.async_fetch with fast_listener) instead of on the first request
# with a token. A user sees the first token verified without that request waiting on the fetch.
JWT_REMOTE_JWKS_ALLOWED = {"async_fetch"}


def jwt_behaviour(config: Config) -> Config:
    providers = {}
    for name, provider in config.get("providers", {}).items():
        kept = dict(provider)
        if "remote_jwks" in kept:
            remote = kept["remote_jwks"]
            kept["remote_jwks"] = {
                k: v for k, v in remote.items() if k not in JWT_REMOTE_JWKS_ALLOWED
            }
        providers[name] = kept
    return {
        "providers": providers,
        "rules": config.get("rules", []),
        "bypass_cors_preflight": bool(config.get("bypass_cors_preflight", False)),
    }
