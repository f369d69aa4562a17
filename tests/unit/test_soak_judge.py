"""The soak's verdicts (bench/soak_judge.py) on hand-made samples: flat passes, growth fails."""

from __future__ import annotations

from bench.soak_figures import ProcessFigures, Sample
from bench.soak_judge import Limits, edges, not_growing, outcome, per_process, rss_flat, shared

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


def test_a_process_group_is_judged_by_pss_not_summed_rss() -> None:
    """PostgreSQL's backends share buffers: their summed RSS climbs as each touches more of
    them, their summed PSS does not."""
    server = [ProcessFigures(7, 12, 500.0 + 40 * i, 150.0, 900, 20) for i in range(8)]
    samples = [Sample(i * 30.0, {"postgres": f}, {}, {}, i, 0) for i, f in enumerate(server)]
    memory = next(v for v in per_process(samples, WARMUP, LIMITS) if v.check == "rss")
    assert memory.passed and memory.detail.startswith("PSS 150.0 -> 150.0")
