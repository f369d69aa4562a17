"""What the console's JSON API returns: pydantic models, so the OpenAPI document is theirs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mesh.console.health import Health

NodeKind = Literal["gateway", "app", "version", "service", "topic", "group"]


class Traffic(BaseModel):
    rate: float = Field(description="requests (HTTP) or messages (Kafka) per second")
    error_percent: float = Field(description="share of 5xx responses (HTTP), in percent")
    client_error_percent: float = Field(description="share of 4xx responses, in percent")
    p99_ms: float | None = Field(description="p99 latency over Envoy's last flush interval")
    total: int = Field(description="requests since the proxies started")


class Node(BaseModel):
    id: str
    kind: NodeKind
    label: str
    parent: str | None = Field(None, description="the app box a version node sits in")
    app: str | None = None
    version: str | None = None
    health: Health = "idle"


class Edge(BaseModel):
    id: str
    source: str
    target: str
    protocol: Literal["http", "kafka"]
    traffic: Traffic
    health: Health
    mtls: bool = Field(False, description="the caller's sidecar originates Istio mutual TLS")
    weight: int | None = Field(None, description="the VirtualService's weight for this version")
    lag: int | None = Field(None, description="consumer group lag in messages (Kafka)")


class Graph(BaseModel):
    window_seconds: float = Field(description="seconds between the two samples rates come from")
    nodes: list[Node]
    edges: list[Edge]
    down: dict[str, str] = Field(description="proxies whose admin API did not answer, and why")
    kafka_available: bool


class InstanceInfo(BaseModel):
    name: str
    app_pid: int
    app_alive: bool
    sidecar_pid: int
    sidecar_alive: bool
    sidecar_ready: bool
    admin_url: str
    restarts: int = Field(description="how often the supervisor restarted its app or sidecar")
    last_exit: str | None = Field(description='why it last exited, e.g. "killed by SIGKILL"')


class Resource(BaseModel):
    kind: str
    namespace: str
    name: str
    file: str | None = Field(description="the file it was applied from")


class Trace(BaseModel):
    trace_id: str
    operation: str
    duration_ms: float
    spans: int
    error: bool
    url: str = Field(description="the trace in Zipkin's UI")


class NodeDetails(BaseModel):
    node: Node
    instances: list[InstanceInfo]
    inbound: list[Edge]
    outbound: list[Edge]
    resources: list[Resource] = Field(description="Istio resources that apply to this node")
    traces: list[Trace]
    zipkin_url: str | None


class Validation(BaseModel):
    severity: Literal["error", "warning"]
    code: str = Field(description="a short id, like Kiali's KIA codes")
    message: str
    path: str = Field(description="where in the resource, e.g. spec.http[0].route[1]")


class AppliedResource(Resource):
    document: dict[str, object]
    validations: list[Validation]


class ConfigView(BaseModel):
    resources: list[AppliedResource]
    scenarios: list[str] = Field(description="files in istio/ that can be applied")


class ApplyRequest(BaseModel):
    file: str | None = Field(
        None, description="a file name in istio/, e.g. virtual-service-order-90-10.yaml"
    )
    yaml: str | None = Field(None, description="Istio resources as YAML text")


class ApplyResult(BaseModel):
    applied: list[str] = Field(description="the resources the apply changed")
    seconds: float = Field(description="until every Envoy had taken the new config")


class Problem(BaseModel):
    status: int
    title: str
    detail: str
