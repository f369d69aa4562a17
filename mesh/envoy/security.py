"""RequestAuthentication -> jwt_authn, and which policies select a proxy."""

from __future__ import annotations

from urllib.parse import urlsplit

from mesh.control.topology import SERVICE_PORT, Ingress, Proxy, fqdn
from mesh.envoy.common import (
    JWT_FILTER,
    JWT_PAYLOAD_KEY,
    T_JWT,
    Config,
    outbound_cluster,
    typed,
)
from mesh.istio.loader import MeshConfig
from mesh.istio.models import JWTRule, RequestAuthentication


def selects(
    selector_labels: dict[str, str] | None, namespace: str, proxy: Proxy, root_namespace: str
) -> bool:
    """Policies apply to their namespace (or all, from the root namespace) and selector."""
    if namespace not in (proxy.namespace, root_namespace):
        return False
    return all(proxy.labels.get(k) == v for k, v in (selector_labels or {}).items())


def _rules(config: MeshConfig, proxy: Proxy, root_namespace: str) -> list[tuple[str, JWTRule]]:
    """(namespace, rule) in istiod's order: policies of the proxy's namespace, then of the root
    namespace, each oldest first (applied order), then every rule by issuer (a stable sort, as
    Go's is for so few)."""
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
    selected.sort(key=lambda r: r.metadata.namespace != proxy.namespace)
    rules = [(auth.metadata.namespace, rule) for auth in selected for rule in auth.spec.jwtRules]
    return sorted(rules, key=lambda item: item[1].issuer)


def _provider(rule: JWTRule, namespace: str, proxy: Proxy) -> Config:
    uri = urlsplit(rule.jwksUri)
    host = fqdn(uri.hostname or "", namespace)
    provider: Config = {
        "issuer": rule.issuer,
        "payload_in_metadata": JWT_PAYLOAD_KEY,
        # As istiod: space-delimited scope claims become lists, so a `when` on
        # request.auth.claims[scope] matches one scope.
        "normalize_payload_in_metadata": {"space_delimited_claims": ["permission", "scope"]},
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
    # Only what is set, as istiod's protobuf leaves out empty fields.
    if rule.audiences:
        provider["audiences"] = list(rule.audiences)
    if rule.forwardOriginalToken:
        provider["forward"] = True
    # Explicit locations replace Envoy's default (Authorization: Bearer, access_token), as
    # in istiod, which adds nothing to them.
    if rule.fromHeaders:
        provider["from_headers"] = [
            {"name": h.name, **({"value_prefix": h.prefix} if h.prefix else {})}
            for h in rule.fromHeaders
        ]
    if rule.fromParams:
        provider["from_params"] = list(rule.fromParams)
    if rule.outputPayloadToHeader:
        provider["forward_payload_header"] = rule.outputPayloadToHeader
    if isinstance(proxy, Ingress):
        # istiod clears the route cache on gateways (authentication.go), so routes
        # see what jwt_authn changed in the request.
        provider["clear_route_cache"] = True
    return provider


def _requirement(names: list[str]) -> Config:
    """istiod's convertToEnvoyJwtConfig: a token, if present, must be valid; a missing one
    passes (AuthorizationPolicy decides). With several providers: any one of them, or each
    satisfied or missing (providers reading the same location would fail the latter)."""
    each = [
        {"requires_any": {"requirements": [{"provider_name": n}, {"allow_missing": {}}]}}
        for n in names
    ]
    if len(each) == 1:
        return each[0]
    return {
        "requires_any": {
            "requirements": [
                *({"provider_name": n} for n in names),
                {"requires_all": {"requirements": each}},
            ]
        }
    }


def jwt_filter(config: MeshConfig, proxy: Proxy, root_namespace: str) -> Config | None:
    """Istio semantics: a present but invalid token is 401; a missing one is left to RBAC."""
    providers = {
        f"origins-{i}": _provider(rule, namespace, proxy)
        for i, (namespace, rule) in enumerate(_rules(config, proxy, root_namespace))
    }
    if not providers:
        return None
    return {
        "name": JWT_FILTER,
        "typed_config": typed(
            T_JWT,
            providers=providers,
            rules=[{"match": {"prefix": "/"}, "requires": _requirement(list(providers))}],
            # As istiod: a CORS preflight carries no token and must not be refused for it.
            bypass_cors_preflight=True,
        ),
    }
