"""The console's ASGI app: the page, its static files, and the JSON API behind it.

Starlette rather than Quart: the console is a handful of JSON routes, a stream and static
files, which Starlette does with nothing more than itself (and sse-starlette for the
stream); Quart would bring a Flask-style app object and its own globals for no gain here.
Every endpoint is in ENDPOINTS, from which the OpenAPI document is generated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import anyio
from pydantic import BaseModel, ValidationError
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mesh.console.details import UnknownNode, node_details
from mesh.console.graph import build_graph
from mesh.console.models import (
    AppliedResource,
    ApplyRequest,
    ApplyResult,
    ConfigView,
    Graph,
    NodeDetails,
    Problem,
)
from mesh.console.sampler import Sampler, Window
from mesh.console.scenarios import (
    BadScenario,
    UnknownScenario,
    apply,
    pasted_file,
    scenario_files,
    scenario_path,
)
from mesh.console.shop import NotRunning, Shop
from mesh.console.validations import validate
from mesh.istio.loader import IstioConfigError
from services.common.operations import Link
from services.common.operations import openapi_document as documented
from services.common.principal import Access

WEB_DIR = Path(__file__).parent / "web"
# cytoscape.js and its dagre layout, as `make setup` installed them from npm (web/package.json)
VENDOR_FILES = {
    "cytoscape.min.js": "cytoscape/dist/cytoscape.min.js",
    "cytoscape-dagre.min.js": "cytoscape-dagre/dist/cytoscape-dagre.min.js",
}


def problem(status: int, title: str, detail: str) -> JSONResponse:
    body = Problem(status=status, title=title, detail=detail).model_dump()
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def model_response(model: BaseModel, status: int = 200) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status_code=status)


@dataclass
class Console:
    shop: Shop
    node_modules: Path
    sampler: Sampler = field(init=False)
    apply_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.sampler = Sampler(self.shop)

    def http(self) -> aiohttp.ClientSession:
        return self.sampler.http()

    def graph_of(self, window: Window) -> Graph:
        topology = self.shop.topology()
        tls = {p.name: self.shop.tls_clusters(p.name) for p in topology.proxies}
        return build_graph(topology, self.shop.config(), tls, window)

    # --- endpoints ---------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return FileResponse(WEB_DIR / "index.html")

    async def vendor(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in VENDOR_FILES:
            return problem(404, "not found", f"no vendor file {name!r}")
        path = self.node_modules / VENDOR_FILES[name]
        if not path.exists():
            return problem(
                503, "front end not built", f"{path} is missing: run `make setup` (it runs npm ci)"
            )
        return FileResponse(path, media_type="text/javascript")

    async def get_graph(self, request: Request) -> Response:
        return model_response(self.graph_of(await self.sampler.current()))

    async def graph_stream(self, request: Request) -> Response:
        async def events() -> AsyncIterator[dict[str, str]]:
            window = await self.sampler.current()
            while True:
                yield {"event": "graph", "data": self.graph_of(window).model_dump_json()}
                try:
                    window = await self.sampler.next()
                except (TimeoutError, NotRunning) as exc:
                    yield {"event": "problem", "data": json.dumps({"detail": str(exc)})}
                    await asyncio.sleep(self.sampler.interval)

        self.shop.state()  # NotRunning -> 503 before the stream starts
        return EventSourceResponse(events(), ping=15)

    async def get_node(self, request: Request) -> Response:
        window = await self.sampler.current()
        graph = self.graph_of(window)
        node_id = request.path_params["node_id"]
        try:
            details = await node_details(node_id, graph, self.shop, window.newer, self.http())
        except UnknownNode:
            known = ", ".join(sorted(n.id for n in graph.nodes))
            return problem(404, "unknown node", f"no node {node_id!r}; known: {known}")
        return model_response(details)

    async def get_config(self, request: Request) -> Response:
        config, topology = self.shop.config(), self.shop.topology()
        resources = []
        for key, document in self.shop.documents().items():
            kind, namespace, name = key.split("/", 2)
            parsed = config.resources.get((kind, namespace, name))
            resources.append(
                AppliedResource(
                    kind=kind,
                    namespace=namespace,
                    name=name,
                    file=self.shop.file_of(key),
                    document=document,
                    validations=validate(parsed, config, topology) if parsed else [],
                )
            )
        return model_response(ConfigView(resources=resources, scenarios=scenario_files()))

    async def post_apply(self, request: Request) -> Response:
        try:
            body = ApplyRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            return problem(400, "bad request", _first_error(exc))
        if (body.file is None) == (body.yaml is None):
            return problem(400, "bad request", "give exactly one of `file` and `yaml`")
        self.shop.state()
        try:
            path = (
                scenario_path(body.file)
                if body.file is not None
                else pasted_file(self.shop.mesh, body.yaml or "")
            )
        except UnknownScenario as exc:
            return problem(404, "unknown scenario", str(exc))
        except BadScenario as exc:
            return problem(400, "invalid YAML", str(exc))
        if self.apply_lock.locked():
            return problem(409, "busy", "another apply is in progress; try again in a moment")
        async with self.apply_lock:
            try:
                changed, seconds = await anyio.to_thread.run_sync(apply, self.shop.mesh, path)
            except IstioConfigError as exc:
                return problem(422, "refused", str(exc))
        return model_response(ApplyResult(applied=changed, seconds=round(seconds, 3)))

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document())


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, generated from ENDPOINTS like the services' documents."""
    # The console is not behind the ingress: the edge's answers are not its answers.
    return documented("meshmart console", "1.0.0", ENDPOINTS, bearer=False, edge=False)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ())) or "body"
    return f"{where}: {error.get('msg')}"


