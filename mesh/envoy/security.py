"""AuthorizationPolicy -> envoy.filters.http.rbac, RequestAuthentication -> jwt_authn.

Istio's evaluation order is kept: any matching DENY policy denies; then, if ALLOW policies
select the workload, one of them must match; with none, everything is allowed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mesh.envoy.common import (
    JWT_FILTER,
    JWT_PAYLOAD_KEY,
    T_JWT,
    T_RBAC,
    Config,
    outbound_cluster,
    typed,
)
from mesh.istio.loader import IstioConfigError, MeshConfig
from mesh.istio.models import AuthorizationPolicy, Operation, RequestAuthentication, Rule, Source
from mesh.topology import SERVICE_PORT, Ingress, Proxy, fqdn


def selects(
    selector_labels: dict[str, str] | None, namespace: str, proxy: Proxy, root_namespace: str
) -> bool:
    """Policies apply to their namespace (or all, from the root namespace) and selector."""
    if namespace not in (proxy.namespace, root_namespace):
        return False
    return all(proxy.labels.get(k) == v for k, v in (selector_labels or {}).items())


def _string(value: str) -> Config:
    """Istio's exact, `prefix*`, `*suffix` and `*` forms."""
    if value == "*":
        return {"safe_regex": {"regex": ".+"}}
    if value.endswith("*"):
        return {"prefix": value[:-1]}
    if value.startswith("*"):
        return {"suffix": value[1:]}
    return {"exact": value}


def _any_of(items: list[Config], key: str) -> Config:
    return items[0] if len(items) == 1 else {key: {"rules" if key == "or_rules" else "ids": items}}


def _principal(value: str) -> Config:
    spiffe = value if value == "*" else f"spiffe://{value}"
    return {"authenticated": {"principal_name": _string(spiffe)}}


def _request_principal(value: str, where: str) -> Config:
    def claim(name: str, match: Config) -> Config:
        return {
            "metadata": {
                "filter": JWT_FILTER,
                "path": [{"key": JWT_PAYLOAD_KEY}, {"key": name}],
                "value": {"string_match": match},
            }
        }

    if value == "*":
        return claim("iss", {"safe_regex": {"regex": ".+"}})
    issuer, slash, subject = value.rpartition("/")
    if not slash or "*" in value:
        raise IstioConfigError(f"{where}: requestPrincipals supports '*' or exact 'iss/sub'")
    return {"and_ids": {"ids": [claim("iss", {"exact": issuer}), claim("sub", {"exact": subject})]}}


def _source(source: Source, where: str) -> Config:
    parts: list[Config] = []
    if source.principals:
        parts.append(_any_of([_principal(p) for p in source.principals], "or_ids"))
    if source.notPrincipals:
        parts.append({"not_id": _any_of([_principal(p) for p in source.notPrincipals], "or_ids")})
    if source.requestPrincipals:
        ids = [_request_principal(p, where) for p in source.requestPrincipals]
        parts.append(_any_of(ids, "or_ids"))
    if source.notRequestPrincipals:
        ids = [_request_principal(p, where) for p in source.notRequestPrincipals]
        parts.append({"not_id": _any_of(ids, "or_ids")})
    if not parts:
        return {"any": True}
    return parts[0] if len(parts) == 1 else {"and_ids": {"ids": parts}}


def _path(value: str) -> Config:
    return {"url_path": {"path": _string(value)}}


def _method(value: str) -> Config:
    return {"header": {"name": ":method", "string_match": {"exact": value}}}


def _operation(op: Operation) -> Config:
    parts: list[Config] = []
    if op.methods:
        parts.append(_any_of([_method(m) for m in op.methods], "or_rules"))
    if op.notMethods:
        parts.append({"not_rule": _any_of([_method(m) for m in op.notMethods], "or_rules")})
    if op.paths:
        parts.append(_any_of([_path(p) for p in op.paths], "or_rules"))
    if op.notPaths:
        parts.append({"not_rule": _any_of([_path(p) for p in op.notPaths], "or_rules")})
    if not parts:
        return {"any": True}
    return parts[0] if len(parts) == 1 else {"and_rules": {"rules": parts}}


