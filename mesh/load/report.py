"""What `meshmart load` prints: a live line every few seconds and a table at the end.

Pure functions over plain figures, so they are tested without Locust or a shop."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Operation:
    """One kind of request, as Locust counted it."""

    name: str
    requests: int
    failures: int
    rate: float  # requests per second over the whole run
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def errors_text(by_status: Mapping[str, int]) -> str:
    """ "none", or "503 x2, connection refused x1", most frequent first."""
    if not by_status:
        return "none"
    return ", ".join(f"{status} x{n}" for status, n in Counter(by_status).most_common())


def live_line(
    elapsed: float, rate: float, p50: float | None, p99: float | None, by_status: Mapping[str, int]
) -> str:
    latency = (
        "p50 -, p99 -" if p50 is None or p99 is None else f"p50 {p50:.0f} ms, p99 {p99:.0f} ms"
    )
    return f"{elapsed:6.1f} s  {rate:6.1f} req/s  {latency}  errors: {errors_text(by_status)}"


def final_table(operations: Iterable[Operation], by_status: Mapping[str, int]) -> str:
    rows = sorted(operations, key=lambda o: o.name)
    header = f"{'operation':<16}{'requests':>9}{'failed':>8}{'req/s':>8}"
    header += f"{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'max ms':>8}"
    lines = [header, "-" * len(header)]
    for op in rows:
        lines.append(
            f"{op.name:<16}{op.requests:>9}{op.failures:>8}{op.rate:>8.1f}"
            f"{op.p50_ms:>8.0f}{op.p90_ms:>8.0f}{op.p99_ms:>8.0f}{op.max_ms:>8.0f}"
        )
    total = sum(op.requests for op in rows)
    failed = sum(op.failures for op in rows)
    lines.append("-" * len(header))
    lines.append(f"{'total':<16}{total:>9}{failed:>8}{sum(op.rate for op in rows):>8.1f}")
    lines.append(f"errors by status: {errors_text(by_status)}")
    return "\n".join(lines)
