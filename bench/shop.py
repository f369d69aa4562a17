"""A local mesh for one benchmark: `meshmart run` in its own run dir, stopped with Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from mesh.control.topology import fqdn
from mesh.control.workloads import by_name
from mesh.infra.postgres import database_dsn, running_server
from mesh.paths import REPO_ROOT as REPO
from mesh.paths import postgres_data_dir
from mesh.runtime.polling import wait_until
from mesh.runtime.ports import free_port
from mesh.runtime.processes import stop_process

UP_MARKER = "meshmart is up"
START_TIMEOUT = 240.0


@dataclass
class Shop:
    run_dir: Path
    state: dict[str, Any]
    process: subprocess.Popen[str]
    up_seconds: float

    @property
    def ingress(self) -> str:
        return str(self.state["ingress_url"])

    def workload(self, service: str, version: str = "v1", replica: int = 0) -> dict[str, Any]:
        return dict(self.state["workloads"][f"{service}-{version}-{replica}"])

    def outbound(self, caller: str, callee: str) -> str:
        """The loopback address of `caller`'s sidecar listener for `callee`."""
        return str(self.workload(caller)["outbound"][fqdn(callee)])

    def cert(self, service_account: str) -> tuple[Path, Path]:
        certs = self.run_dir / "mesh" / "certs"
        return certs / f"{service_account}.cert.pem", certs / f"{service_account}.key.pem"

    @property
    def admin_dsn(self) -> str:
        server = running_server(postgres_data_dir(self.run_dir))
        if server is None:
            raise RuntimeError("PostgreSQL of the benchmark shop is not running")
        return server.admin_dsn

    def apply(self, istio_file: str) -> None:
        """`meshmart apply -f istio_file` on this shop (a path relative to the repo)."""
        command = [sys.executable, "-m", "mesh.cli", "apply", "-f", istio_file,
                   "--run-dir", str(self.run_dir)]  # fmt: skip
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"meshmart apply -f {istio_file} failed: {result.stderr.strip()}")

    def postgres_pid(self) -> int:
        return int(self._postmaster()[0])

    def postgres_port(self) -> int:
        return int(self._postmaster()[3])

    def _postmaster(self) -> list[str]:
        """postmaster.pid's lines: PID, data dir, start time, port, socket dir, ..."""
        return (postgres_data_dir(self.run_dir) / "postmaster.pid").read_text().splitlines()

    def kinds(self) -> dict[str, list[int]]:
        """Every process of the shop by kind; each root's children are counted with it."""
        workloads = self.state.get("workloads", {}).values()
        kinds: dict[str, list[int]] = {
            "postgres": [self.postgres_pid()],
            "kafka": [self.state["kafka_pid"]],
        }
        for w in workloads:
            kinds.setdefault(f"app:{w['service']}", []).append(w["app_pid"])
            kinds.setdefault("sidecar", []).append(w["sidecar_pid"])
        if "ingress" in self.state:
            kinds["ingress"] = [self.state["ingress"]["pid"]]
        if "zipkin_pid" in self.state:
            kinds["zipkin"] = [self.state["zipkin_pid"]]
        for name, entry in self.state.get("services", {}).items():  # direct mode
            kinds[f"app:{name}"] = [entry["pid"]]
        return kinds

    def memory(self) -> dict[str, dict[str, float]]:
        """RSS and PSS (MiB) of every process of the shop, by kind, and in total."""
        out: dict[str, dict[str, float]] = {}
        seen: set[int] = set()
        roots = {**self.kinds(), "supervisor": [self.process.pid]}
        for kind, pids in roots.items():
            for pid in pids:
                try:
                    root = psutil.Process(pid)
                    tree = [root, *root.children(recursive=kind != "supervisor")]
                except psutil.NoSuchProcess:
                    continue
                for p in tree:
                    if p.pid in seen:
                        continue
                    seen.add(p.pid)
                    try:
                        info = p.memory_full_info()
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        continue
                    entry = out.setdefault(kind, {"processes": 0, "rss_mib": 0.0, "pss_mib": 0.0})
                    entry["processes"] += 1
                    entry["rss_mib"] += info.rss / 2**20
                    entry["pss_mib"] += getattr(info, "pss", 0) / 2**20
        total = {"processes": 0.0, "rss_mib": 0.0, "pss_mib": 0.0}
        for entry in out.values():
            for key in total:
                total[key] += entry[key]
        out["total"] = total
        return {k: {f: round(v, 1) for f, v in e.items()} for k, e in out.items()}


@contextmanager
def running_shop(run_dir: Path, args: Sequence[str] = (), env: dict[str, str] | None = None,
                 progress: bool = True) -> Iterator[Shop]:  # fmt: skip
    """`meshmart run --run-dir run_dir ARGS` until the block ends; output in run_dir/run.log."""
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "mesh.cli", "run", "--run-dir", str(run_dir), *args]
    if "--direct" not in args and "--ingress-port" not in args:
        cmd += ["--ingress-port", str(free_port())]
    log_path = run_dir / "run.log"
    began = time.monotonic()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
    try:

        def is_up() -> bool:
            return UP_MARKER in log_path.read_text()

        if not wait_until(is_up, START_TIMEOUT, 0.05, unless=lambda: process.poll() is not None):
            if process.poll() is not None:
                raise RuntimeError(f"meshmart run exited ({process.returncode}); see {log_path}")
            raise RuntimeError(f"meshmart run took over {START_TIMEOUT:.0f} s; see {log_path}")
        up = time.monotonic() - began
        if progress:
            print(f"  shop up in {up:.1f} s ({' '.join(args) or 'defaults'})", flush=True)
        state = json.loads((run_dir / "state.json").read_text())
        yield Shop(run_dir, state, process, up)
    finally:
        stop_process(process, signal.SIGINT, timeout=120)


STOCK = 1_000_000_000  # topped up first, so orders confirm instead of running out of stock


async def top_up_stock(shop: Shop) -> None:
    """Every product's stock set so high that no run empties it: orders confirm."""
    conn = await asyncpg.connect(database_dsn(shop.admin_dsn, by_name("catalog-service").database))
    try:
        await conn.execute("UPDATE catalog SET stock = $1", STOCK)
    finally:
        await conn.close()
