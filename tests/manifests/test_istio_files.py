"""The Istio resources in istio/: conventions, the local-mode field subset, and the real istioctl.

The first half needs nothing but PyYAML: every file parses, follows the naming and header
conventions, uses only the fields local mode translates, and every applicable state (the
default set plus one scenario file) has resolvable hosts, subsets, gateways and principals.
`istioctl analyze --use-kube=false` cannot check those references itself: in file-only mode it
drops Service, Namespace, Pod, Node and Secret objects, so its host/selector analyzers are
skipped (`istioctl analyze -v` lists them), and Kubernetes stubs would not change that.

The second half runs the real istioctl (tools/istioctl/build.sh): `istioctl validate` per file and
`istioctl analyze --use-kube=false -A` over every state and over all files at once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh.control.state import DEFAULT_FILES
from mesh.envoy.common import PATH_NORMALIZATION
from mesh.load.plan import SHOP
from mesh.paths import CACHE_DIR
from mesh.paths import REPO_ROOT as REPO

ISTIO_DIR = REPO / "istio"
TOOLS_DIR = REPO / "tools" / "istioctl"
BUILD_COMMAND = "tools/istioctl/build.sh"

FILES = sorted(p.name for p in ISTIO_DIR.glob("*.yaml"))
# Applied by default, in this order (istio/README.md): the list `meshmart run` applies.
SCENARIO_FILES = tuple(f for f in FILES if f not in DEFAULT_FILES)

NAMESPACE = "meshmart"
SERVICES = ("user-service", "catalog-service", "order-service")
INGRESS_SELECTOR = {"istio": "ingressgateway"}
INGRESS_PRINCIPAL = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
# Workload identities that exist: one ServiceAccount per service, the ingress, the load generator.
KNOWN_PRINCIPALS = frozenset(
    {
        INGRESS_PRINCIPAL,
        "cluster.local/ns/meshmart/sa/fortio",
        "cluster.local/ns/meshmart/sa/loadgen",
    }
    | {f"cluster.local/ns/{NAMESPACE}/sa/{s}" for s in SERVICES}
)
API_VERSIONS = {
    "VirtualService": "networking.istio.io/v1",
    "DestinationRule": "networking.istio.io/v1",
    "Gateway": "networking.istio.io/v1",
    "PeerAuthentication": "security.istio.io/v1",
    "RequestAuthentication": "security.istio.io/v1",
    "AuthorizationPolicy": "security.istio.io/v1",
}

# istioctl warnings we accept, with the reason: (file, resource as istioctl names it, message
# part). None today: the ingress policy is an ALLOW with positive matching, which istioctl
# accepts without the TCP warning the former DENY rule drew.
ALLOWED_WARNINGS: set[tuple[str, str, str]] = set()

Doc = dict[str, Any]


@cache
def load(name: str) -> tuple[Doc, ...]:
    with (ISTIO_DIR / name).open(encoding="utf-8") as fh:
        return tuple(yaml.safe_load_all(fh))


def header(name: str) -> str:
    lines = (ISTIO_DIR / name).read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in _leading_comments(lines))


def _leading_comments(lines: list[str]) -> Iterator[str]:
    for line in lines:
        if not line.startswith("#"):
            return
        yield line


def test_the_expected_files_exist() -> None:
    required = {
        *DEFAULT_FILES,
        "peer-authentication-mesh-permissive.yaml",
        "virtual-service-order-v2.yaml",
        "virtual-service-order-90-10.yaml",
        "virtual-service-order-50-50.yaml",
        "virtual-service-order-header-canary.yaml",
        "virtual-service-order-test-delay.yaml",
        "virtual-service-order-test-abort.yaml",
        "virtual-service-order-abort-50.yaml",
        "virtual-service-order-abort-50-retry.yaml",
        "virtual-service-order-timeout.yaml",
        "virtual-service-order-test-delay-header.yaml",
        "virtual-service-order-retries.yaml",
        "destination-rule-order-circuit-breaker.yaml",
        "destination-rule-order-outlier-detection.yaml",
    }
    assert required <= set(FILES), f"missing: {sorted(required - set(FILES))}"


# --- every file, without istioctl ----------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_file_parses_with_kind_version_name_and_namespace(name: str) -> None:
    docs = load(name)
    assert docs, f"{name}: no YAML documents"
    for i, doc in enumerate(docs):
        where = f"{name} document {i}"
        assert isinstance(doc, dict), f"{where}: not a mapping (empty document?)"
        kind = doc.get("kind")
        assert kind in API_VERSIONS, f"{where}: kind {kind!r} is not one local mode translates"
        assert doc.get("apiVersion") == API_VERSIONS[kind], f"{where}: apiVersion"
        meta = doc.get("metadata") or {}
        assert isinstance(meta.get("name"), str) and meta["name"], f"{where}: metadata.name"
        namespace = meta.get("namespace")
        assert namespace in (NAMESPACE, "istio-system"), f"{where}: metadata.namespace"
        if namespace == "istio-system":  # only policies that must live with the ingress gateway
            labels = (doc.get("spec") or {}).get("selector", {}).get("matchLabels")
            assert labels == INGRESS_SELECTOR, f"{where}: istio-system only for ingress policies"
        assert isinstance(doc.get("spec"), dict), f"{where}: spec"


@pytest.mark.parametrize("name", FILES)
def test_file_starts_with_a_comment_on_what_it_shows_and_how_to_apply_and_revert(
    name: str,
) -> None:
    text = header(name)
    assert text.count("\n") >= 3, f"{name}: needs a leading comment block"
    assert f"kubectl apply -f istio/{name}" in text, f"{name}: how to apply (kubectl)"
    assert f"meshmart apply -f istio/{name}" in text, f"{name}: how to apply (local mode)"
    assert "Revert:" in text, f"{name}: how to revert"
    assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)+\.yaml", name), f"{name}: Bookinfo-style name"
    kind_prefix = {
        "virtual-service": "VirtualService",
        "destination-rule": "DestinationRule",
        "gateway": "Gateway",
        "peer-authentication": "PeerAuthentication",
        "request-authentication": "RequestAuthentication",
        "authorization-policy": "AuthorizationPolicy",
    }
    prefix = next(p for p in kind_prefix if name.startswith(p + "-"))
    assert kind_prefix[prefix] in {d["kind"] for d in load(name)}, f"{name}: named after a kind"


# The Istio API subset local mode translates (it rejects anything else, naming file and field).
class Enum(frozenset[str]):
    pass


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class MapOf:
    value: Any


DURATION = "duration"
NUMBER = "number"
STRING_MATCH = {"exact": str, "prefix": str, "regex": str}
PERCENT = {"value": NUMBER}
TRAFFIC_POLICY = {
    "connectionPool": {
        "tcp": {"maxConnections": int},
        "http": {
            "http1MaxPendingRequests": int,
            "http2MaxRequests": int,
            "maxRequestsPerConnection": int,
            "maxRetries": int,
            "h2UpgradePolicy": str,
        },
    },
    "outlierDetection": {
        "consecutive5xxErrors": int,
        "consecutiveGatewayErrors": int,
        "interval": DURATION,
        "baseEjectionTime": DURATION,
        "maxEjectionPercent": int,
    },
    "loadBalancer": {"simple": Enum({"ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"})},
    "tls": {"mode": Enum({"ISTIO_MUTUAL", "DISABLE"})},
}
SELECTOR = {"matchLabels": MapOf(str)}
SPECS: dict[str, Any] = {
    "VirtualService": {
        "hosts": ListOf(str),
        "gateways": ListOf(str),
        "http": ListOf(
            {
                "name": str,
                "match": ListOf(
                    {"uri": STRING_MATCH, "headers": MapOf(STRING_MATCH), "method": {"exact": str}}
                ),
                "rewrite": {"uri": str},
                "route": ListOf(
                    {
                        "destination": {"host": str, "subset": str, "port": {"number": int}},
                        "weight": int,
                    }
                ),
                "timeout": DURATION,
                "retries": {"attempts": int, "perTryTimeout": DURATION, "retryOn": str},
                "fault": {
                    "delay": {"fixedDelay": DURATION, "percentage": PERCENT},
                    "abort": {"httpStatus": int, "percentage": PERCENT},
                },
            }
        ),
    },
    "DestinationRule": {
        "host": str,
        "trafficPolicy": TRAFFIC_POLICY,
        "subsets": ListOf({"name": str, "labels": MapOf(str), "trafficPolicy": TRAFFIC_POLICY}),
    },
    "Gateway": {
        "selector": MapOf(str),
        "servers": ListOf(
            {
                "port": {"number": int, "name": str, "protocol": Enum({"HTTP"})},
                "hosts": ListOf(str),
            }
        ),
    },
    "PeerAuthentication": {
        "selector": SELECTOR,
        "mtls": {"mode": Enum({"STRICT", "PERMISSIVE"})},
    },
    "RequestAuthentication": {
        "selector": SELECTOR,
        "jwtRules": ListOf(
            {
                "issuer": str,
                "jwksUri": str,
                "forwardOriginalToken": bool,
                "outputPayloadToHeader": str,
            }
        ),
    },
    "AuthorizationPolicy": {
        "selector": SELECTOR,
        "action": Enum({"ALLOW", "DENY"}),
        "rules": ListOf(
            {
                "from": ListOf(
                    {
                        "source": {
                            key: ListOf(str)
                            for key in (
                                "principals",
                                "notPrincipals",
                                "requestPrincipals",
                                "notRequestPrincipals",
                            )
                        }
                    }
                ),
                "to": ListOf(
                    {
                        "operation": {
                            key: ListOf(str)
                            for key in ("methods", "notMethods", "paths", "notPaths")
                        }
                    }
                ),
            }
        ),
    },
}


def unsupported_fields(value: Any, spec: Any, path: str) -> Iterator[str]:
    if isinstance(spec, Enum):
        if value not in spec:
            yield f"{path}: {value!r} not one of {sorted(spec)}"
    elif spec == DURATION:
        if not (isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?(ms|s|m|h)", value)):
            yield f"{path}: {value!r} is not a duration like 0.5s or 250ms"
    elif spec == NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            yield f"{path}: {value!r} is not a number"
    elif spec in (str, int, bool):
        if type(value) is not spec:
            yield f"{path}: {value!r} is not {spec.__name__}"
    elif isinstance(spec, ListOf):
        if not isinstance(value, list) or not value:
            yield f"{path}: expected a non-empty list"
            return
        for i, item in enumerate(value):
            yield from unsupported_fields(item, spec.item, f"{path}[{i}]")
    elif isinstance(spec, MapOf):
        if not isinstance(value, dict) or not value:
            yield f"{path}: expected a non-empty mapping"
            return
        for key, item in value.items():
            yield from unsupported_fields(item, spec.value, f"{path}.{key}")
    else:
        if not isinstance(value, dict):
            yield f"{path}: expected a mapping"
            return
        for key, item in value.items():
            if key not in spec:
                yield f"{path}.{key}: not in the subset local mode translates"
            else:
                yield from unsupported_fields(item, spec[key], f"{path}.{key}")


@pytest.mark.parametrize("name", FILES)
def test_file_uses_only_fields_local_mode_translates(name: str) -> None:
    problems = []
    for doc in load(name):
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        extra = set(doc) - {"apiVersion", "kind", "metadata", "spec"}
        extra |= {f"metadata.{k}" for k in set(doc["metadata"]) - {"name", "namespace"}}
        problems += [f"{where}: {k}: not supported" for k in sorted(extra)]
        problems += [
            f"{where}: {p}" for p in unsupported_fields(doc["spec"], SPECS[doc["kind"]], "spec")
        ]
        for stringmatch in _string_matches(doc):
            if len(stringmatch) != 1:
                problems.append(f"{where}: a match needs exactly one of exact/prefix/regex")
    assert not problems, f"{name}:\n" + "\n".join(problems)


def _string_matches(doc: Doc) -> Iterator[Mapping[str, Any]]:
    if doc["kind"] != "VirtualService":
        return
    for route in doc["spec"].get("http", []):
        for match in route.get("match", []):
            if "uri" in match:
                yield match["uri"]
            yield from match.get("headers", {}).values()


def test_mesh_virtual_services_are_named_after_their_host() -> None:
    """Applying any scenario replaces the previous one (Bookinfo's `reviews` pattern)."""
    for name in FILES:
        for doc in load(name):
            if doc["kind"] != "VirtualService" or doc["spec"].get("gateways"):
                continue
            hosts = doc["spec"]["hosts"]
            assert len(hosts) == 1 and hosts[0] in SERVICES, f"{name}: one service host"
            assert doc["metadata"]["name"] == hosts[0], f"{name}: VirtualService for {hosts[0]}"
            assert doc["metadata"]["namespace"] == NAMESPACE
            for route in doc["spec"]["http"]:
                for dest in route["route"]:
                    assert dest["destination"]["host"] == hosts[0], f"{name}: routes elsewhere"


def test_destination_rules_keep_subsets_and_istio_mutual() -> None:
    for name in FILES:
        for doc in load(name):
            if doc["kind"] != "DestinationRule":
                continue
            spec = doc["spec"]
            assert spec["host"] in SERVICES and doc["metadata"]["name"] == spec["host"], name
            assert spec["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL", name
            subsets = {s["name"]: s["labels"] for s in spec["subsets"]}
            assert subsets == {"v1": {"version": "v1"}, "v2": {"version": "v2"}}, name


def test_scenarios_touching_order_service_define_the_order_service_virtual_service() -> None:
    for name in SCENARIO_FILES:
        if name.startswith("virtual-service-order-"):
            names = {d["metadata"]["name"] for d in load(name) if d["kind"] == "VirtualService"}
            assert "order-service" in names, name


# --- every applicable state: defaults + one scenario ---------------------------------------

State = dict[tuple[str, str, str], Doc]


def state_of(files: tuple[str, ...]) -> State:
    """The resources after `kubectl apply -f` of each file in order (same name replaces)."""
    state: State = {}
    for name in files:
        for doc in load(name):
            key = (doc["kind"], doc["metadata"]["namespace"], doc["metadata"]["name"])
            state[key] = doc
    return state


STATES = {"default": DEFAULT_FILES} | {s: (*DEFAULT_FILES, s) for s in SCENARIO_FILES}


def _of_kind(state: State, kind: str) -> list[Doc]:
    return [doc for (k, _, _), doc in state.items() if k == kind]


@pytest.mark.parametrize("state_name", list(STATES))
def test_references_resolve(state_name: str) -> None:
    """Hosts, subsets, gateways, selectors and principals exist: what analyze skips offline."""
    state = state_of(STATES[state_name])
    subsets = {
        doc["spec"]["host"]: {s["name"] for s in doc["spec"].get("subsets", [])}
        for doc in _of_kind(state, "DestinationRule")
    }
    gateways = {doc["metadata"]["name"] for doc in _of_kind(state, "Gateway")}
    problems = []
    for vs in _of_kind(state, "VirtualService"):
        where = f"VirtualService/{vs['metadata']['name']}"
        problems += [
            f"{where}: gateway {g}" for g in vs["spec"].get("gateways", ()) if g not in gateways
        ]
        for route in vs["spec"]["http"]:
            for dest in (r["destination"] for r in route["route"]):
                if dest["host"] not in SERVICES:
                    problems.append(f"{where}: unknown host {dest['host']}")
                elif "subset" in dest and dest["subset"] not in subsets.get(dest["host"], ()):
                    problems.append(f"{where}: no subset {dest['host']}/{dest['subset']}")
                port = dest.get("port", {}).get("number", 8080)
                if port != 8080:
                    problems.append(f"{where}: {dest['host']} has port 8080 only")
    for kind in ("AuthorizationPolicy", "RequestAuthentication", "PeerAuthentication"):
        for doc in _of_kind(state, kind):
            labels = doc["spec"].get("selector", {}).get("matchLabels")
            ok = (
                labels is None
                or labels == INGRESS_SELECTOR
                or labels in ({"app": s} for s in SERVICES)
            )
            if not ok:
                problems.append(f"{kind}/{doc['metadata']['name']}: selector {labels}")
    for doc in _of_kind(state, "Gateway"):
        if doc["spec"]["selector"] != INGRESS_SELECTOR:
            problems.append(f"Gateway/{doc['metadata']['name']}: not the default ingress")
    for doc in _of_kind(state, "AuthorizationPolicy"):
        for rule in doc["spec"].get("rules", ()):
            for source in (f["source"] for f in rule.get("from", ())):
                for principal in source.get("principals", []) + source.get("notPrincipals", []):
                    if principal not in KNOWN_PRINCIPALS:
                        problems.append(f"AuthorizationPolicy: unknown principal {principal}")
    assert not problems, "\n".join(problems)


# --- Istio semantics the files rely on (and the local-mode translator must reproduce) ------


def envoy_prefix_rewrite(path: str, prefix: str, replacement: str) -> str | None:
    """Envoy's route prefix match + prefix_rewrite (Istio's `uri.prefix` + `rewrite.uri`)."""
    return replacement + path[len(prefix) :] if path.startswith(prefix) else None


def ingress_route(path: str) -> tuple[str, str] | None:
    """(host, rewritten path) for `path` at the ingress, first matching route wins."""
    (vs,) = [d for d in load("gateway-meshmart.yaml") if d["kind"] == "VirtualService"]
    for route in vs["spec"]["http"]:
        (match,) = route["match"]
        rewritten = envoy_prefix_rewrite(path, match["uri"]["prefix"], route["rewrite"]["uri"])
        if rewritten is not None:
            return route["route"][0]["destination"]["host"], rewritten
    return None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/user-service/users", ("user-service", "/users")),
        ("/user-service/users/u-1", ("user-service", "/users/u-1")),
        ("/user-service/login", ("user-service", "/login")),
        ("/user-service/", ("user-service", "/")),
        ("/catalog-service/catalogs/CATALOG-001", ("catalog-service", "/catalogs/CATALOG-001")),
        ("/order-service/u-1/orders", ("order-service", "/u-1/orders")),
        ("/user-service", None),  # no trailing slash: no route (404), as the seed
        ("/user-servicex/users", None),
        ("/users", None),
    ],
)
def test_ingress_strips_the_service_prefix(path: str, expected: tuple[str, str] | None) -> None:
    vs = next(d for d in load("gateway-meshmart.yaml") if d["kind"] == "VirtualService")
    assert vs["metadata"]["name"] == "meshmart-ingress"
    assert vs["spec"]["gateways"] == ["meshmart-gateway"] and vs["spec"]["hosts"] == ["*"]
    assert ingress_route(path) == expected