def _policy(rule: Rule, where: str) -> Config:
    principals = [_source(f.source, where) for f in rule.from_] or [{"any": True}]
    permissions = [_operation(t.operation) for t in rule.to] or [{"any": True}]
    return {"permissions": permissions, "principals": principals}


def rbac_filters(config: MeshConfig, proxy: Proxy, root_namespace: str) -> list[Config]:
    """DENY filter first, then ALLOW, each only when some policy selects this proxy."""
    filters = []
    for action in ("DENY", "ALLOW"):
        policies: dict[str, Config] = {}
        selected: list[AuthorizationPolicy] = [
            p
            for p in config.authorization_policies
            if p.spec.action == action
            and selects(
                p.spec.selector.matchLabels if p.spec.selector else None,
                p.metadata.namespace,
                proxy,
                root_namespace,
            )
        ]
        for policy in sorted(selected, key=lambda p: (p.metadata.namespace, p.metadata.name)):
            for index, rule in enumerate(policy.spec.rules):
                where = (
                    f"AuthorizationPolicy {policy.metadata.namespace}/{policy.metadata.name}: "
                    f"spec.rules[{index}]"
                )
                key = (
                    f"ns[{policy.metadata.namespace}]-policy[{policy.metadata.name}]-rule[{index}]"
                )
                policies[key] = _policy(rule, where)
        if selected:  # an ALLOW policy with no rules allows nothing, as in Istio
            filters.append(
                {
                    "name": f"envoy.filters.http.rbac.{action.lower()}",
                    "typed_config": typed(T_RBAC, rules={"action": action, "policies": policies}),
                }
            )
    return filters


def jwt_filter(config: MeshConfig, proxy: Proxy, root_namespace: str) -> Config | None:
    """Istio semantics: a present but invalid token is 401; a missing one is left to RBAC."""
    selected: list[RequestAuthentication] = [
        r
        for r in config.request_authentications
        if selects(
            r.spec.selector.matchLabels if r.spec.selector else None,
            r.metadata.namespace,
            proxy,
            root_namespace,
        )
    ]
    providers: dict[str, Config] = {}
    for auth in sorted(selected, key=lambda r: (r.metadata.namespace, r.metadata.name)):
        for rule in auth.spec.jwtRules:
            uri = urlsplit(rule.jwksUri)
            host = fqdn(uri.hostname or "", auth.metadata.namespace)
            provider: Config = {
                "issuer": rule.issuer,
                "forward": rule.forwardOriginalToken,
                "payload_in_metadata": JWT_PAYLOAD_KEY,
                "remote_jwks": {
                    # Fetched through the mesh (mTLS) from the service that serves it; istiod
                    # would fetch it itself and inline it.
                    "http_uri": {
                        "uri": rule.jwksUri,
                        "cluster": outbound_cluster(host, port=uri.port or SERVICE_PORT),
                        "timeout": "5s",
                    },
                    "cache_duration": "300s",
                    "async_fetch": {"fast_listener": True, "failed_refetch_duration": "1s"},
                },
            }
            if rule.outputPayloadToHeader:
                provider["forward_payload_header"] = rule.outputPayloadToHeader
            if isinstance(proxy, Ingress):
                # istiod clears the route cache on gateways (authentication.go), so routes
                # see what jwt_authn changed in the request.
                provider["clear_route_cache"] = True
            providers[f"origins-{len(providers)}"] = provider
    if not providers:
        return None
    requirement = {
        "requires_any": {
            "requirements": [*({"provider_name": n} for n in providers), {"allow_missing": {}}]
        }
    }
    return {
        "name": JWT_FILTER,
        "typed_config": typed(
            T_JWT,
            providers=providers,
            rules=[{"match": {"prefix": "/"}, "requires": requirement}],
            # As istiod: a CORS preflight carries no token and must not be refused for it.
            bypass_cors_preflight=True,
        ),
    }
