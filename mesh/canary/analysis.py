"""Canary analysis: request success rate and p99 latency of the canary over one interval.

The same arithmetic for both metric sources: counters and cumulative latency buckets are
snapshotted at the start and end of a step, and the difference is analysed, as Prometheus'
`rate()` and `histogram_quantile()` would over that window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Snapshot:
    requests: float = 0.0
    errors: float = 0.0  # 5xx responses: Flagger's request-success-rate counts non-5xx
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound (ms) -> cumulative

    def __add__(self, other: Snapshot) -> Snapshot:
        bounds = set(self.buckets) | set(other.buckets)
        return Snapshot(
            self.requests + other.requests,
            self.errors + other.errors,
            {b: self.buckets.get(b, 0.0) + other.buckets.get(b, 0.0) for b in bounds},
        )

    def __sub__(self, earlier: Snapshot) -> Snapshot:
        return Snapshot(
            self.requests - earlier.requests,
            self.errors - earlier.errors,
            {b: v - earlier.buckets.get(b, 0.0) for b, v in self.buckets.items()},
        )


def histogram_quantile(quantile: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket that holds it."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = quantile * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # beyond the last finite bucket: its bound is all we know
            width = count - lower_count
            fraction = 0.0 if width <= 0 else (rank - lower_count) / width
            return lower_bound + (bound - lower_bound) * fraction
        lower_bound, lower_count = bound, count
    return lower_bound


@dataclass(frozen=True)
class Thresholds:
    min_success_percent: float = 99.0  # Flagger's request-success-rate default
    max_p99_ms: float = 500.0  # Flagger's request-duration default
    min_requests: int = 20  # fewer than this is no evidence either way


@dataclass(frozen=True)
class Verdict:
    ok: bool
    requests: int
    success_percent: float | None
    p99_ms: float | None
    reason: str

    def describe(self) -> str:
        success = "n/a" if self.success_percent is None else f"{self.success_percent:.2f}%"
        p99 = "n/a" if self.p99_ms is None else f"{self.p99_ms:.0f} ms"
        return f"requests={self.requests} success={success} p99={p99}: {self.reason}"


def analyse(window: Snapshot, thresholds: Thresholds) -> Verdict:
    requests = round(window.requests)
    if requests < thresholds.min_requests:
        return Verdict(
            False, requests, None, None,
            f"too few requests to analyse ({requests} < {thresholds.min_requests}); "
            "refusing to promote on no data",
        )  # fmt: skip
    success = 100.0 * (window.requests - window.errors) / window.requests
    p99 = histogram_quantile(0.99, window.buckets)
    if success < thresholds.min_success_percent:
        reason = f"success rate below {thresholds.min_success_percent:g}%"
        return Verdict(False, requests, success, p99, reason)
    if p99 is None:  # fail closed, as Flagger does when a metric has no value
        return Verdict(False, requests, success, p99, "no latency data for this interval")
    if p99 > thresholds.max_p99_ms:
        return Verdict(False, requests, success, p99, f"p99 above {thresholds.max_p99_ms:g} ms")
    return Verdict(True, requests, success, p99, "within thresholds")