def _istio_path_match(pattern: str, path: str) -> bool:
    """AuthorizationPolicy path: exact, "prefix*", "*suffix" or "*"; query string ignored."""
    path = path.split("?", 1)[0]
    if pattern == "*":
        return bool(path)
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return path.endswith(pattern[1:])
    return path == pattern


def _matches(op: Mapping[str, list[str]], method: str, path: str) -> bool:
    return (
        ("methods" not in op or method in op["methods"])
        and ("notMethods" not in op or method not in op["notMethods"])
        and ("paths" not in op or any(_istio_path_match(p, path) for p in op["paths"]))
        and ("notPaths" not in op or not any(_istio_path_match(p, path) for p in op["notPaths"]))
    )


def ingress_allows(method: str, path: str, request_principal: str) -> bool:
    """Evaluate the ingress ALLOW policy as Istio does (rules ORed, `from` AND `to`), on a path
    that path normalisation has already made canonical."""
    (policy,) = load("authorization-policy-ingress-jwt.yaml")
    assert policy["spec"]["action"] == "ALLOW"
    for rule in policy["spec"]["rules"]:
        sources = [f["source"] for f in rule.get("from", [{"source": {}}])]
        from_ok = any(
            ("requestPrincipals" not in s or bool(request_principal))  # ["*"]: any non-empty
            and ("notRequestPrincipals" not in s or not request_principal)
            for s in sources
        )
        operations = [t["operation"] for t in rule.get("to", [{"operation": {}}])]
        to_ok = any(_matches(op, method, path) for op in operations)
        if from_ok and to_ok:
            return True
    return False


