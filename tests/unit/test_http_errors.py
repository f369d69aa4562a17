"""Validation and error shapes over real HTTP, on a tiny app with no database."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mesh.runtime.ports import free_port
from services.common.errors import DATABASE_UNAVAILABLE_DETAIL, problem_middleware
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


# What asyncpg and the socket layer raise while PostgreSQL restarts, one per kind.
CONNECTION_LOST: dict[str, BaseException] = {
    "refused": ConnectionRefusedError(111, "Connect call failed"),
    "reset": ConnectionResetError(104, "Connection reset by peer"),
    "connection error": asyncpg.PostgresConnectionError("connection failure"),
    "closed mid-query": asyncpg.exceptions.ConnectionDoesNotExistError(
        "connection was closed in the middle of operation"
    ),
    "starting up": asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    "admin shutdown": asyncpg.exceptions.AdminShutdownError(
        "terminating connection due to administrator command"
    ),
    "connection is closed": asyncpg.InterfaceError("connection is closed"),
    "pool is closing": asyncpg.InterfaceError("pool is closing"),
    "cut mid-protocol": asyncpg.exceptions.InternalClientError("protocol is in an unknown state"),
}


async def raise_named(request: web.Request) -> web.Response:
    raise CONNECTION_LOST[request.match_info["kind"]]


async def wrong_argument(request: web.Request) -> web.Response:
    # A bug in our own query arguments is an InterfaceError too, but not a lost connection.
    raise asyncpg.exceptions.DataError("invalid input for query argument $1: 'x' (expected int)")


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[problem_middleware])
    app.router.add_post("/signup", signup)
    app.router.add_post("/order", order)
    app.router.add_get("/boom", boom)
    app.router.add_get("/db/{kind}", raise_named)
    app.router.add_get("/data-error", wrong_argument)
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


@pytest.mark.parametrize("kind", sorted(CONNECTION_LOST))
async def test_a_lost_database_is_a_503_to_retry(
    client: TestClient[web.Request, web.Application], kind: str
) -> None:
    resp = await client.get(f"/db/{kind}")
    body = await problem(resp, 503)
    assert body["detail"] == DATABASE_UNAVAILABLE_DETAIL
    assert resp.headers["Retry-After"] == "1"


async def test_a_wrong_query_argument_stays_a_500(
    client: TestClient[web.Request, web.Application],
) -> None:
    await problem(await client.get("/data-error"), 500)


async def _refuse_as_starting_up(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """What PostgreSQL answers a startup message while it recovers (FATAL 57P03)."""
    (length,) = struct.unpack("!I", await reader.readexactly(4))
    await reader.readexactly(length - 4)
    fields = b"".join(
        code + text + b"\0"
        for code, text in (
            (b"S", b"FATAL"),
            (b"V", b"FATAL"),
            (b"C", b"57P03"),
            (b"M", b"the database system is starting up"),
        )
    )
    writer.write(b"E" + struct.pack("!I", len(fields) + 5) + fields + b"\0")
    await writer.drain()
    writer.close()


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


@pytest.mark.parametrize("server", ["nothing listening", "starting up", "hangs up"])
async def test_pool_acquisition_errors_are_the_mapped_types(server: str) -> None:
    """A handler's `pool.acquire()` while PostgreSQL is down raises one of the mapped types."""
    port = free_port()
    listening = None
    if server != "nothing listening":
        callback = _refuse_as_starting_up if server == "starting up" else _hang_up
        listening = await asyncio.start_server(callback, "127.0.0.1", port)
    dsn = f"postgresql://u:p@127.0.0.1:{port}/db?sslmode=disable"
    pool = await asyncpg.create_pool(dsn, min_size=0, max_size=1)

    async def handler(request: web.Request) -> web.Response:
        async with pool.acquire() as connection:
            return web.json_response(await connection.fetchval("SELECT 1"))

    app = web.Application(middlewares=[problem_middleware])
    app.router.add_get("/", handler)
    try:
        async with TestClient(TestServer(app)) as c:
            resp = await c.get("/")
            assert (await problem(resp, 503))["detail"] == DATABASE_UNAVAILABLE_DETAIL
    finally:
        await pool.close()
        if listening is not None:
            listening.close()
