"""One attempt, bounded in time, turned into PeerUnavailable: against a stand-in peer."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from services.common.peers import PeerUnavailable, get_json

calls: list[str] = []


async def ok(request: web.Request) -> web.Response:
    calls.append("ok")
    return web.json_response(
        [{"orderId": "o1"}], headers={"x-seen": request.headers.get("x-request-id", "")}
    )


async def slow(request: web.Request) -> web.Response:
    calls.append("slow")
    await asyncio.sleep(5)
    return web.json_response([])


async def fail(request: web.Request) -> web.Response:
    calls.append("fail")
    return web.Response(status=503)


@pytest.fixture
async def peer() -> TestServer:
    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/slow", slow)
    app.router.add_get("/fail", fail)
    server = TestServer(app)
    await server.start_server()
    calls.clear()
    yield server  # type: ignore[misc]
    await server.close()


async def test_json_from_peer(peer: TestServer) -> None:
    async with aiohttp.ClientSession() as session:
        data = await get_json(
            session, URL(str(peer.make_url("/ok"))), headers={}, timeout_seconds=1
        )
    assert data == [{"orderId": "o1"}]


async def test_slow_peer_is_bounded(peer: TestServer) -> None:
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(PeerUnavailable):
            await get_json(
                session, URL(str(peer.make_url("/slow"))), headers={}, timeout_seconds=0.2
            )
    assert time.monotonic() - started < 1.0


async def test_5xx_is_not_retried(peer: TestServer) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(PeerUnavailable, match="503"):
            await get_json(session, URL(str(peer.make_url("/fail"))), headers={}, timeout_seconds=1)
    assert calls == ["fail"]  # the mesh retries if configured; the app never does


async def test_refused_connection(unused_tcp_port: int) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(PeerUnavailable):
            await get_json(
                session, URL(f"http://127.0.0.1:{unused_tcp_port}/x"), headers={}, timeout_seconds=1
            )