@dataclass(frozen=True)
class Endpoint:
    """One API route with what its OpenAPI entry says (services.common.operations.Documented)."""

    method: str
    path: str
    handler: Callable[..., Any]
    summary: str
    response: Any = None
    request: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    access: Access = Access.PUBLIC
    auth_errors: tuple[int, ...] = ()
    database: bool = False
    links: tuple[Link, ...] = ()


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/graph",
        Console.get_graph,
        "the versioned app graph with live rates, error %, p99, mTLS, weights and Kafka lag",
        Graph,
        errors=(503,),
    ),
    Endpoint(
        "GET",
        "/api/graph/stream",
        Console.graph_stream,
        "the graph as server-sent events (`event: graph`), one per sample",
        None,
        errors=(503,),
    ),
    Endpoint(
        "GET",
        "/api/nodes/{node_id}",
        Console.get_node,
        "one node: instances, edges, Istio resources, recent traces",
        NodeDetails,
        errors=(404, 503),
    ),
    Endpoint(
        "GET",
        "/api/config",
        Console.get_config,
        "every applied Istio resource with its validations, and the scenarios in istio/",
        ConfigView,
        errors=(503,),
    ),
    Endpoint(
        "POST",
        "/api/config/apply",
        Console.post_apply,
        "apply a scenario from istio/ or pasted YAML, as `meshmart apply` does",
        ApplyResult,
        ApplyRequest,
        errors=(400, 404, 409, 422, 503),
    ),
)


async def _not_running(request: Request, exc: Exception) -> Response:
    return problem(503, "shop not running", str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, str(exc.detail), f"{request.method} {request.url.path}")


def create_app(run_dir: Path, node_modules: Path) -> Starlette:
    console = Console(Shop(run_dir), node_modules)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await console.sampler.close()

    routes: list[Route | Mount] = [
        Route("/", console.index),
        Route("/api/openapi.json", console.openapi),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/vendor/{name}", console.vendor),
        Mount("/static", StaticFiles(directory=WEB_DIR), name="static"),
        *(
            Route(
                e.path.replace("{node_id}", "{node_id:path}"),
                getattr(console, e.handler.__name__),
                methods=[e.method],
            )
            for e in ENDPOINTS
        ),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={NotRunning: _not_running, HTTPException: _http_error},
    )