PUBLIC = [
    ("POST", "/user-service/users"),  # signup
    ("POST", "/user-service/login"),
    ("GET", "/user-service/.well-known/jwks.json"),
    ("GET", "/user-service/welcome"),
    ("GET", "/user-service/health_check"),
    ("GET", "/catalog-service/catalogs"),
    ("GET", "/catalog-service/catalogs?limit=5"),
    ("GET", "/catalog-service/catalogs/CATALOG-001"),
    *(("GET", f"/{s}/health/{probe}") for s in SERVICES for probe in ("live", "ready")),
]
PROTECTED = [
    ("GET", "/user-service/users"),
    ("GET", "/user-service/users?limit=5"),
    ("GET", "/user-service/users/u-1"),
    ("DELETE", "/user-service/users/u-1"),
    ("POST", "/user-service/users/u-1"),
    ("PUT", "/user-service/users"),
    ("GET", "/user-service/usersx"),
    ("GET", "/user-service/login"),
    ("GET", "/user-service/openapi.json"),
    ("GET", "/order-service/u-1/orders"),
    ("POST", "/order-service/u-1/orders"),
    ("POST", "/catalog-service/catalogs"),
    ("DELETE", "/catalog-service/catalogs/CATALOG-001"),
    ("GET", "/catalog-service/catalog"),
    ("GET", "/nowhere"),
]


