"""Validation and error shapes over real HTTP, on a tiny app with no database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.common.errors import problem_middleware
from services.common.requests import read_body
from services.order.models import OrderRequest
from services.user.models import SignupRequest


async def signup(request: web.Request) -> web.Response:
    body = await read_body(request, SignupRequest)
    return web.json_response({"email": body.email})


async def order(request: web.Request) -> web.Response:
    body = await read_body(request, OrderRequest)
    return web.json_response({"qty": body.qty})


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("database password is hunter2")


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[problem_middleware])
    app.router.add_post("/signup", signup)
    app.router.add_post("/order", order)
    app.router.add_get("/boom", boom)
    async with TestClient(TestServer(app)) as c:
        yield c


async def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = await resp.json(content_type=None)
    assert body["status"] == status
    return body


def fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors", [])}


async def test_valid_signup(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.post(
        "/signup", json={"email": "a@example.com", "name": "Al", "pwd": "12345678"}
    )
    assert resp.status == 200


async def test_bad_json_is_400(client: TestClient[web.Request, web.Application]) -> None:
    body = await problem(await client.post("/signup", data=b"{not json"), 400)
    assert body["errors"][0]["message"] == "body is not valid JSON"


async def test_empty_body_is_400(client: TestClient[web.Request, web.Application]) -> None:
    assert fields(await problem(await client.post("/signup", data=b""), 400)) == {"body"}


async def test_every_bad_field_is_named(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.post("/signup", json={"email": "not-an-email", "name": "A", "pwd": "short"})
    assert fields(await problem(resp, 400)) == {"email", "name", "pwd"}


async def test_missing_fields(client: TestClient[web.Request, web.Application]) -> None:
    assert fields(await problem(await client.post("/signup", json={}), 400)) == {
        "email",
        "name",
        "pwd",
    }


async def test_wrong_types(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.post("/order", json={"productId": 7, "qty": "2", "unitPrice": 1.5})
    assert fields(await problem(resp, 400)) == {"productId", "qty", "unitPrice"}


@pytest.mark.parametrize("qty", [0, -1])
async def test_qty_below_one(client: TestClient[web.Request, web.Application], qty: int) -> None:
    resp = await client.post("/order", json={"productId": "P", "qty": qty, "unitPrice": 1})
    assert fields(await problem(resp, 400)) == {"qty"}


async def test_json_array_instead_of_object(
    client: TestClient[web.Request, web.Application],
) -> None:
    assert fields(await problem(await client.post("/order", json=[1, 2]), 400)) == {"body"}


async def test_unhandled_error_is_a_bare_500(
    client: TestClient[web.Request, web.Application],
) -> None:
    resp = await client.get("/boom")
    text = await resp.text()
    assert resp.status == 500 and "hunter2" not in text and "Traceback" not in text


async def test_unknown_route_and_method_are_problems(
    client: TestClient[web.Request, web.Application],
) -> None:
    await problem(await client.get("/nope"), 404)
    resp = await client.get("/signup")
    await problem(resp, 405)
    assert resp.headers["Allow"] == "POST"
