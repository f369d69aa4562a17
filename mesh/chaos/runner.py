"""A chaos run against a running shop: shoppers order and read through the ingress while a
schedule injects faults one after another and then two at a time; afterwards the checker
proves, from the journal and two snapshots, that nothing was lost or doubled.

`run` writes operations.jsonl, faults.jsonl and report.txt to the out dir.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer

from mesh.chaos import faults
from mesh.chaos.client import catalog_products, shop, sign_up
from mesh.chaos.faults import Shop
from mesh.chaos.invariants import POISON_HEADER, Bounds, Violation, check_run
from mesh.chaos.record import Journal, Operation, write_jsonl
from mesh.chaos.report import render
from mesh.chaos.snapshot import SETTLED, Snapshot, take_snapshot
from mesh.chaos.timeline import Fault
from services.common.events import ORDER_EVENTS

Step = Callable[[Shop], Awaitable[Fault]]


@dataclass(frozen=True)
class Scale:
    """How big a run is: shoppers, their pace, the quiet between faults, rounds of the
    schedule. CI runs one round; `make chaos` runs the full scale."""

    name: str
    shoppers: int
    pace_seconds: float
    quiet_seconds: float
    rounds: int


CI = Scale("ci", shoppers=4, pace_seconds=0.25, quiet_seconds=4.0, rounds=1)
FULL = Scale("full", shoppers=10, pace_seconds=0.1, quiet_seconds=8.0, rounds=3)
SCALES = {scale.name: scale for scale in (CI, FULL)}


def schedule(shop: Shop) -> list[tuple[Step, ...]]:
    """One round: each fault alone, then two overlapping pairs (a step of two runs both at
    once). Needs two order-service v1 replicas (`meshmart run --replicas order=2`), so one
    serves while the other is down."""
    order_a, order_b = shop.workloads("order-service")[:2]
    (catalog,) = shop.workloads("catalog-service")[:1]
    kill = faults.kill_child
    return [
        (partial(kill, name=order_a),),
        (partial(kill, name=f"{order_b}-envoy"),),
        (partial(kill, name=catalog),),
        (partial(kill, name=f"{catalog}-envoy"),),
        (faults.kill_kafka,),
        (faults.restart_postgres,),
        (partial(faults.route_fault, file="virtual-service-order-abort-50.yaml", seconds=8),),
        # 0.5 s route timeout on order-service while its catalog calls are delayed 3 s
        (partial(faults.route_fault, file="virtual-service-order-timeout.yaml", seconds=8),),
        (partial(faults.stall, name=catalog),),
        (faults.kill_kafka, partial(kill, name=order_b)),
        (faults.restart_postgres, partial(kill, name=f"{catalog}-envoy")),
    ]


@dataclass(frozen=True)
class Outcome:
    operations: list[Operation]
    faults: list[Fault]
    violations: list[Violation]


def run(
    run_dir: Path,
    out_dir: Path,
    scale: Scale,
    *,
    bounds: Bounds = Bounds(),  # noqa: B008 - frozen
    say: Callable[[str], None] = print,
) -> Outcome:
    """The run, then its record in `out_dir` (operations.jsonl, faults.jsonl, report.txt)."""
    outcome = asyncio.run(_run(Shop(run_dir), scale, bounds, say))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(out_dir / "operations.jsonl", outcome.operations)
    write_jsonl(out_dir / "faults.jsonl", outcome.faults)
    report = render(
        outcome.operations, outcome.faults, outcome.violations, grace_seconds=bounds.grace_seconds
    )
    (out_dir / "report.txt").write_text(report)
    say(report)
    return outcome


async def _run(shop_: Shop, scale: Scale, bounds: Bounds, say: Callable[[str], None]) -> Outcome:
    journal = Journal()
    injected: list[Fault] = []
    async with aiohttp.ClientSession() as session:
        accounts = [await sign_up(session, shop_.ingress) for _ in range(scale.shoppers)]
        products = await catalog_products(session, shop_.ingress)
        before = await take_snapshot(shop_.database_dsns(), shop_.bootstrap_servers())
        say(f"chaos ({scale.name}): {len(accounts)} shoppers on {len(products)} products")
        stop = asyncio.Event()
        shopping = partial(shop, session, shop_.ingress, products=products, journal=journal,
                           stop=stop, pace=scale.pace_seconds)  # fmt: skip
        shoppers = [asyncio.create_task(shopping(account=account)) for account in accounts]
        try:
            await asyncio.sleep(scale.quiet_seconds)
            await _send_poison(shop_.bootstrap_servers())
            for round_number in range(1, scale.rounds + 1):
                for steps in schedule(shop_):
                    began = time.monotonic()
                    done = await asyncio.gather(*(step(shop_) for step in steps))
                    injected.extend(done)
                    names = " + ".join(f.name for f in done)
                    say(f"  round {round_number}: {names} ({time.monotonic() - began:.1f} s, "
                        f"{len(journal)} operations so far)")  # fmt: skip
                    await asyncio.sleep(scale.quiet_seconds)
        finally:
            stop.set()
            await asyncio.gather(*shoppers)
        after = await _settled(shop_, before, bounds.settle_seconds)
    operations = journal.operations()
    violations = check_run(operations, injected, before, after, bounds, poison_sent=True)
    return Outcome(operations, injected, violations)


async def _send_poison(bootstrap_servers: str) -> None:
    """One message catalog-service cannot parse: it must land in order-events.dlq, and only
    it (the checker knows it by its header)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            ORDER_EVENTS, b"{not json", key=b"chaos-poison", headers=[(POISON_HEADER, b"1")]
        )
    finally:
        await producer.stop()


async def _settled(shop: Shop, before: Snapshot, within: float) -> Snapshot:
    """The snapshot once every order placed during the run is CONFIRMED or REJECTED and every
    outbox is empty, or the last one after `within` seconds (the checker then names what did
    not settle)."""
    deadline = time.monotonic() + within
    while True:
        after = await take_snapshot(shop.database_dsns(), shop.bootstrap_servers())
        new = [o for oid, o in after.orders.items() if oid not in before.orders]
        pending = [o for o in new if o.status not in SETTLED]
        if (not pending and not any(after.unsent_outbox.values())) or time.monotonic() > deadline:
            return after
        await asyncio.sleep(1.0)