@pytest.mark.parametrize(("method", "path"), PUBLIC + PROTECTED)
def test_ingress_allows_public_operations_and_a_principal_for_the_rest(
    method: str, path: str
) -> None:
    assert ingress_allows(method, path, "") is ((method, path) in PUBLIC)
    assert ingress_allows(method, path, "meshmart-user-service/u-1") is True


def test_paths_are_normalised_before_the_policies_in_cluster_mode_too() -> None:
    """The positive policy relies on one spelling per path: both modes set the same option."""
    operator = yaml.safe_load((REPO / "k8s/components/addons/istio-operator.yaml").read_text())
    mesh_config = operator["spec"]["meshConfig"]
    assert mesh_config["pathNormalization"] == {"normalization": PATH_NORMALIZATION}
    assert PATH_NORMALIZATION == "DECODE_AND_MERGE_SLASHES"


def test_cluster_mode_applies_the_policy_files_local_mode_applies() -> None:
    """kind-up.sh applies `kindctl istio-defaults`: the very files `meshmart run` translates."""
    listed = subprocess.run(
        [sys.executable, "-m", "deploy.kindctl", "istio-defaults"],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout.split()  # fmt: skip
    assert listed == list(DEFAULT_FILES)
    security = {
        "request-authentication-ingress-jwt.yaml",
        "request-authentication-services-jwt.yaml",
        "authorization-policy-ingress-jwt.yaml",
        "authorization-policy-services.yaml",
    }
    assert security <= set(listed)


def test_request_authentication_matches_the_user_service_issuer() -> None:
    (ra,) = load("request-authentication-ingress-jwt.yaml")
    assert ra["metadata"]["namespace"] == "istio-system"
    assert ra["spec"]["selector"]["matchLabels"] == INGRESS_SELECTOR
    assert ra["spec"]["jwtRules"] == [
        {
            "issuer": "meshmart-user-service",
            "jwksUri": "http://user-service.meshmart.svc.cluster.local:8080/.well-known/jwks.json",
            "forwardOriginalToken": True,
            "outputPayloadToHeader": "x-jwt-payload",
        }
    ]


def test_every_meshmart_workload_verifies_tokens_for_its_own_owner_check() -> None:
    (ra,) = load("request-authentication-services-jwt.yaml")
    assert ra["metadata"]["namespace"] == NAMESPACE and "selector" not in ra["spec"]
    (ingress,) = load("request-authentication-ingress-jwt.yaml")
    assert ra["spec"]["jwtRules"] == ingress["spec"]["jwtRules"]  # same issuer, keys, header


def test_service_policies_admit_exactly_the_callers_of_the_design() -> None:
    sa = f"cluster.local/ns/{NAMESPACE}/sa/"
    expected = {
        "user-service": {INGRESS_PRINCIPAL},
        "catalog-service": {INGRESS_PRINCIPAL, sa + "order-service"},
        "order-service": {INGRESS_PRINCIPAL, sa + "user-service"},
    }
    for policy in load("authorization-policy-services.yaml"):
        app = policy["spec"]["selector"]["matchLabels"]["app"]
        assert policy["spec"]["action"] == "ALLOW"
        rule, *only_jwks = policy["spec"]["rules"]
        (source,) = [f["source"] for f in rule["from"]]
        assert set(source["principals"]) == expected.pop(app) and "to" not in rule
        if app == "user-service":  # every workload's sidecar fetches the token keys
            (jwks,) = only_jwks
            assert {p for f in jwks["from"] for p in f["source"]["principals"]} == {
                sa + s for s in SERVICES
            }
            assert jwks["to"] == [
                {"operation": {"methods": ["GET"], "paths": ["/.well-known/jwks.json"]}}
            ]
        else:
            assert only_jwks == []
    assert not expected


def test_loadgen_is_admitted_on_exactly_the_services_the_shopper_calls() -> None:
    """By principal alone, a second ALLOW policy per service: the shoppers' own tokens are
    what the services' sidecars and owner checks look at."""
    admitted = {}
    for policy in load("authorization-policy-loadgen.yaml"):
        spec = policy["spec"]
        app = spec["selector"]["matchLabels"]["app"]
        assert policy["metadata"]["name"] == f"{app}-loadgen" and spec["action"] == "ALLOW"
        (rule,) = spec["rules"]
        assert rule == {
            "from": [{"source": {"principals": [f"cluster.local/ns/{NAMESPACE}/sa/loadgen"]}}]
        }
        admitted[app] = policy
    assert sorted(admitted) == sorted(SHOP)


# --- the real istioctl -----------------------------------------------------------------------


def _cached_istioctl() -> Path | None:
    cache_dir = CACHE_DIR / "tools" / "istioctl"
    pinned = re.search(
        r"^require istio\.io/istio (\S+)", (TOOLS_DIR / "go.mod").read_text(), re.MULTILINE
    )
    if pinned and (cache_dir / pinned.group(1) / "istioctl").is_file():
        return cache_dir / pinned.group(1) / "istioctl"
    built = sorted(p for p in cache_dir.glob("*/istioctl") if os.access(p, os.X_OK))
    return built[-1] if built else None


def find_istioctl() -> Path | None:
    """Same order as tools/istioctl/build.sh: $ISTIOCTL, the cached build, PATH."""
    if env := os.environ.get("ISTIOCTL"):
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"ISTIOCTL={env} is not an executable file")
        return path
    if cached := _cached_istioctl():
        return cached
    on_path = shutil.which("istioctl")
    return Path(on_path) if on_path else None


