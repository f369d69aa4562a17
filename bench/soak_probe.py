"""One soak sample of a running shop: psutil's figures for every process in state.json,
PostgreSQL's client connections (pg_stat_activity) and each Kafka consumer group's lag (read
as the console reads it, mesh.console.kafka_offsets: end offset minus committed offset)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import psutil

from bench.soak_figures import ProcessFigures
from mesh.console.kafka_offsets import KafkaReader

LOOPBACK = ("127.", "::1", "::ffff:127.")
# PostgreSQL's main shared memory area is an anonymous shared mapping, which the kernel lists
# as /dev/zero (its size is shared_memory_size).
SHARED_AREA = "/dev/zero"
CLIENT_BACKENDS = (
    "SELECT datname, count(*) AS n FROM pg_stat_activity"
    " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY datname"
)


def shop_roots(state: dict[str, Any], postgres_pid: int) -> dict[str, int]:
    """label -> PID of every process `meshmart run` recorded, and the PostgreSQL postmaster."""
    roots = {"supervisor": state["supervisor_pid"], "postgres": postgres_pid,
             "kafka": state["kafka_pid"], "ingress": state["ingress"]["pid"]}  # fmt: skip
    if "zipkin_pid" in state:
        roots["zipkin"] = state["zipkin_pid"]
    if state.get("console"):
        roots["console"] = state["console"]["pid"]
    if state.get("loadgen"):
        roots["sidecar:loadgen"] = state["loadgen"]["sidecar_pid"]
    for name, workload in state["workloads"].items():
        roots[f"app:{name}"] = workload["app_pid"]
        roots[f"sidecar:{name}"] = workload["sidecar_pid"]
    return roots


class Probe:
    """Samples the shop; `seen` keeps every PID it met (with its start time), so whatever is
    left at the end is stopped by PID."""

    def __init__(self, roots: dict[str, int], admin_dsn: str, kafka: str,
                 seen: dict[int, float]) -> None:  # fmt: skip
        self.roots, self.admin_dsn, self.seen = roots, admin_dsn, seen
        self._kafka = KafkaReader(kafka)
        self._pg: asyncpg.Connection | None = None

    async def close(self) -> None:
        await self._kafka.close()
        if self._pg is not None:
            await self._pg.close()

    async def pg_connections(self) -> dict[str, int]:
        if self._pg is None:  # one connection for the whole soak: it adds no churn of its own
            self._pg = await asyncpg.connect(self.admin_dsn)
        return {row["datname"]: row["n"] for row in await self._pg.fetch(CLIENT_BACKENDS)}

    async def pg_shared_memory_mib(self) -> float:
        """The size of PostgreSQL's shared memory area, as the server computed it at start."""
        await self.pg_connections()  # opens the connection
        assert self._pg is not None
        return float(await self._pg.fetchval("SELECT setting FROM pg_settings"
                                             " WHERE name = 'shared_memory_size'"))  # fmt: skip

    async def lag(self) -> dict[str, int]:
        snapshot = await self._kafka.read()
        return {group: sum(snapshot.lag(group, t) for t in snapshot.consumed_topics(group))
                for group in sorted(snapshot.committed)}  # fmt: skip

    async def processes(self) -> tuple[dict[str, ProcessFigures], list[str]]:
        return await asyncio.to_thread(self._processes)

    def _processes(self) -> tuple[dict[str, ProcessFigures], list[str]]:
        figures: dict[str, ProcessFigures] = {}
        exposed: list[str] = []
        for label, pid in self.roots.items():
            try:
                root = psutil.Process(pid)
                # The supervisor's descendants are the other roots: its own figures only.
                tree = [root] if label == "supervisor" else [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue  # gone: the judge's "alive" check reports it
            found = [f for p in tree if (f := self._one(p, label, exposed)) is not None]
            if found:
                figures[label] = ProcessFigures(
                    pid=pid, processes=len(found), rss_mib=round(sum(f[0] for f in found), 1),
                    pss_mib=round(sum(f[1] for f in found), 1), fds=sum(f[2] for f in found),
                    tcp=sum(f[3] for f in found), shared_mib=round(sum(f[4] for f in found), 1),
                )  # fmt: skip
        return figures, exposed

    def _one(
        self, p: psutil.Process, label: str, exposed: list[str]
    ) -> tuple[float, float, int, int, float] | None:
        """(RSS MiB, PSS MiB, fds, TCP connections, PSS MiB in PostgreSQL's shared area) of one
        process; listeners off loopback noted."""
        try:
            with p.oneshot():
                self.seen.setdefault(p.pid, p.create_time())
                memory = p.memory_full_info()  # smaps: PSS as well as RSS
                rss, pss, fds = memory.rss / 2**20, memory.pss / 2**20, p.num_fds()
                sockets = p.net_connections(kind="tcp")
                maps = p.memory_maps() if label == "postgres" else []
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None  # a PostgreSQL backend that ended between listing and reading
        listening = [s for s in sockets if s.status == psutil.CONN_LISTEN]
        exposed += [f"{label} {s.laddr.ip}:{s.laddr.port}" for s in listening
                    if not s.laddr.ip.startswith(LOOPBACK)]  # fmt: skip
        shared = sum(m.pss for m in maps if m.path == SHARED_AREA) / 2**20
        return rss, pss, fds, len(sockets) - len(listening), shared
