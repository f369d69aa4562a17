"""The run's report as plain text: what the shoppers did, what failed and why, how fast each
fault was recovered from, and every broken invariant with the operations that broke it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from mesh.chaos.answers import classify
from mesh.chaos.invariants import Bounds, Violation
from mesh.chaos.record import Operation
from mesh.chaos.timeline import Fault, failures_during, recovery_seconds

SHOWN_OPERATIONS = 5  # per violation: enough to start debugging, short enough to read


def render(
    operations: Sequence[Operation],
    faults: Sequence[Fault],
    violations: Sequence[Violation],
    *,
    grace_seconds: float = Bounds.grace_seconds,
) -> str:
    start = min([op.started for op in operations] + [f.started for f in faults], default=0.0)
    sections = [
        _operations(operations),
        _errors(operations),
        _faults(operations, faults, grace_seconds, start),
        _violations(violations, start),
    ]
    return "\n\n".join(sections) + "\n"


def _operations(operations: Sequence[Operation]) -> str:
    counts = Counter((op.kind, _status(op)) for op in operations)
    rows = [[kind, status, str(n)] for (kind, status), n in sorted(counts.items())]
    return f"operations: {len(operations)}\n" + _table(["kind", "status", "count"], rows)


def _errors(operations: Sequence[Operation]) -> str:
    answers = [classify(op) for op in operations]
    counts = Counter((a.kind, a.clean) for a in answers if not a.success)
    rows = [[kind, str(n), "yes" if clean else "NO"]
            for (kind, clean), n in sorted(counts.items())]  # fmt: skip
    body = _table(["kind", "count", "clean"], rows) if rows else "none"
    return "errors by kind\n" + body


def _faults(
    operations: Sequence[Operation], faults: Sequence[Fault], grace: float, start: float
) -> str:
    rows = []
    for fault in faults:
        recovery = recovery_seconds(fault, operations, grace)
        rows.append([
            fault.name,
            f"+{fault.started - start:.1f}",
            f"{fault.seconds:.1f}",
            str(len(failures_during(fault, operations, grace))),
            "never" if recovery is None else f"{recovery:.1f}",
        ])  # fmt: skip
    headers = ["fault", "at_s", "duration_s", "errors_blamed", "recovery_s"]
    return f"faults (grace {grace:g}s)\n" + (_table(headers, rows) if rows else "none")


def _violations(violations: Sequence[Violation], start: float) -> str:
    if not violations:
        return "0 violations"
    lines = [f"{len(violations)} violation" + ("s" if len(violations) > 1 else "")]
    for violation in violations:
        lines.append(f"[{violation.invariant}] {violation.detail}")
        lines += ["    " + _describe(op, start) for op in violation.operations[:SHOWN_OPERATIONS]]
        if len(violation.operations) > SHOWN_OPERATIONS:
            lines.append(f"    ... and {len(violation.operations) - SHOWN_OPERATIONS} more")
    return "\n".join(lines)


def _describe(op: Operation, start: float) -> str:
    parts = [f"+{op.started - start:.2f}s", op.kind, _status(op), f"{op.seconds:.2f}s"]
    if op.idempotency_key:
        parts.append(f"key={op.idempotency_key} attempt={op.attempt}")
    if op.order_id:
        parts.append(f"order={op.order_id}")
    parts.append(f"user={op.user_id}")
    what = op.error or op.body
    if what and op.status not in (200, 201):
        parts.append(repr(what[:120]))
    return " ".join(parts)


def _status(op: Operation) -> str:
    return "no answer" if op.status is None else str(op.status)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [headers, *rows]]  # fmt: skip
    return "\n".join(lines)