@pytest.fixture(scope="module")
def istioctl() -> Path:
    found = find_istioctl()
    if found is None:
        reason = f"istioctl not found ($ISTIOCTL, .cache/tools/istioctl, PATH); run {BUILD_COMMAND}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def run_istioctl(istioctl: Path, *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # Never touch a developer's cluster: point kubeconfig at nothing.
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "no-kubeconfig")}
    return subprocess.run(
        [str(istioctl), *args],
        capture_output=True,
        text=True,
        cwd=ISTIO_DIR,
        env=env,
        timeout=120,
        check=False,
    )


def _allowed(name: str, resource: str, message: str) -> bool:
    return any(name == f and resource == r and part in message for f, r, part in ALLOWED_WARNINGS)


@pytest.mark.parametrize("name", FILES)
def test_istioctl_validate(istioctl: Path, name: str, tmp_path: Path) -> None:
    result = run_istioctl(istioctl, "validate", "-f", name, tmp_path=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"istioctl validate -f istio/{name}:\n{output}"
    warnings = re.findall(r"^\s*\* ([^:]+): (.*)$", output, re.MULTILINE)
    unexpected = [f"{r}: {m}" for r, m in warnings if not _allowed(name, r, m)]
    assert not unexpected, f"istioctl validate -f istio/{name} warns:\n{output}"
    assert "is valid" in output or warnings, output


def analyze(istioctl: Path, files: tuple[str, ...], tmp_path: Path) -> list[str]:
    """Messages of `istioctl analyze --use-kube=false -A` that are not in ALLOWED_WARNINGS.

    -A: without it analyze reports only on namespace "default" and would pass anything.
    -o json: the log format's exit code ignores warnings, the JSON one ignores everything.
    Later files replace earlier resources of the same kind/namespace/name, like kubectl apply.
    """
    args = ("analyze", "--use-kube=false", "--all-namespaces", "--output", "json", *files)
    result = run_istioctl(istioctl, *args, tmp_path=tmp_path)
    command = "istioctl " + " ".join(args)
    assert result.returncode == 0, f"{command}:\n{result.stdout}{result.stderr}"
    try:
        messages = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"{command}: not JSON:\n{result.stdout}{result.stderr}")
    unexpected = []
    for m in messages:
        origin_kind, _, origin_name = m.get("origin", "").partition(" ")
        resource = f"{origin_kind}/{origin_name}"
        source_file = Path(m.get("reference", "").split(":", 1)[0]).name
        if not _allowed(source_file, resource, m["message"]):
            unexpected.append(
                f"{m['level']} [{m['code']}] ({m['origin']} {m.get('reference')}) {m['message']}"
            )
    return unexpected


@pytest.mark.parametrize("state_name", list(STATES))
def test_istioctl_analyze_each_state(istioctl: Path, state_name: str, tmp_path: Path) -> None:
    """The default set, and the default set with each scenario applied on top."""
    assert analyze(istioctl, STATES[state_name], tmp_path) == []


def test_istioctl_analyze_all_files(istioctl: Path, tmp_path: Path) -> None:
    assert analyze(istioctl, tuple(FILES), tmp_path) == []
