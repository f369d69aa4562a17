"""The soak's verdicts (bench/soak_judge.py) on hand-made samples: flat passes, growth fails."""

from __future__ import annotations

import dataclasses

from bench.soak_figures import ProcessFigures, Sample
from bench.soak_judge import (
    Limits,
    Verdict,
    edges,
    not_growing,
    outcome,
    per_process,
    rss_flat,
    shared,
)

LIMITS = Limits(rss_growth=0.10, fd_slack=16, tcp_slack=12, max_lag=100,
                pg_bounds={"order_service": 10})  # fmt: skip
WARMUP = 60.0


def _samples(
    rss: list[float],
    fds: list[int] | None = None,
    pid: list[int] | None = None,
    lag: list[int] | None = None,
    pg: list[int] | None = None,
) -> list[Sample]:
    """One sample every 30 s, the first two inside the warm-up."""
    n = len(rss)
    fds, pid = fds or [40] * n, pid or [100] * n
    lag, pg = lag or [0] * n, pg or [3] * n
    return [
        Sample(elapsed=i * 30.0,
               processes={"app:order": ProcessFigures(pid[i], 1, rss[i], rss[i] / 2, fds[i], 5)},
               pg_connections={"order_service": pg[i]}, lag={"catalog-service": lag[i]},
               requests=i * 3600, errors=0)
        for i in range(n)
    ]  # fmt: skip


def _failed(samples: list[Sample]) -> set[str]:
    verdicts = [*per_process(samples, WARMUP, LIMITS), *shared(samples, LIMITS)]
    return {v.check for v in verdicts if not v.passed}


def test_edges_are_medians_of_three_so_one_spike_moves_neither() -> None:
    assert edges([100, 180, 101, 102, 103, 99, 250, 101]) == (101, 101)
    assert edges([1, 2]) == (1, 2)  # a short series: one value a side


def test_flat_rss_within_noise_passes() -> None:
    assert _failed(_samples([60, 80, 100, 104, 98, 101, 107, 103, 105])) == set()


def test_rss_growth_past_ten_percent_fails() -> None:
    verdict = rss_flat("app:order", [100, 101, 102, 108, 111, 112, 113], 0.10)
    assert not verdict.passed and "+10.9%" in verdict.detail  # 101 -> 112 MiB


def test_a_steady_climb_fails_even_when_each_step_is_small() -> None:
    rss = [100.0 + 2 * i for i in range(12)]  # +2 MiB per sample, never a jump
    assert "rss" in _failed(_samples(rss))


def test_warm_up_growth_is_not_judged() -> None:
    assert _failed(_samples([30, 70, 100, 100, 101, 100, 100, 101])) == set()


def test_fd_growth_beyond_the_slack_fails_and_within_passes() -> None:
    assert not_growing("fds", "x", [40, 41, 40, 50, 52, 55], 16).passed  # +12: pools, bursts
    assert not not_growing("fds", "x", [40, 41, 40, 60, 61, 62], 16).passed  # +21
    assert "fds" in _failed(_samples([100] * 8, fds=[40, 40, 40, 41, 50, 70, 80, 90]))


def test_a_restarted_process_fails_alive() -> None:
    assert "alive" in _failed(_samples([100] * 6, pid=[100, 100, 100, 200, 200, 200]))


def test_lag_and_postgres_bounds_hold_in_every_sample() -> None:
    assert _failed(_samples([100] * 6, lag=[0, 400, 0, 1, 0, 2])) == {"lag"}
    assert _failed(_samples([100] * 6, pg=[3, 11, 3, 3, 3, 3])) == {"postgres"}


def test_listeners_off_loopback_fail() -> None:
    samples = _samples([100] * 6)
    exposed = Sample(**{**samples[-1].__dict__, "exposed": ["zipkin 0.0.0.0:9411"]})
    assert _failed([*samples[:-1], exposed]) == {"loopback"}


def test_any_error_or_an_undrained_group_fails_the_outcome() -> None:
    assert all(v.passed for v in outcome({}, 1000, {"catalog-service": 0}))
    errors, drained = outcome({"place order 503": 1}, 1000, {"order-service": 4})
    assert not errors.passed and "place order 503 x1" in errors.detail
    assert not drained.passed
    assert not outcome({}, 0, {})[0].passed  # no request answered at all is no soak


def _server(private_each: list[float], shared: list[float], processes: int = 12) -> list[Sample]:
    """PostgreSQL samples every 30 s: RSS climbing regardless (each backend touches more
    shared buffers), PSS = private + shared."""
    return [
        Sample(i * 30.0, {"postgres": ProcessFigures(
            7, processes, 500.0 + 40 * i, mine * processes + area, 900, 20, area)}, {}, {}, i, 0)
        for i, (mine, area) in enumerate(zip(private_each, shared, strict=True))
    ]  # fmt: skip


def _group_verdicts(samples: list[Sample], area: float = 150.0) -> dict[str, Verdict]:
    limits = dataclasses.replace(LIMITS, pg_shared_mib=area)
    return {v.check: v for v in per_process(samples, WARMUP, limits) if v.subject == "postgres"}


def test_a_process_group_is_judged_by_private_memory_and_its_shared_area() -> None:
    """The shared area filling (the database grows) within its size passes; summed RSS,
    which counts every shared page once per process touching it, is not judged."""
    verdicts = _group_verdicts(_server([4.0] * 8, [40.0 + 10 * i for i in range(8)]))
    assert verdicts["rss"].passed, verdicts["rss"]
    assert verdicts["rss"].detail.startswith("private PSS per process 4.0 -> 4.0")
    assert (
        verdicts["shared"].passed
        and "at most 110.0 MiB (area 150 MiB)" in verdicts["shared"].detail
    )


def test_backends_gaining_private_memory_fail_the_group() -> None:
    verdicts = _group_verdicts(_server([4.0 + 0.5 * i for i in range(8)], [60.0] * 8))
    assert not verdicts["rss"].passed


def test_a_shared_area_beyond_its_size_fails() -> None:
    verdicts = _group_verdicts(_server([4.0] * 8, [60.0] * 7 + [160.0]))
    assert not verdicts["shared"].passed


def test_pool_churn_does_not_move_the_private_figure() -> None:
    """More backends (a pool growing) add memory in proportion: the figure per process holds."""
    samples = _server([4.0] * 4, [60.0] * 4, processes=27) + [
        dataclasses.replace(s, elapsed=s.elapsed + 120)
        for s in _server([4.0] * 4, [60.0] * 4, processes=37)
    ]
    assert _group_verdicts(samples)["rss"].passed


def test_a_group_gaining_backends_is_judged_by_fds_per_process() -> None:
    """A pool opening 10 more connections adds backends, each with its own files: no leak."""
    grown = [
        ProcessFigures(7, n, 400.0, 3.0 * n + 60, 30 * n, n, 60.0) for n in (12,) * 4 + (22,) * 4
    ]
    samples = [Sample(i * 30.0, {"postgres": f}, {}, {}, i, 0) for i, f in enumerate(grown)]
    verdicts = _group_verdicts(samples)
    assert verdicts["fds"].passed and verdicts["fds"].detail.startswith("30 -> 30"), verdicts["fds"]
    leaking = [
        dataclasses.replace(f, fds=f.fds + 20 * i * f.processes) for i, f in enumerate(grown)
    ]
    samples = [
        dataclasses.replace(s, processes={"postgres": f})
        for s, f in zip(samples, leaking, strict=True)
    ]
    assert not _group_verdicts(samples)["fds"].passed
