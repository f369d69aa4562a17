"""What one soak sample holds: every process's figures, PostgreSQL's connections, Kafka's lag
and the load so far. Plain data, so the judge is tested on hand-made samples."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProcessFigures:
    """One process of the shop, its descendants summed in (PostgreSQL's backends)."""

    pid: int  # the root: a different one later means the process was restarted
    processes: int
    rss_mib: float
    # Proportional set size: shared pages split between the processes sharing them. A
    # PostgreSQL backend's RSS grows as it touches shared buffers, so summed RSS of the
    # server climbs with no leak; summed PSS counts each shared page once.
    pss_mib: float
    fds: int
    tcp: int  # TCP connections; listening sockets are not counted
    # Of pss_mib, the pages of a shared memory area: PostgreSQL's (shared_buffers, WAL
    # buffers, locks), which it sizes once at start (shared_memory_size) and fills as the data
    # it caches grows. 0 for every other process.
    shared_mib: float = 0.0

    @property
    def private_mib_each(self) -> float:
        """PSS outside the shared area, per process: what a leaking backend would grow."""
        return (self.pss_mib - self.shared_mib) / self.processes


@dataclass(frozen=True)
class Sample:
    elapsed: float  # seconds since the load began
    processes: dict[str, ProcessFigures]  # by label, e.g. "app:order-service-v1-0"
    pg_connections: dict[str, int]  # database -> client backends
    lag: dict[str, int]  # consumer group -> messages not yet committed
    requests: int  # answered so far
    errors: int  # of which unexpected (status or exception)
    exposed: list[str] = field(default_factory=list)  # "label host:port" not on loopback

    @property
    def max_lag(self) -> int:
        return max(self.lag.values(), default=0)

    @property
    def pg_total(self) -> int:
        return sum(self.pg_connections.values())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sample:
        processes = {k: ProcessFigures(**v) for k, v in data["processes"].items()}
        return cls(**{**data, "processes": processes})
