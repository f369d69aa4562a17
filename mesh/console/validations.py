"""Kiali-style validations of the applied resources: what Istio accepts but what leaves
traffic going nowhere or nobody admitted. KIA codes are Kiali's (kiali.io/docs/features/
validations), MM codes meshmart's own."""

from __future__ import annotations

import fnmatch

from mesh.console.models import Validation
from mesh.console.relations import hosts_of, subsets
from mesh.control.topology import TRUST_DOMAIN, Topology, fqdn
from mesh.istio.loader import MeshConfig
from mesh.istio.models import AuthorizationPolicy, DestinationRule, IstioResource, VirtualService


def _virtual_service(
    vs: VirtualService, config: MeshConfig, topology: Topology
) -> list[Validation]:
    found: list[Validation] = []
    services = set(topology.service_hosts())
    namespace = vs.metadata.namespace
    for index, http in enumerate(vs.spec.http):
        for number, dest in enumerate(http.route):
            where = f"spec.http[{index}].route[{number}].destination"
            host = fqdn(dest.destination.host, namespace)
            if host not in services:
                found.append(
                    Validation(
                        severity="error",
                        code="KIA1101",
                        path=f"{where}.host",
                        message=f"no service {host} for this destination",
                    )
                )
                continue
            subset = dest.destination.subset
            if subset is not None and subset not in subsets(config, host):
                found.append(
                    Validation(
                        severity="error",
                        code="KIA1107",
                        path=f"{where}.subset",
                        message=f"subset {subset!r} is defined by no DestinationRule for {host}",
                    )
                )
    found += _unreachable_versions(vs, config, topology)
    return found


def _unreachable_versions(
    vs: VirtualService, config: MeshConfig, topology: Topology
) -> list[Validation]:
    """A version that runs but that no route of the VirtualService can send a request to."""
    if vs.spec.gateways and "mesh" not in vs.spec.gateways:
        return []
    namespace = vs.metadata.namespace
    found: list[Validation] = []
    for host in hosts_of(vs) & set(topology.service_hosts()):
        reachable: set[str] = set()
        for http in vs.spec.http:
            weighted = len(http.route) > 1
            for dest in http.route:
                if fqdn(dest.destination.host, namespace) != host or (weighted and not dest.weight):
                    continue
                subset = dest.destination.subset
                labels = {} if subset is None else subsets(config, host).get(subset)
                if labels is not None:  # an undefined subset reaches nothing (KIA1107)
                    reachable |= {w.version for w in topology.endpoints(host, labels)}
        for version in sorted({w.version for w in topology.endpoints(host)} - reachable):
            found.append(
                Validation(
                    severity="warning",
                    code="MM1001",
                    path="spec.http",
                    message=f"{host.split('.')[0]} {version} runs but no route sends it a "
                    "request (weight 0 or no route to its subset)",
                )
            )
    return found


def _destination_rule(dr: DestinationRule, topology: Topology) -> list[Validation]:
    host = fqdn(dr.spec.host, dr.metadata.namespace)
    if host not in topology.service_hosts():
        return [
            Validation(
                severity="warning",
                code="KIA0202",
                path="spec.host",
                message=f"{host} matches no service in the mesh",
            )
        ]
    found = []
    for index, subset in enumerate(dr.spec.subsets):
        if not topology.endpoints(host, subset.labels):
            found.append(
                Validation(
                    severity="warning",
                    code="KIA0203",
                    path=f"spec.subsets[{index}].labels",
                    message=f"subset {subset.name!r}: no workload of {host} has labels "
                    f"{subset.labels}",
                )
            )
    return found


def _authorization_policy(policy: AuthorizationPolicy, topology: Topology) -> list[Validation]:
    accounts = {f"{TRUST_DOMAIN}/ns/{p.namespace}/sa/{p.service_account}" for p in topology.proxies}
    found = []
    for r, rule in enumerate(policy.spec.rules or []):
        for f, source in enumerate(rule.from_):
            for p, principal in enumerate(source.source.principals):
                # Istio's principal match: exact, or one `*` as prefix or suffix
                if not any(fnmatch.fnmatchcase(a, principal) for a in accounts):
                    found.append(
                        Validation(
                            severity="warning",
                            code="KIA0106",
                            path=f"spec.rules[{r}].from[{f}].source.principals[{p}]",
                            message=f"{principal} matches no ServiceAccount in the mesh",
                        )
                    )
    selector = policy.spec.selector
    if (
        selector is not None
        and selector.matchLabels
        and not any(
            all(proxy.labels.get(k) == v for k, v in selector.matchLabels.items())
            for proxy in topology.proxies
        )
    ):
        found.append(
            Validation(
                severity="warning",
                code="KIA0004",
                path="spec.selector",
                message=f"no workload has labels {selector.matchLabels}",
            )
        )
    return found


def validate(resource: IstioResource, config: MeshConfig, topology: Topology) -> list[Validation]:
    if isinstance(resource, VirtualService):
        return _virtual_service(resource, config, topology)
    if isinstance(resource, DestinationRule):
        return _destination_rule(resource, topology)
    if isinstance(resource, AuthorizationPolicy):
        return _authorization_policy(resource, topology)
    return []
