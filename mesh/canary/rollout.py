"""Progressive delivery: shift weight to the canary step by step, analyse, promote or roll back.

Each step is a VirtualService document (the same YAML a person would `kubectl apply`),
applied by `meshmart apply` locally or `kubectl apply` on kind.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml

from mesh.canary.analysis import Thresholds, Verdict, analyse
from mesh.canary.metrics import MetricsSource
from mesh.control.state import MeshState, apply_files, wait_applied


def weights_document(service: str, namespace: str, stable: str, canary: str, weight: int) -> str:
    routes = [
        {"destination": {"host": service, "subset": stable}, "weight": 100 - weight},
        {"destination": {"host": service, "subset": canary}, "weight": weight},
    ]
    document = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": service, "namespace": namespace},
        "spec": {
            "hosts": [service],
            "http": [{"name": f"canary-{canary}", "route": [r for r in routes if r["weight"]]}],
        },
    }
    return yaml.safe_dump(document, sort_keys=False)


class Applier(Protocol):
    def apply(self, path: Path) -> None: ...


class LocalApplier:
    def __init__(self, run_dir: Path) -> None:
        self.state = MeshState(run_dir)

    def apply(self, path: Path) -> None:
        wait_applied(self.state, apply_files(self.state, [path]))


class KubectlApplier:
    def apply(self, path: Path) -> None:
        subprocess.run(["kubectl", "apply", "-f", str(path)], check=True)


@dataclass(frozen=True)
class Plan:
    service: str
    namespace: str
    stable: str
    canary: str
    steps: Sequence[int]
    interval_seconds: float
    thresholds: Thresholds


def run_canary(
    plan: Plan,
    applier: Applier,
    metrics: MetricsSource,
    work_dir: Path,
    say: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """True when promoted to 100%; False after rolling back to 100% stable."""
    work_dir.mkdir(parents=True, exist_ok=True)

    def shift(weight: int) -> None:
        path = work_dir / f"{plan.service}-{plan.canary}-{weight}.yaml"
        path.write_text(
            weights_document(plan.service, plan.namespace, plan.stable, plan.canary, weight)
        )
        applier.apply(path)

    for number, weight in enumerate(plan.steps, start=1):
        shift(weight)
        before = metrics.snapshot()
        say(f"step {number}/{len(plan.steps)}: {plan.canary} at {weight}%, "
            f"analysing for {plan.interval_seconds:g} s")  # fmt: skip
        sleep(plan.interval_seconds)
        verdict: Verdict = analyse(metrics.snapshot() - before, plan.thresholds)
        say(f"  {verdict.describe()}")
        if not verdict.ok:
            shift(0)
            say(f"rolled back: 100% {plan.stable} ({verdict.reason})")
            return False
    say(f"promoted: 100% {plan.canary}")
    return True
