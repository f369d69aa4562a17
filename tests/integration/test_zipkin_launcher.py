"""The local Zipkin launcher against a real server (zipkin-server exec jar from Maven Central)."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from mesh.infra.zipkin import (
    ZipkinError,
    ZipkinServer,
    running_zipkin,
    start_zipkin,
    stop_zipkin,
    zipkin_app,
)
from mesh.runtime import ports
from tests.support.processes import (
    listening_addresses,
    listening_sockets_of,
    processes_using,
    quiet,
)

pytestmark = pytest.mark.integration


def _spans(trace_id: str) -> list[dict[str, Any]]:
    """A server span and its client child, as an instrumented service would report them."""
    now = int(time.time() * 1_000_000)
    root, child = secrets.token_hex(8), secrets.token_hex(8)
    endpoint = {"serviceName": "order-service", "ipv4": "127.0.0.1", "port": 8082}
    return [
        {
            "traceId": trace_id, "id": root, "name": "post /orders", "kind": "SERVER",
            "timestamp": now, "duration": 15_000, "localEndpoint": endpoint,
            "tags": {"http.method": "POST", "http.route": "/orders", "http.status_code": "201"},
        },
        {
            "traceId": trace_id, "parentId": root, "id": child, "name": "get /products/{id}",
            "kind": "CLIENT", "timestamp": now + 1_000, "duration": 5_000,
            "localEndpoint": endpoint, "remoteEndpoint": {"serviceName": "catalog-service"},
        },
    ]  # fmt: skip


async def _read_trace(
    session: aiohttp.ClientSession, server: ZipkinServer, trace_id: str
) -> list[dict[str, Any]]:
    """The stored spans of `trace_id`, once there (the collector stores asynchronously)."""
    async with asyncio.timeout(10):
        while True:
            async with session.get(f"{server.url}/api/v2/trace/{trace_id}") as response:
                if response.status == 200:
                    spans: list[dict[str, Any]] = await response.json()
                    return spans
                assert response.status == 404, await response.text()
            await asyncio.sleep(0.1)


async def test_spans_posted_can_be_read_back(zipkin_server: ZipkinServer) -> None:
    trace_id = secrets.token_hex(16)
    sent = _spans(trace_id)
    async with aiohttp.ClientSession() as session:
        async with session.post(zipkin_server.collector_endpoint, json=sent) as response:
            assert response.status == 202, await response.text()
        stored = await _read_trace(session, zipkin_server, trace_id)
        async with session.get(f"{zipkin_server.url}/api/v2/services") as response:
            assert response.status == 200
            services = await response.json()
    assert sorted(s["id"] for s in stored) == sorted(s["id"] for s in sent)
    by_id = {s["id"]: s for s in stored}
    server_span, client_span = by_id[sent[0]["id"]], by_id[sent[1]["id"]]
    assert server_span["name"] == "post /orders"
    assert server_span["kind"] == "SERVER"
    assert server_span["tags"]["http.route"] == "/orders"
    assert server_span["localEndpoint"]["serviceName"] == "order-service"
    assert client_span["parentId"] == sent[0]["id"]
    assert client_span["remoteEndpoint"]["serviceName"] == "catalog-service"
    assert "order-service" in services


async def test_health_and_bad_spans(zipkin_server: ZipkinServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{zipkin_server.url}/health") as response:
            assert response.status == 200
            assert (await response.json())["status"] == "UP"
        json_type = {"Content-Type": "application/json"}
        endpoint = zipkin_server.collector_endpoint
        async with session.post(endpoint, data=b"not json", headers=json_type) as response:
            assert response.status == 400


def test_listens_only_on_loopback(zipkin_server: ZipkinServer) -> None:
    # 127.0.0.1 only, nothing on 0.0.0.0 or ::
    assert listening_addresses({zipkin_server.port}) == {("127.0.0.1", zipkin_server.port)}
    # Nor any other listener of the JVM (no scribe, JMX or management port).
    assert listening_sockets_of(zipkin_server.pid) == ["127.0.0.1"]


def test_second_start_returns_the_running_server(zipkin_server: ZipkinServer) -> None:
    assert start_zipkin(zipkin_server.run_dir, progress=quiet) == zipkin_server
    assert running_zipkin(zipkin_server.run_dir) == zipkin_server
    with pytest.raises(ZipkinError, match="already running"):
        start_zipkin(zipkin_server.run_dir, port=zipkin_server.port + 1, progress=quiet)


def test_jar_is_not_fetched_again(monkeypatch: pytest.MonkeyPatch) -> None:
    app = zipkin_app(quiet)
    monkeypatch.setenv("PATH", "/nonexistent")  # no mvn (nor java): must not be needed
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert zipkin_app(progress=pytest.fail) == app
    assert app.name.startswith("zipkin-server-3.")
    assert (app.parent / "lib").is_dir()  # extracted: plain jars, as AppCDS needs


def test_stop_and_restart_reuse_the_port(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = start_zipkin(run_dir, progress=quiet)
    try:
        assert (run_dir / "zipkin" / "zipkin.port").read_text().strip() == str(first.port)
        assert stop_zipkin(run_dir) is True
        assert processes_using(run_dir) == []  # nor a zombie: its /proc entry is gone
        assert not psutil.pid_exists(first.pid)
        assert running_zipkin(run_dir) is None
        assert stop_zipkin(run_dir) is False

        second = start_zipkin(run_dir, progress=quiet)
        assert second.port == first.port
        assert second.pid != first.pid
        assert running_zipkin(run_dir) == second
    finally:
        stop_zipkin(run_dir)
    assert processes_using(run_dir) == []


def test_a_jvm_that_dies_is_reported_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ZipkinError, match="already in use"):
            start_zipkin(run_dir, port=port, progress=quiet)
        # Lose the race for the port (something binds it between our check and the JVM's bind).
        monkeypatch.setattr(ports, "port_is_free", lambda _port: True)
        with pytest.raises(ZipkinError) as failure:
            start_zipkin(run_dir, port=port, progress=quiet)
    message = str(failure.value)
    first_line = message.splitlines()[0]
    assert first_line.startswith("Zipkin exited during startup (exit 1): ")
    assert "Address already in use" in first_line
    assert f"--- {run_dir / 'zipkin' / 'zipkin.log'} ---" in message
    assert running_zipkin(run_dir) is None
    assert processes_using(run_dir) == []
