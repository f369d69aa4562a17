"""fortio, Istio's load generator: built by tools/fortio/build.sh, run once per measurement."""

from __future__ import annotations

import json
import resource
import subprocess
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from mesh.paths import REPO_ROOT as REPO

PERCENTILES = (50, 90, 99, 99.9)


@cache
def binary() -> Path:
    """$FORTIO, the cached build, fortio on PATH, else build it (tools/fortio/build.sh)."""
    built = subprocess.run(
        [str(REPO / "tools" / "fortio" / "build.sh")], check=True, capture_output=True, text=True
    )
    return Path(built.stdout.strip().splitlines()[-1])


def version() -> str:
    return subprocess.run(
        [str(binary()), "version"], check=True, capture_output=True, text=True
    ).stdout.strip()


@dataclass(frozen=True)
class Target:
    """Where the load goes: a URL, optionally over a unix socket or with a client certificate."""

    url: str
    headers: tuple[str, ...] = ()  # "Name: value"
    unix_socket: Path | None = None
    client_cert: tuple[Path, Path] | None = None  # (cert, key): mTLS as a mesh workload
    payload: str | None = None  # a POST body (JSON)


@dataclass(frozen=True)
class LoadResult:
    requested_qps: float  # 0: as fast as it goes
    actual_qps: float
    seconds: float
    count: int
    latency_ms: dict[str, float]  # p50, p90, p99, p99.9, max, avg
    codes: dict[str, int] = field(default_factory=dict)  # status (or -1: socket error) -> count
    client_cpu_seconds: float = 0.0  # fortio's own CPU: it runs on the shop's cores

    @property
    def errors(self) -> int:
        return sum(n for code, n in self.codes.items() if not code.startswith("2"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "requested_qps": self.requested_qps,
            "actual_qps": round(self.actual_qps, 1),
            "seconds": round(self.seconds, 2),
            "count": self.count,
            "latency_ms": self.latency_ms,
            "codes": self.codes,
            "errors": self.errors,
            "fortio_cpu_ms_per_request": round(self.client_cpu_seconds / self.count * 1000, 3)
            if self.count
            else None,
        }


def load(target: Target, *, qps: float, seconds: float, connections: int) -> LoadResult:
    """One fortio run: open-loop at `qps` (0 = max throughput) over `connections`."""
    cmd = [
        str(binary()), "load", "-quiet", "-json", "-",
        "-qps", str(qps), "-c", str(connections), "-t", f"{seconds}s",
        "-p", ",".join(str(p) for p in PERCENTILES),
        "-r", "0.00001",  # 10 µs histogram buckets: the per-hop overheads are sub-millisecond
        "-allow-initial-errors",  # count a refused first request instead of aborting the run
    ]  # fmt: skip
    if qps > 0:
        # Spread the connections' schedules over the interval: without it they fire in
        # lockstep, and a fixed rate arrives as bursts of `connections` requests.
        cmd.append("-uniform")
    for header in target.headers:
        cmd += ["-H", header]
    if target.unix_socket is not None:
        cmd += ["-unix-socket", str(target.unix_socket)]
    if target.client_cert is not None:
        cert, key = target.client_cert
        cmd += ["-cert", str(cert), "-key", str(key), "-k"]  # the peer's SAN is a SPIFFE URI
    if target.payload is not None:
        cmd += ["-payload", target.payload, "-content-type", "application/json"]
    cmd.append(target.url)
    before = _children_cpu()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=seconds + 60)
    return replace(parse(json.loads(done.stdout), qps), client_cpu_seconds=_children_cpu() - before)


def _children_cpu() -> float:
    """CPU seconds of this process's finished children: fortio's, once it has exited."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def parse(report: dict[str, Any], qps: float) -> LoadResult:
    histogram = report["DurationHistogram"]
    latency = {
        f"p{p['Percentile']:g}": round(p["Value"] * 1000, 3) for p in histogram["Percentiles"]
    }
    latency["max"] = round(histogram["Max"] * 1000, 3)
    latency["avg"] = round(histogram["Avg"] * 1000, 3)
    return LoadResult(
        requested_qps=qps,
        actual_qps=report["ActualQPS"],
        seconds=report["ActualDuration"] / 1e9,
        count=histogram["Count"],
        latency_ms=latency,
        codes={str(code): n for code, n in report["RetCodes"].items()},
    )
