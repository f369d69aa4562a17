"""The soak itself, on a running shop: the load for its whole length, a sample every interval
(and one at the start and one at the end), then the wait for Kafka's lag to drain."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

from bench.shop import Shop, top_up_stock
from bench.soak_figures import Sample
from bench.soak_load import SteadyLoad
from bench.soak_probe import Probe, shop_roots
from bench.soak_report import progress

DRAIN_SECONDS = 30.0  # after the load: every consumer group is back to lag 0 by then


async def _sample(probe: Probe, load: SteadyLoad, elapsed: float) -> Sample:
    (processes, exposed), pg, lag = await asyncio.gather(
        probe.processes(), probe.pg_connections(), probe.lag()
    )
    return Sample(elapsed=round(elapsed, 1), processes=processes, pg_connections=pg, lag=lag,
                  requests=load.requests, errors=sum(load.errors().values()),
                  exposed=exposed)  # fmt: skip


async def _drain(probe: Probe) -> dict[str, int]:
    deadline = time.monotonic() + DRAIN_SECONDS
    while True:
        lag = await probe.lag()
        if not any(lag.values()) or time.monotonic() > deadline:
            return lag
        await asyncio.sleep(1.0)


async def _drive(probe: Probe, load: SteadyLoad, args: argparse.Namespace) -> list[Sample]:
    warmup, interval = args.warmup_minutes * 60, args.sample_seconds
    began = time.monotonic()
    driving = asyncio.create_task(load.run(args.minutes * 60))
    samples: list[Sample] = []
    try:
        while True:
            sample = await _sample(probe, load, time.monotonic() - began)
            print(progress(sample, samples[-1] if samples else None, warmup), flush=True)
            samples.append(sample)
            if driving.done():
                await driving  # its exception, if any
                return samples
            due = began + len(samples) * interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(driving), max(0.0, due - time.monotonic()))
    finally:
        driving.cancel()


async def soak(shop: Shop, args: argparse.Namespace, seen: dict[int, float]) -> dict[str, Any]:
    """samples, load and drained: the figures the verdicts are judged on."""
    probe = Probe(shop_roots(shop.state, shop.postgres_pid()), shop.admin_dsn,
                  shop.state["kafka_bootstrap_servers"], seen)  # fmt: skip
    try:
        shared_area = await probe.pg_shared_memory_mib()
        await top_up_stock(shop)
        async with SteadyLoad(shop.ingress, args.rps) as load:
            began = time.monotonic()
            samples = await _drive(probe, load, args)
            seconds = time.monotonic() - began
        drained = await _drain(probe)
    finally:
        await probe.close()
    answers = sorted((op, status, n) for (op, status), n in load.counts.items())
    return {
        "samples": [s.as_dict() for s in samples],
        "load": {"requests": load.requests, "rps": round(load.requests / seconds, 1),
                 "answers": answers, "errors": load.errors()},
        "drained": drained,
        "pg_shared_mib": shared_area,
    }  # fmt: skip
