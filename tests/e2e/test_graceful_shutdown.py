"""SIGTERM drains: a request in flight when the service is told to stop still gets its answer."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from mesh.infra.postgres import PostgresServer, database_dsn, ensure_databases
from services.user.tokens import generate_private_key_pem
from tests.support.identity import as_user
from tests.support.shop import free_base_port


async def _wait_ready(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            assert proc.returncode is None, "user-service exited during start-up"
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never became ready")


async def _wait_refusing(port: int, timeout: float = 10) -> None:
    """Until nothing listens on `port` any more: the service began its shutdown."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.05)
    raise AssertionError(f"port {port} still accepts connections {timeout} s after SIGTERM")


async def test_sigterm_lets_in_flight_requests_finish(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    arrived, released = asyncio.Event(), asyncio.Event()

    async def slow_orders(request: web.Request) -> web.Response:
        arrived.set()
        await asyncio.wait_for(released.wait(), 10)
        return web.json_response([{"orderId": "o-1"}])

    peer = web.Application()
    peer.router.add_get("/{userId}/orders", slow_orders)
    await ensure_databases(postgres_server.admin_dsn, ["drain_user"])
    key = tmp_path / "jwt.pem"
    key.write_bytes(generate_private_key_pem())
    port = free_base_port() + 1
    async with TestServer(peer) as orders:
        env = {
            **os.environ,
            "MESHMART_PORT": str(port),
            "MESHMART_DATABASE_URL": database_dsn(postgres_server.admin_dsn, "drain_user"),
            "MESHMART_JWT_SIGNING_KEY_FILE": str(key),
            "MESHMART_ORDER_SERVICE_URL": str(orders.make_url("")),
            "MESHMART_ORDERS_TIMEOUT_SECONDS": "8",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.user",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            await _wait_ready(f"{base}/health/ready", proc)
            async with aiohttp.ClientSession() as http:
                body = {"email": "drain@example.com", "name": "Dee", "pwd": "password-1"}
                async with http.post(f"{base}/users", json=body) as resp:
                    user_id = (await resp.json())["userId"]
                in_flight = asyncio.create_task(
                    http.get(f"{base}/users/{user_id}", headers=as_user(user_id))
                )
                await asyncio.wait_for(arrived.wait(), 10)  # in flight, waiting on the peer
                proc.send_signal(signal.SIGTERM)
                await _wait_refusing(port)  # the SIGTERM was handled: no new connections
                assert proc.returncode is None, "exited with a request still in flight"
                released.set()
                resp = await asyncio.wait_for(in_flight, 10)
                assert resp.status == 200
                assert (await resp.json())["orders"] == [{"orderId": "o-1"}]
            assert await asyncio.wait_for(proc.wait(), 15) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
