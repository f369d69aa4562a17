"""Faults on the run's clock: which operations a fault is blamed for, and how fast the shop
recovered from it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mesh.chaos.answers import classify
from mesh.chaos.record import Operation, OperationKind, read_jsonl


@dataclass(frozen=True)
class Fault:
    """One injection: started when it began, ended when it was undone (process restarted,
    route restored). Times are time.monotonic(), like the operations'."""

    name: str
    started: float
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def read_faults(path: Path) -> list[Fault]:
    return [Fault(**fields) for fields in read_jsonl(path)]


def overlaps(op: Operation, fault: Fault, grace: float) -> bool:
    """The operation ran, at least in part, while the fault or its after-effects lasted:
    a restarted process still needs `grace` seconds to be ready and found by the mesh."""
    return op.started <= fault.ended + grace and op.ended >= fault.started


def blamed_on(op: Operation, faults: Iterable[Fault], grace: float) -> list[Fault]:
    return [fault for fault in faults if overlaps(op, fault, grace)]


def failures_during(fault: Fault, operations: Iterable[Operation], grace: float) -> list[Operation]:
    """The operations without a full answer that this fault is blamed for."""
    return [op for op in operations if not classify(op).success and overlaps(op, fault, grace)]


def recovery_seconds(fault: Fault, operations: Sequence[Operation], grace: float) -> float | None:
    """From the fault's end until every kind of operation it broke succeeded again: for
    each kind with a failure blamed on it, the first success of that kind started after the
    end. 0.0 when the fault broke nothing; None when some kind never recovered."""
    broken: set[OperationKind] = {op.kind for op in failures_during(fault, operations, grace)}
    worst = 0.0
    for kind in broken:
        recovered = [
            op.ended - fault.ended
            for op in operations
            if op.kind == kind and op.started >= fault.ended and classify(op).success
        ]
        if not recovered:
            return None
        worst = max(worst, min(recovered))
    return worst
