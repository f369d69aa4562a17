"""RequestAuthentication -> jwt_authn, and which policies select a proxy."""

from __future__ import annotations

from urllib.parse import urlsplit

from mesh.envoy.common import (
    JWT_FILTER,
    JWT_PAYLOAD_KEY,
    T_JWT,
    Config,
    outbound_cluster,
    typed,
)
from mesh.istio.loader import MeshConfig
from mesh.istio.models import RequestAuthentication
from mesh.topology import SERVICE_PORT, Ingress, Proxy, fqdn


def selects(
    selector_labels: dict[str, str] | None, namespace: str, proxy: Proxy, root_namespace: str
) -> bool:
    """Policies apply to their namespace (or all, from the root namespace) and selector."""
    if namespace not in (proxy.namespace, root_namespace):
        return False
    return all(proxy.labels.get(k) == v for k, v in (selector_labels or {}).items())


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
                # As istiod: space-delimited scope claims become lists, so a `when` on
                # request.auth.claims[scope] matches one scope.
                "normalize_payload_in_metadata": {
                    "space_delimited_claims": ["permission", "scope"]
                },
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
