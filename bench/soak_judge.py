"""The soak's verdicts: pure functions over samples, so they are tested with hand-made ones.

Growth compares the median of the first `EDGE` samples after the warm-up with the median of
the last `EDGE`: one sample caught mid-GC or mid-burst moves neither end.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.soak_figures import ProcessFigures, Sample

EDGE = 3


@dataclass(frozen=True)
class Limits:
    rss_growth: float  # largest allowed RSS growth, as a share of the post-warm-up level
    fd_slack: int  # open fds a process may gain from warm-up's end to the end
    tcp_slack: int  # TCP connections likewise
    max_lag: int  # messages, any consumer group, any sample
    pg_bounds: Mapping[str, int]  # database -> most client connections its pools may open
    # PostgreSQL's shared memory area (shared_memory_size): a cache filling up to it is no leak.
    pg_shared_mib: float = 0.0


@dataclass(frozen=True)
class Verdict:
    check: str  # "rss", "fds", "tcp", "alive", "lag", "drained", "postgres", "errors", ...
    subject: str  # a process label, a database, "load"
    passed: bool
    detail: str


def edges(values: Sequence[float]) -> tuple[float, float]:
    """The medians of the first and last EDGE values (fewer when the series is short)."""
    n = min(EDGE, max(1, len(values) // 2))
    return statistics.median(values[:n]), statistics.median(values[-n:])


def rss_flat(label: str, values: Sequence[float], limit: float, measure: str = "RSS") -> Verdict:
    start, end = edges(values)
    growth = (end - start) / start if start else 0.0
    detail = f"{measure} {start:.1f} -> {end:.1f} MiB ({growth:+.1%}, limit +{limit:.0%})"
    return Verdict("rss", label, growth <= limit, detail)


def not_growing(check: str, label: str, values: Sequence[float], slack: int) -> Verdict:
    start, end = edges(values)
    detail = f"{start:g} -> {end:g} ({end - start:+g}, slack +{slack})"
    return Verdict(check, label, end - start <= slack, detail)


def _series(samples: Sequence[Sample], label: str) -> list[ProcessFigures | None]:
    return [s.processes.get(label) for s in samples]


def _values(figures: Sequence[ProcessFigures], name: str) -> list[float]:
    return [float(getattr(f, name)) for f in figures]


def _alive(label: str, series: Sequence[ProcessFigures | None]) -> Verdict:
    pids = {f.pid for f in series if f is not None}
    missing = sum(f is None for f in series)
    passed = missing == 0 and len(pids) == 1
    detail = "one PID throughout" if passed else f"PIDs {sorted(pids)}, missing in {missing}"
    return Verdict("alive", label, passed, detail)


def _per_process(values: Sequence[float], figures: Sequence[ProcessFigures]) -> list[float]:
    return [round(v / f.processes, 1) for v, f in zip(values, figures, strict=True)]


def _group_memory(label: str, figures: Sequence[ProcessFigures], limits: Limits) -> list[Verdict]:
    """A group (PostgreSQL: the postmaster and its backends) shares memory, and its processes
    come and go with the pools. Its private memory per process must stay flat; its shared area
    fills as the data cached in it grows (every order adds rows), so it is held to the size
    the server gave it rather than to a trend."""
    private = [f.private_mib_each for f in figures]
    most = max(f.shared_mib for f in figures)
    shared_detail = f"shared memory at most {most:.1f} MiB (area {limits.pg_shared_mib:g} MiB)"
    return [
        rss_flat(label, private, limits.rss_growth, "private PSS per process"),
        Verdict("shared", label, most <= limits.pg_shared_mib, shared_detail),
    ]


def per_process(samples: Sequence[Sample], warmup: float, limits: Limits) -> list[Verdict]:
    after = [s for s in samples if s.elapsed >= warmup]
    verdicts = []
    for label in sorted({label for s in samples for label in s.processes}):
        series = _series(samples, label)
        verdicts.append(_alive(label, series))
        figures = [f for f in _series(after, label) if f is not None]
        if not figures:
            continue
        if group := any(f.processes > 1 for f in figures):
            verdicts += _group_memory(label, figures, limits)
        else:
            verdicts.append(rss_flat(label, _values(figures, "rss_mib"), limits.rss_growth))
        # A group's backends come and go with the pools (their number is bounded by `shared`'s
        # connection check): its fds and connections are judged per process.
        fds, tcp = _values(figures, "fds"), _values(figures, "tcp")
        if group:
            fds, tcp = _per_process(fds, figures), _per_process(tcp, figures)
        verdicts.append(not_growing("fds", label, fds, limits.fd_slack))
        verdicts.append(not_growing("tcp", label, tcp, limits.tcp_slack))
    return verdicts


def shared(samples: Sequence[Sample], limits: Limits) -> list[Verdict]:
    """Bounds that hold in every sample, the warm-up included: they are limits, not trends."""
    verdicts = []
    worst_lag = max((s.max_lag for s in samples), default=0)
    verdicts.append(Verdict("lag", "kafka", worst_lag <= limits.max_lag,
                            f"max {worst_lag} messages (bound {limits.max_lag})"))  # fmt: skip
    for database, bound in sorted(limits.pg_bounds.items()):
        most = max((s.pg_connections.get(database, 0) for s in samples), default=0)
        verdicts.append(Verdict("postgres", database, most <= bound,
                                f"max {most} connections (pools allow {bound})"))  # fmt: skip
    exposed = sorted({e for s in samples for e in s.exposed})
    verdicts.append(Verdict("loopback", "listeners", not exposed,
                            ", ".join(exposed) or "every listener on 127.0.0.1"))  # fmt: skip
    return verdicts


def outcome(errors: Mapping[str, int], requests: int, drained: Mapping[str, int]) -> list[Verdict]:
    """The load's errors ("operation status" -> count) and the lag once the load stopped."""
    failed = sum(errors.values())
    text = ", ".join(f"{k} x{n}" for k, n in sorted(errors.items())) or "none"
    left = {group: lag for group, lag in drained.items() if lag}
    return [
        Verdict("errors", "load", failed == 0 and requests > 0,
                f"{failed} of {requests} requests: {text}"),
        Verdict("drained", "kafka", not left,
                f"lag after the load: {left or 'none'}"),
    ]  # fmt: skip
