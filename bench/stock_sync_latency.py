"""Benchmark: how long from `POST /{userId}/orders` (201) until the stock change is visible.

Measures, per order, the time until GET /catalogs/{productId} shows the reduced stock and the
time until the order reads CONFIRMED (order -> outbox -> Kafka -> catalog -> outbox -> Kafka
-> order). Starts its own `meshmart run --direct` in .cache/bench unless --no-start is given;
direct mode has no sidecars, so the benchmark sends the verified identity a sidecar would.

    .venv/bin/python bench/stock_sync_latency.py --orders 50
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from services.common.principal import PAYLOAD_HEADER, encode_payload

REPO = Path(__file__).resolve().parents[1]
POLL_SECONDS = 0.002


@contextmanager
def shop(base_port: int) -> Iterator[None]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesh.cli", "run", "--direct",
         "--run-dir", str(REPO / ".cache" / "bench"), "--base-port", str(base_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    started = time.monotonic()
    for line in proc.stdout:
        if "meshmart is up" in line:
            break
    else:
        raise SystemExit("meshmart run did not come up")
    print(f"shop up in {time.monotonic() - started:.1f} s (PostgreSQL, Kafka, three services)")
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        proc.stdout.close()


async def measure(base_port: int, orders: int) -> None:
    catalog_url, order_url = (f"http://127.0.0.1:{base_port + i}" for i in (2, 3))
    stock_delays, confirm_delays = [], []
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{catalog_url}/catalogs/CATALOG-002") as resp:
            product = await resp.json()
        buyer = f"bench-{uuid.uuid4().hex[:8]}"
        identity = {PAYLOAD_HEADER: encode_payload({"iss": "meshmart-user-service", "sub": buyer})}
        stock = product["stock"]
        for _ in range(min(orders, stock)):
            body = {"productId": "CATALOG-002", "qty": 1, "unitPrice": product["unitPrice"]}
            async with http.post(
                f"{order_url}/{buyer}/orders", json=body, headers=identity
            ) as resp:
                assert resp.status == 201, await resp.text()
                placed = (await resp.json())["orderId"]
            sent = time.monotonic()
            stock -= 1
            while True:
                async with http.get(f"{catalog_url}/catalogs/CATALOG-002") as resp:
                    if (await resp.json())["stock"] == stock:
                        break
                await asyncio.sleep(POLL_SECONDS)
            stock_delays.append(time.monotonic() - sent)
            while True:
                async with http.get(f"{order_url}/{buyer}/orders", headers=identity) as resp:
                    latest = (await resp.json())[0]
                if latest["orderId"] == placed and latest["status"] == "CONFIRMED":
                    break
                await asyncio.sleep(POLL_SECONDS)
            confirm_delays.append(time.monotonic() - sent)
    for name, delays in (("stock visible", stock_delays), ("order CONFIRMED", confirm_delays)):
        ms = sorted(d * 1000 for d in delays)
        print(
            f"{name:>16}: n={len(ms)} p50={statistics.median(ms):.1f} ms "
            f"p95={ms[int(len(ms) * 0.95) - 1]:.1f} ms max={ms[-1]:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--base-port", type=int, default=8300)
    parser.add_argument("--no-start", action="store_true", help="use a shop already running")
    args = parser.parse_args()
    if args.no_start:
        asyncio.run(measure(args.base_port, args.orders))
        return
    with shop(args.base_port):
        asyncio.run(measure(args.base_port, args.orders))


if __name__ == "__main__":
    main()
