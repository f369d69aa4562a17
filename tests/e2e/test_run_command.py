"""`meshmart run` as a user runs it: a real process tree, the seed flow by HTTP, then Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

READY_LINE = "meshmart is up"


def _free_base_port() -> int:
    """A base port whose next three ports are free (the services use base+1..base+3)."""
    for base in range(21000, 29000, 10):
        ports = [base + i for i in (1, 2, 3)]
        try:
            for port in ports:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range")


def _listening_addresses(ports: set[int]) -> set[tuple[str, int]]:
    """(address, port) of LISTEN sockets on `ports`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port = local.rsplit(":", 1)
            if state == "0A" and int(port, 16) in ports:
                found.add((address, int(port, 16)))
    return found


def _pid_alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status  # a zombie waiting for its parent has already exited


@pytest.fixture
def meshmart_run(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    base = _free_base_port()
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mesh.cli",
            "run",
            "--run-dir",
            str(run_dir),
            "--base-port",
            str(base),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "MESHMART_PG_DSN"},
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 90
        output = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if READY_LINE in line:
                break
        assert any(READY_LINE in line for line in output), "".join(output)
        yield proc, base, run_dir
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def _json(resp: aiohttp.ClientResponse, status: int) -> Any:
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_seed_flow_then_ctrl_c_leaves_nothing_behind(
    meshmart_run: tuple[subprocess.Popen[str], int, Path],
) -> None:
    proc, base, run_dir = meshmart_run
    user, catalog, order = (f"http://127.0.0.1:{base + i}" for i in (1, 2, 3))
    state = json.loads((run_dir / "state.json").read_text())
    pids = [s["pid"] for s in state["services"].values()]
    postmaster = int((run_dir / "postgres" / "data" / "postmaster.pid").read_text().split()[0])

    assert _listening_addresses({base + 1, base + 2, base + 3}) == {
        ("0100007F", base + 1),
        ("0100007F", base + 2),
        ("0100007F", base + 3),
    }, "services must listen on 127.0.0.1 only"

    async with aiohttp.ClientSession() as http:
        body = {"email": "seed-flow@example.com", "name": "Ada", "pwd": "password-1"}
        created = await _json(await http.post(f"{user}/users", json=body), 201)
        login = {"email": body["email"], "password": body["pwd"]}
        token = await _json(await http.post(f"{user}/login", json=login), 200)
        assert token["userId"] == created["userId"]
        products = await _json(await http.get(f"{catalog}/catalogs"), 200)
        berlin = next(p for p in products if p["productId"] == "CATALOG-001")
        placed = await _json(
            await http.post(
                f"{order}/{created['userId']}/orders",
                json={"productId": "CATALOG-001", "qty": 2, "unitPrice": berlin["unitPrice"]},
            ),
            201,
        )
        detail = await _json(await http.get(f"{user}/users/{created['userId']}"), 200)
        assert [o["orderId"] for o in detail["orders"]] == [placed["orderId"]]

    proc.send_signal(signal.SIGINT)
    assert await asyncio.to_thread(proc.wait, 60) == 0
    assert proc.stdout is not None
    tail = proc.stdout.read()
    assert "stopped PostgreSQL" in tail, tail
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_pid_alive(p) for p in [*pids, postmaster]):
        await asyncio.sleep(0.1)
    assert [p for p in [*pids, postmaster] if _pid_alive(p)] == []
    assert not (run_dir / "state.json").exists()


def test_db_command_is_idempotent(tmp_path: Path) -> None:
    def db(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mesh.cli", "db", *args, "--run-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            env={k: v for k, v in os.environ.items() if k != "MESHMART_PG_DSN"},
        )

    try:
        first = db("up")
        assert first.returncode == 0, first.stderr
        assert "created, migrations applied 001_" in first.stdout
        second = db("up")
        assert second.returncode == 0, second.stderr
        assert second.stdout.count("exists, migrations up to date") == 3
        assert "***@127.0.0.1" in second.stdout
        password = (tmp_path / "postgres" / "postgres.password").read_text().strip()
        assert password not in first.stdout + second.stdout
        assert db("status").returncode == 0
    finally:
        db("down")
    assert db("status").returncode == 3


def test_config_encrypt_decrypt_round_trip(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    cli = [sys.executable, "-m", "mesh.cli", "config"]
    key = subprocess.run([*cli, "genkey"], capture_output=True, text=True, check=True).stdout
    key_file.write_text(key)
    encrypted = subprocess.run(
        [*cli, "encrypt", "--key-file", str(key_file)],
        input="db-password-42\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert encrypted.startswith("{cipher}") and "db-password-42" not in encrypted
    decrypted = subprocess.run(
        [*cli, "decrypt", encrypted, "--key-file", str(key_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert decrypted == "db-password-42"
    wrong = tmp_path / "wrong"
    wrong.write_text(subprocess.run([*cli, "genkey"], capture_output=True, text=True).stdout)
    failed = subprocess.run(
        [*cli, "decrypt", encrypted, "--key-file", str(wrong)], capture_output=True, text=True
    )
    assert (
        failed.returncode == 1 and "wrong key" in failed.stderr and "Traceback" not in failed.stderr
    )
