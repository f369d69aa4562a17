"""One table per service: its routes and the models they take and return.

The app's router and its OpenAPI document are both built from this table, so the committed
`openapi.json` can only drift from the code if someone forgets to regenerate it — which a
test catches.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel, TypeAdapter

from services.common import mesh_answers
from services.common.errors import PROBLEM_JSON as PROBLEM
from services.common.errors import Problem
from services.common.principal import Access, authorize

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PATH_PARAM = re.compile(r"\{(\w+)\}")
BEARER = "bearerAuth"


@dataclass(frozen=True)
class Link:
    """An OpenAPI link from a success response to the operation a client calls next with its
    values, for stateful walks such as signup -> login -> own user. `parameters` and
    `request_body` hold runtime expressions ("$response.body#/userId")."""

    name: str
    operation_id: str
    description: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    request_body: Mapping[str, str] | None = None

    def as_openapi(self) -> dict[str, Any]:
        link: dict[str, Any] = {"operationId": self.operation_id, "description": self.description}
        if self.parameters:
            link["parameters"] = dict(self.parameters)
        if self.request_body is not None:
            link["requestBody"] = dict(self.request_body)
        return link


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    request: type[BaseModel] | None = None
    response: Any = None  # a type pydantic can describe (model, list[model]); None: no body
    status: int = 200
    errors: tuple[int, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)  # request header -> description
    access: Access = Access.PUBLIC  # who may call it, checked before the handler runs
    database: bool = False  # its handler uses PostgreSQL, so it can answer "database unavailable"
    links: tuple[Link, ...] = ()

    @property
    def auth_errors(self) -> tuple[int, ...]:
        return {Access.PUBLIC: (), Access.USER: (401,), Access.OWNER: (401, 403)}[self.access]


def add_routes(
    app: web.Application, operations: tuple[Operation, ...], trusted_issuer: str
) -> None:
    for op in operations:
        app.router.add_route(op.method, op.path, _guarded(op, trusted_issuer))


def _guarded(op: Operation, trusted_issuer: str) -> Handler:
    """The handler behind its access check: no handler runs for a caller it does not admit."""
    if op.access is Access.PUBLIC:
        return op.handler

    async def guarded(request: web.Request) -> web.StreamResponse:
        authorize(request, op.access, trusted_issuer)
        return await op.handler(request)

    return guarded


class Documented(Protocol):
    """What an OpenAPI document needs of an operation (the console's endpoints have it too)."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def handler(self) -> Callable[..., Any]: ...
    @property
    def summary(self) -> str: ...
    @property
    def request(self) -> type[BaseModel] | None: ...
    @property
    def response(self) -> Any: ...
    @property
    def status(self) -> int: ...
    @property
    def errors(self) -> tuple[int, ...]: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def access(self) -> Access: ...
    @property
    def auth_errors(self) -> tuple[int, ...]: ...
    @property
    def database(self) -> bool: ...
    @property
    def links(self) -> tuple[Link, ...]: ...


def openapi_document(
    title: str,
    version: str,
    operations: Sequence[Documented],
    *,
    bearer: bool = True,
    edge: bool = True,
) -> dict[str, Any]:
    """`bearer=False`: no operation takes a token (the console), so no security scheme.
    `edge=False`: not served through the ingress (the console), so no mesh answers."""
    schemas: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}

    def schema_of(tp: Any) -> dict[str, Any]:
        generated = TypeAdapter(tp).json_schema(
            ref_template="#/components/schemas/{model}", by_alias=True
        )
        schemas.update(generated.pop("$defs", {}))
        if generated.get("type") == "object" and "title" in generated:
            schemas[generated["title"]] = generated
            return {"$ref": f"#/components/schemas/{generated['title']}"}
        return generated

    problem = {PROBLEM: {"schema": schema_of(Problem)}}
    for op in operations:
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PATH_PARAM.findall(op.path)
        ]
        parameters += [
            {
                "name": name,
                "in": "header",
                "required": False,
                "description": text,
                "schema": {"type": "string"},
            }
            for name, text in op.headers.items()
        ]
        success: dict[str, Any] = {"description": op.summary}
        if op.response is not None:
            success["content"] = {"application/json": {"schema": schema_of(op.response)}}
        if op.links:
            success["links"] = {link.name: link.as_openapi() for link in op.links}
        responses: dict[str, Any] = {
            str(op.status): success,
            **{
                str(code): {"description": "problem", "content": problem}
                for code in sorted({*op.errors, *op.auth_errors})
            },
        }
        if edge:
            shape = mesh_answers.Shape(
                protected=op.access is not Access.PUBLIC,
                path_parameters=bool(_PATH_PARAM.search(op.path)),
                database=op.database,
            )
            responses = mesh_answers.merged(responses, shape, problem[PROBLEM]["schema"])
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": op.handler.__name__,
            "responses": responses,
        }
        if op.access is not Access.PUBLIC:
            entry["security"] = [{BEARER: []}]
        if parameters:
            entry["parameters"] = parameters
        if op.request is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_of(op.request)}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    components: dict[str, Any] = {"schemas": dict(sorted(schemas.items()))}
    if bearer:
        components["securitySchemes"] = {
            BEARER: {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": (
                    "A token from POST /login, verified by the mesh (the sidecar passes the "
                    "verified payload in x-jwt-payload)"
                ),
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": components,
    }
