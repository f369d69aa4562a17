"""CPU seconds and memory of every process in a run, by kind, sampled with psutil."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil

SAMPLE_SECONDS = 0.5


@dataclass
class Usage:
    """What one kind of process (e.g. "sidecar") used over a window."""

    processes: int = 0
    cpu_seconds: float = 0.0
    rss_mib_max: float = 0.0  # the kind's summed RSS at its highest sample
    rss_mib_per_process: float = 0.0

    def as_dict(self, window: float, rps: float | None) -> dict[str, Any]:
        vcpu = self.cpu_seconds / window if window else 0.0
        out: dict[str, Any] = {
            "processes": self.processes,
            "vcpu": round(vcpu, 3),
            "rss_mib": round(self.rss_mib_max, 1),
            "rss_mib_per_process": round(self.rss_mib_per_process, 1),
        }
        if rps:
            out["vcpu_per_1000_rps"] = round(vcpu / rps * 1000, 3)
            out["vcpu_per_1000_rps_per_process"] = round(vcpu / rps * 1000 / self.processes, 3)
            out["cpu_ms_per_request"] = round(self.cpu_seconds / (rps * window) * 1000, 3)
        return out


@dataclass
class Window:
    seconds: float = 0.0
    kinds: dict[str, Usage] = field(default_factory=dict)

    def as_dict(self, rps: float | None = None) -> dict[str, Any]:
        return {kind: u.as_dict(self.seconds, rps) for kind, u in sorted(self.kinds.items())}


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _tree(pids: list[int]) -> list[psutil.Process]:
    found: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for p in (root, *root.children(recursive=True)):
                found[p.pid] = p
        except psutil.NoSuchProcess:
            continue
    return list(found.values())


@contextmanager
def sampling(kinds: Mapping[str, list[int]]) -> Iterator[Window]:
    """Measure each kind ({kind: root PIDs}; a root's children count as the same kind, so
    PostgreSQL's backends are PostgreSQL) from entering the block to leaving it."""
    members = {kind: _tree(pids) for kind, pids in kinds.items()}
    window = Window(kinds={kind: Usage(processes=len(ps)) for kind, ps in members.items()})
    start_cpu: dict[int, float] = {}
    for processes in members.values():
        for p in processes:
            try:
                start_cpu[p.pid] = _cpu(p)
            except psutil.NoSuchProcess:
                start_cpu[p.pid] = 0.0
    stop = threading.Event()

    def sample() -> None:
        while True:
            for kind, processes in members.items():
                rss = 0
                for p in processes:
                    try:
                        rss += p.memory_info().rss
                    except psutil.NoSuchProcess:
                        continue
                usage = window.kinds[kind]
                usage.rss_mib_max = max(usage.rss_mib_max, rss / 2**20)
            if stop.wait(SAMPLE_SECONDS):
                return

    sampler = threading.Thread(target=sample, name="bench-sampler", daemon=True)
    began = time.monotonic()
    sampler.start()
    try:
        yield window
    finally:
        stop.set()
        sampler.join()
        window.seconds = time.monotonic() - began
        for kind, processes in members.items():
            usage = window.kinds[kind]
            for p in processes:
                try:
                    usage.cpu_seconds += _cpu(p) - start_cpu[p.pid]
                except psutil.NoSuchProcess:
                    continue
            usage.rss_mib_per_process = usage.rss_mib_max / max(usage.processes, 1)
