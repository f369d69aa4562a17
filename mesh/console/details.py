"""One node's details: its instances, its edges, the Istio resources that reach it, and its
recent traces from Zipkin."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp

from mesh.console.graph import edges_touching
from mesh.console.models import Graph, InstanceInfo, Node, NodeDetails, Resource, Trace
from mesh.console.relations import routes_host, selects
from mesh.console.sampler import Sample
from mesh.console.shop import Shop
from mesh.control.topology import LOADGEN, Proxy, fqdn
from mesh.runtime.processes import alive


class UnknownNode(KeyError):
    pass


def _proxies_of(node: Node, shop: Shop) -> list[Proxy]:
    topology = shop.topology()
    if node.kind == "gateway":
        return [topology.ingress]
    if node.kind == "service":
        return list(topology.endpoints(fqdn(node.label)))
    if node.kind in ("app", "version"):
        return [
            w
            for w in topology.sidecars
            if w.labels.get("app") == node.app
            and (node.kind == "app" or w.labels.get("version") == node.version)
        ]
    return []


def _restarts(state: dict[str, Any], proxy: Proxy) -> tuple[int, str | None]:
    """Restarts of the instance's app and sidecar, and the last exit of either (state.json's
    `processes`, written by the supervisor)."""
    processes = state.get("processes", {})
    names = (proxy.name, f"{proxy.name}-envoy")  # the ingress is an Envoy of that name
    found = [processes[name] for name in names if name in processes]
    exits = [p["last_exit"] for p in found if p.get("last_exit")]
    return sum(int(p.get("restarts", 0)) for p in found), exits[-1] if exits else None


def _pids(state: dict[str, Any], proxy: Proxy) -> tuple[int, int]:
    """(app PID, sidecar PID) as `meshmart run` recorded them; 0 for no app."""
    if workload := state.get("workloads", {}).get(proxy.name):
        return int(workload["app_pid"]), int(workload["sidecar_pid"])
    if proxy.name == LOADGEN:
        return 0, int((state.get("loadgen") or {}).get("sidecar_pid", 0))
    return 0, int(state.get("ingress", {}).get("pid", 0))


def _instances(proxies: list[Proxy], shop: Shop, sample: Sample) -> list[InstanceInfo]:
    state = shop.state()
    found = []
    for proxy in proxies:
        app_pid, sidecar_pid = _pids(state, proxy)
        restarts, last_exit = _restarts(state, proxy)
        found.append(
            InstanceInfo(
                name=proxy.name,
                app_pid=app_pid,
                app_alive=bool(app_pid) and alive(app_pid),
                sidecar_pid=sidecar_pid,
                sidecar_alive=bool(sidecar_pid) and alive(sidecar_pid),
                sidecar_ready=proxy.name in sample.envoys,
                admin_url=f"http://127.0.0.1:{proxy.admin_port}",
                restarts=restarts,
                last_exit=last_exit,
            )
        )
    return found


def _resources(node: Node, proxies: list[Proxy], shop: Shop) -> list[Resource]:
    config = shop.config()
    host = fqdn(node.app) if node.app and fqdn(node.app) in shop.topology().service_hosts() else ""
    found = []
    for (kind, namespace, name), resource in sorted(config.resources.items()):
        if any(selects(resource, p) for p in proxies) or (host and routes_host(resource, host)):
            found.append(
                Resource(
                    kind=kind,
                    namespace=namespace,
                    name=name,
                    file=shop.file_of(f"{kind}/{namespace}/{name}"),
                )
            )
    return found


async def _traces(service: str, zipkin_url: str, session: aiohttp.ClientSession) -> list[Trace]:
    """The newest traces that pass through `service`'s sidecar, with links into Zipkin's UI."""
    params = {"serviceName": service, "limit": "5", "lookback": str(15 * 60 * 1000)}
    try:
        url, timeout = f"{zipkin_url}/api/v2/traces", aiohttp.ClientTimeout(total=3)
        async with session.get(url, params=params, timeout=timeout) as response:
            if response.status != 200:
                return []
            traces = await response.json()
    except (aiohttp.ClientError, TimeoutError):
        return []
    found = []
    for spans in traces:
        root = min(spans, key=lambda s: s.get("timestamp", 0))
        found.append(
            Trace(
                trace_id=root["traceId"],
                operation=_operation(root),
                duration_ms=round(root.get("duration", 0) / 1000, 2),
                spans=len(spans),
                error=any("error" in s.get("tags", {}) for s in spans),
                url=f"{zipkin_url}/zipkin/traces/{root['traceId']}",
            )
        )
    return found


def _operation(span: dict[str, Any]) -> str:
    """`GET /path` from Envoy's span tags (its span names are the proxy's, not the call's)."""
    tags = span.get("tags", {})
    if "http.url" in tags:
        return f"{tags.get('http.method', '')} {urlsplit(tags['http.url']).path}".strip()
    return str(span.get("name", "?"))


def zipkin_service(node: Node, proxies: list[Proxy]) -> str | None:
    """The name Zipkin files the node's sidecar spans under (Envoy's --service-cluster)."""
    if node.kind == "gateway":
        return proxies[0].name if proxies else None
    return f"{node.app}.{proxies[0].namespace}" if node.app and proxies else None


async def node_details(
    node_id: str, graph: Graph, shop: Shop, sample: Sample, session: aiohttp.ClientSession
) -> NodeDetails:
    nodes = {n.id: n for n in graph.nodes}
    node = nodes.get(node_id)
    if node is None:
        raise UnknownNode(node_id)
    proxies = _proxies_of(node, shop)
    # an app box speaks for its versions (Kafka edges start and end at the box itself)
    inbound, outbound = edges_touching(
        graph, {node.id} | {n.id for n in graph.nodes if n.parent == node.id}
    )
    service = zipkin_service(node, proxies)
    traces = await _traces(service, shop.zipkin_url, session) if service else []
    return NodeDetails(
        node=node,
        instances=_instances(proxies, shop, sample),
        inbound=inbound,
        outbound=outbound,
        resources=_resources(node, proxies, shop),
        traces=traces,
        zipkin_url=shop.zipkin_url,
    )
