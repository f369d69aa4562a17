"""How much traffic the canary brings: enough for its first step, within bounds."""

from __future__ import annotations

import pytest

from mesh.canary.traffic import rate_for
from mesh.load import MIX


def test_the_rate_gives_the_first_step_twice_the_requests_it_needs() -> None:
    def first_step_requests(rate: float) -> float:  # the defaults: 10 % for 30 s
        reads = rate * MIX["read own user"] / sum(MIX.values())  # the canary's calls per second
        return reads * 30 * 0.10

    rate = rate_for(min_requests=20, interval=30, first_step=10)
    assert first_step_requests(rate) >= 2 * 20 > first_step_requests(rate - 1)


@pytest.mark.parametrize(
    ("min_requests", "interval", "first_step", "rate"),
    [(1, 600, 100, 5.0), (1000, 2, 1, 200.0)],  # a floor for a trickle, a cap for the absurd
)
def test_the_rate_stays_within_bounds(
    min_requests: int, interval: float, first_step: int, rate: float
) -> None:
    assert rate_for(min_requests, interval, first_step) == rate
