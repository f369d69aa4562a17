"""Samples of every proxy's Envoy figures and of Kafka's offsets, a few seconds apart.

Rates are counter differences between the newest sample and the oldest one inside the window
(Kiali asks Prometheus for `rate(...[1m])`; a local console wants to react in seconds).
Sampling runs only while someone is looking: it starts on the first request and stops after
`idle_after` seconds without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

import aiohttp

from mesh.console.envoy_stats import EnvoySnapshot, read_envoy
from mesh.console.kafka_offsets import KafkaReader, KafkaSnapshot
from mesh.console.shop import NotRunning, Shop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    at: float
    envoys: dict[str, EnvoySnapshot] = field(default_factory=dict)  # proxy name -> figures
    down: dict[str, str] = field(default_factory=dict)  # proxy name -> why it did not answer
    kafka: KafkaSnapshot | None = None


@dataclass(frozen=True)
class Window:
    """The samples inside the window, oldest first: rates are differences between the first
    and the last; a p99 is the worst of Envoy's flush intervals in between."""

    samples: tuple[Sample, ...]

    @property
    def older(self) -> Sample:
        return self.samples[0]

    @property
    def newer(self) -> Sample:
        return self.samples[-1]

    @property
    def seconds(self) -> float:
        return self.newer.at - self.older.at

    def p99_ms(self, proxy: str, histogram: str) -> float | None:
        """None when no flush interval in the window had a request (Envoy reports null)."""
        values = [
            value
            for sample in self.samples
            if (snapshot := sample.envoys.get(proxy)) is not None
            and (value := snapshot.p99_ms.get(histogram)) is not None
        ]
        return max(values, default=None)


class Sampler:
    def __init__(
        self, shop: Shop, *, interval: float = 2.0, window: float = 10.0, idle_after: float = 60.0
    ) -> None:
        self.shop, self.interval, self.window, self.idle_after = shop, interval, window, idle_after
        self.samples: deque[Sample] = deque()
        self._task: asyncio.Task[None] | None = None
        self._wanted = 0.0
        self._new = asyncio.Condition()
        self._kafka: KafkaReader | None = None
        self._session: aiohttp.ClientSession | None = None

    def http(self) -> aiohttp.ClientSession:
        """The console's one HTTP client (Envoy admin APIs, Zipkin), closed with the sampler."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
        return self._session

    async def take(self) -> Sample:
        topology = self.shop.topology()
        envoys: dict[str, EnvoySnapshot] = {}
        down: dict[str, str] = {}
        proxies = topology.proxies
        read = await asyncio.gather(
            *(read_envoy(self.http(), p.admin_port) for p in proxies), return_exceptions=True
        )
        for proxy, result in zip(proxies, read, strict=True):
            if isinstance(result, EnvoySnapshot):
                envoys[proxy.name] = result
            else:
                down[proxy.name] = repr(result)
        return Sample(time.monotonic(), envoys, down, await self._read_kafka())

    async def _read_kafka(self) -> KafkaSnapshot | None:
        bootstrap = self.shop.kafka_bootstrap_servers
        if self._kafka is None or self._kafka.bootstrap_servers != bootstrap:
            self._kafka = KafkaReader(bootstrap)
        try:
            return await asyncio.wait_for(self._kafka.read(), 5)
        except Exception as exc:  # the broker may be restarting: the graph shows it as unknown
            log.info("kafka offsets unavailable: %r", exc)
            return None

    def _keep(self, sample: Sample) -> None:
        self.samples.append(sample)
        # keep one sample older than the window, so the window is always covered
        while len(self.samples) > 2 and self.samples[1].at <= sample.at - self.window:
            self.samples.popleft()

    async def _loop(self) -> None:
        while time.monotonic() - self._wanted < self.idle_after:
            try:
                sample = await self.take()
            except NotRunning:
                self.samples.clear()
            else:
                self._keep(sample)
            async with self._new:
                self._new.notify_all()
            await asyncio.sleep(self.interval)

    def _ensure_running(self) -> None:
        self._wanted = time.monotonic()
        if self._task is None or self._task.done():
            self.samples.clear()  # rates from before an idle spell would mislead
            self._task = asyncio.create_task(self._loop())

    async def current(self) -> Window:
        """The newest window; NotRunning if the shop is not up. Waits for a second sample."""
        self._ensure_running()
        self.shop.state()  # NotRunning, said at once
        deadline = time.monotonic() + 3 * self.interval
        while len(self.samples) < 2 and time.monotonic() < deadline:
            async with self._new:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new.wait(), self.interval * 2)
            self.shop.state()
        if not self.samples:
            raise NotRunning("the shop's proxies did not answer")
        return Window(tuple(self.samples))

    async def next(self) -> Window:
        """The window after the next sample (for the live stream)."""
        self._ensure_running()
        async with self._new:
            await asyncio.wait_for(self._new.wait(), self.interval * 5)
        return await self.current()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._kafka is not None:
            await self._kafka.close()
        if self._session is not None:
            await self._session.close()
