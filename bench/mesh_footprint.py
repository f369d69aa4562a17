"""Benchmark: start-up time, process count and memory of a whole local mesh (`meshmart run`).

Starts `meshmart run` in .cache/bench-mesh, measures the time until it is up, counts every
process it started (PostgreSQL with its backends, Kafka, Zipkin, the apps, the Envoys) and
sums their RSS and PSS (from /proc/<pid>/smaps_rollup), then stops it with Ctrl-C.

    .venv/bin/python bench/mesh_footprint.py
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN_DIR = REPO / ".cache" / "bench-mesh"


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found.append(int(child))
            found += _children(int(child))
    return found


def _memory_kib(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0])
    return fields.get("Rss", 0), fields.get("Pss", 0)


def _name(pid: int) -> str:
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    text = " ".join(part.decode(errors="replace") for part in cmd if part)
    for marker in ("envoy", "kafka.Kafka", "zipkin", "postgres", "services."):
        if marker in text:
            return marker.rstrip(".")
    return Path(cmd[0].decode()).name


def main() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesh.cli", "run", "--run-dir", str(RUN_DIR),
         "--ingress-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if "meshmart is up" in line:
            break
    else:
        raise SystemExit("meshmart run did not come up")
    up = time.monotonic() - started
    try:
        state = json.loads((RUN_DIR / "state.json").read_text())
        roots = [state["kafka_pid"], state["zipkin_pid"], proc.pid]
        postmaster = int((RUN_DIR / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
        pids = sorted({*roots, postmaster, *_children(postmaster), *_children(proc.pid)})
        by_kind: dict[str, list[int]] = {}
        rss_total = pss_total = 0
        for pid in pids:
            rss, pss = _memory_kib(pid)
            rss_total, pss_total = rss_total + rss, pss_total + pss
            kind = _name(pid)
            by_kind.setdefault(kind, [0, 0, 0])
            by_kind[kind][0] += 1
            by_kind[kind][1] += rss
            by_kind[kind][2] += pss
        print(f"up in {up:.1f} s (warm caches), {len(pids)} processes")
        for kind, (count, rss, pss) in sorted(by_kind.items()):
            mib = f"RSS {rss / 1024:7.1f} MiB  PSS {pss / 1024:7.1f} MiB"
            print(f"  {kind:<14} {count:>3} processes  {mib}")
        print(f"  {'total':<14} {len(pids):>3} processes  RSS {rss_total / 1024:7.1f} MiB  "
              f"PSS {pss_total / 1024:7.1f} MiB")  # fmt: skip
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(90)
        proc.stdout.close()


if __name__ == "__main__":
    main()
