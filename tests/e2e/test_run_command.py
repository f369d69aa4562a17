"""`meshmart run` as a user runs it: a real process tree, the seed flow by HTTP, then Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.identity import as_user
from tests.support.processes import listening_addresses, processes_using, still_alive_after
from tests.support.shop import free_base_port, output
from tests.support.waiting import eventually


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
    pids.append(state["kafka_pid"])

    assert listening_addresses({base + 1, base + 2, base + 3}) == {
        ("127.0.0.1", base + 1),
        ("127.0.0.1", base + 2),
        ("127.0.0.1", base + 3),
    }, "services must listen on 127.0.0.1 only"

    async with aiohttp.ClientSession() as http:
        body = {"email": "seed-flow@example.com", "name": "Ada", "pwd": "password-1"}
        created = await _json(await http.post(f"{user}/users", json=body), 201)
        login = {"email": body["email"], "password": body["pwd"]}
        token = await _json(await http.post(f"{user}/login", json=login), 200)
        assert token["userId"] == created["userId"]
        products = await _json(await http.get(f"{catalog}/catalogs"), 200)
        berlin = next(p for p in products if p["productId"] == "CATALOG-001")
        # Direct mode has no sidecars: the test sends the identity a sidecar would have set.
        me = as_user(created["userId"])
        placed = await _json(
            await http.post(
                f"{order}/{created['userId']}/orders",
                json={"productId": "CATALOG-001", "qty": 2, "unitPrice": berlin["unitPrice"]},
                headers=me,
            ),
            201,
        )
        detail = await _json(await http.get(f"{user}/users/{created['userId']}", headers=me), 200)
        assert [o["orderId"] for o in detail["orders"]] == [placed["orderId"]]

        async def confirmed() -> bool:
            orders = await _json(
                await http.get(f"{order}/{created['userId']}/orders", headers=me), 200
            )
            return bool(orders[0]["status"] == "CONFIRMED")

        await eventually(confirmed, 60)  # through Kafka: order -> catalog -> order
        products = await _json(await http.get(f"{catalog}/catalogs"), 200)
        berlin_now = next(p for p in products if p["productId"] == "CATALOG-001")
        assert berlin_now["stock"] == berlin["stock"] - 2

    proc.send_signal(signal.SIGINT)
    assert await asyncio.to_thread(proc.wait, 60) == 0
    tail = output(proc)
    assert "stopped PostgreSQL" in tail and "stopped Kafka" in tail, tail
    assert await asyncio.to_thread(still_alive_after, [*pids, postmaster], 10) == []
    assert not (run_dir / "state.json").exists()

    secrets = [
        (run_dir / "postgres" / "postgres.password").read_text().strip(),
        (run_dir / "secrets" / "cipher.key").read_text().strip(),
        (run_dir / "secrets" / "jwt-signing-key.pem").read_text().splitlines()[1],
        body["pwd"],
    ]
    logs = {p.name: p.read_text() for p in (run_dir / "logs").glob("*.log")}
    assert set(logs) == {"user-service.log", "catalog-service.log", "order-service.log"}
    for name, text in logs.items():
        assert text.strip(), name
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {name}"


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
        assert (
            "user-service: database user_service created, migrations applied user/001_users.sql"
            in first.stdout
        )
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


def test_ctrl_c_while_the_servers_start_leaves_nothing_behind(tmp_path: Path) -> None:
    """PostgreSQL, Kafka and Zipkin start side by side; a Ctrl-C in the middle still stops
    every one of them, including those whose start was still under way."""
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "mesh.cli", "run", "--run-dir", str(run_dir),
               "--ingress-port", str(free_base_port())]  # fmt: skip
    environment = {k: v for k, v in os.environ.items() if k != "MESHMART_PG_DSN"}
    starts = ("starting PostgreSQL", "starting Kafka", "starting Zipkin")
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment
    ) as proc:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # interrupt once all three starts are under way
            seen.append(line)
            if all(any(start in text for text in seen) for start in starts):
                break
        proc.send_signal(signal.SIGINT)
        output = "".join(seen) + proc.stdout.read()
        assert proc.wait(120) == 0, output
    assert "SIGINT: stopping" in output, output
    for server in ("PostgreSQL", "Kafka", "Zipkin"):
        assert f"stopped {server}" in output, output
    assert still_alive_after(processes_using(run_dir), 10) == []
