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
        "retry_on": sorted(policy.get("retry_on", "").split(",")),
        "num_retries": _bool_int(policy.get("num_retries", 1)),
        "per_try_timeout": _duration(policy.get("per_try_timeout")),
        "retriable_status_codes": sorted(policy.get("retriable_status_codes", [])),
        "host_selection_retry_max_attempts": int(
            policy.get("host_selection_retry_max_attempts", 0)
        ),
        "retry_host_predicate": sorted(p["name"] for p in predicates),
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
    fault = entry.get("typed_per_filter_config", {}).get("envoy.filters.http.fault")
    out["fault"] = _fault(fault)
    return out


def _fault(fault: Config | None) -> Config | None:
    if not fault:
        return None
    out: Config = {}
    if "delay" in fault:
        out["delay"] = (_duration(fault["delay"]["fixed_delay"]), fault["delay"].get("percentage"))
    if "abort" in fault:
        out["abort"] = (fault["abort"].get("http_status"), fault["abort"].get("percentage"))
    if "headers" in fault:
        out["headers"] = fault["headers"]
    return out
