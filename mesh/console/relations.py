"""Which Istio resources reach which workloads: the links the console draws between them."""

from __future__ import annotations

from mesh.control.topology import Proxy, fqdn
from mesh.envoy.clusters import destination_rule_for
from mesh.istio.loader import MeshConfig
from mesh.istio.models import (
    AuthorizationPolicy,
    DestinationRule,
    Gateway,
    IstioResource,
    PeerAuthentication,
    RequestAuthentication,
    VirtualService,
)

ROOT_NAMESPACE = "istio-system"  # mesh-wide policies live in Istio's root namespace


def selects(resource: IstioResource, proxy: Proxy) -> bool:
    """A policy with a workload selector (or none: the whole namespace, or the whole mesh
    from the root namespace) that covers `proxy`."""
    if isinstance(resource, Gateway):
        labels = resource.spec.selector
    elif isinstance(resource, PeerAuthentication | RequestAuthentication | AuthorizationPolicy):
        selector = resource.spec.selector
        labels = selector.matchLabels if selector is not None else {}
    else:
        return False
    namespace = resource.metadata.namespace
    if namespace not in (proxy.namespace, ROOT_NAMESPACE) and not isinstance(resource, Gateway):
        return False
    return all(proxy.labels.get(k) == v for k, v in labels.items())


def hosts_of(vs: VirtualService) -> set[str]:
    """The FQDNs a VirtualService is for."""
    return {fqdn(h, vs.metadata.namespace) for h in vs.spec.hosts}


def subsets(config: MeshConfig, host: str) -> dict[str, dict[str, str]]:
    """subset name -> labels, from the DestinationRule the translator uses for `host`."""
    rule = destination_rule_for(config, host)
    return {} if rule is None else {s.name: dict(s.labels) for s in rule.spec.subsets}


def routes_host(resource: IstioResource, host: str) -> bool:
    """A VirtualService or DestinationRule for the service `host` (an FQDN)."""
    namespace = resource.metadata.namespace
    if isinstance(resource, VirtualService):
        named = hosts_of(resource)
        sent = {fqdn(d.destination.host, namespace) for r in resource.spec.http for d in r.route}
        return host in named or host in sent
    if isinstance(resource, DestinationRule):
        return fqdn(resource.spec.host, namespace) == host
    return False
