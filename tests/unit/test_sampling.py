"""Whose sampling decision a request carries: the caller's (B3 multi, B3 single, W3C) first."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from services.common.telemetry import sampled

TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-B3-Sampled": "1"}, True),
        ({"X-B3-Sampled": "0"}, False),
        ({"x-b3-sampled": "true"}, True),
        ({"x-b3-sampled": "0", "x-b3-flags": "1"}, True),  # debug wins
        ({"b3": "0"}, False),
        ({"b3": f"{TRACE}-b7ad6b7169203331-1"}, True),
        ({"b3": f"{TRACE}-b7ad6b7169203331-0"}, False),
        ({"b3": f"{TRACE}-b7ad6b7169203331-d"}, True),
        ({"traceparent": f"00-{TRACE}-b7ad6b7169203331-01"}, True),
        ({"traceparent": f"00-{TRACE}-b7ad6b7169203331-00"}, False),
        # B3 is what Istio's sidecars send; it decides when both are present.
        ({"x-b3-sampled": "0", "traceparent": f"00-{TRACE}-b7ad6b7169203331-01"}, False),
    ],
)
def test_the_callers_decision_is_honoured_whatever_the_local_rate(
    headers: dict[str, str], expected: bool
) -> None:
    for percent in (0.0, 100.0):
        assert sampled(CIMultiDict(headers), percent) is expected


@pytest.mark.parametrize("headers", [{}, {"traceparent": "00-not-a-valid-traceparent-header-xx"}])
def test_without_a_decision_the_local_rate_decides(headers: dict[str, str]) -> None:
    assert not any(sampled(CIMultiDict(headers), 0.0) for _ in range(200))
    assert all(sampled(CIMultiDict(headers), 100.0) for _ in range(200))
    share = sum(sampled(CIMultiDict(headers), 25.0) for _ in range(4000)) / 4000
    assert 0.2 < share < 0.3
