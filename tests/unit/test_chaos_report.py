"""The chaos run's plain-text report."""

from __future__ import annotations

from mesh.chaos.invariants import Violation
from mesh.chaos.report import render
from mesh.chaos.timeline import Fault
from tests.unit.chaos_builders import op, placed

FAULT = Fault("sigkill order-service", started=100.0, ended=102.0)
OPS = [
    placed("o1", "k1", at=99.0),
    op("place_order", 503, at=100.5, idempotency_key="k2"),
    placed("o2", "k2", at=103.0, attempt=2),
    op("read_user", 200, at=101.0, orders_available=False),
    op("read_user", 200, at=103.5),
    op("read_orders", None, at=101.5, error="ServerDisconnectedError: Server disconnected"),
    op("read_orders", 200, at=104.0, took=0.2, body="[]"),
]


def test_a_clean_run_reports_counts_errors_faults_and_0_violations() -> None:
    text = render(OPS, [FAULT], [], grace_seconds=1.0)
    lines = text.splitlines()
    assert lines[0] == "operations: 7"
    assert "place_order  201        2" in lines
    assert "place_order  503        1" in lines
    assert "read_orders  no answer  1" in lines
    assert "degraded_orders_unavailable  1      yes" in lines
    assert "no_answer                    1      NO" in lines
    assert "envoy_upstream_reset         1      yes" in lines
    [fault_row] = [line for line in lines if line.startswith("sigkill")]
    # +1.0 s from the first operation, 2 s long, 3 failures, read_orders back at 104.2
    assert fault_row.split() == ["sigkill", "order-service", "+1.0", "2.0", "3", "2.2"]
    assert lines[-1] == "0 violations"


def test_each_violation_lists_at_most_five_operations() -> None:
    slow = [placed(f"o{i}", f"k{i}", at=100.0 + i, took=20.0) for i in range(7)]
    violations = [
        Violation("no_hangs", "7 operations longer than 16s", tuple(slow)),
        Violation("outbox_drained", "order-service: 3 outbox rows never sent"),
    ]
    text = render(slow, [], violations)
    assert "2 violations" in text
    assert "[no_hangs] 7 operations longer than 16s" in text
    assert "[outbox_drained] order-service: 3 outbox rows never sent" in text
    assert text.count("    +") == 5 and "    ... and 2 more" in text
    assert "    +0.00s place_order 201 20.00s key=k0 attempt=1 order=o0 user=user-1" in text


def test_an_empty_run_still_renders() -> None:
    text = render([], [], [])
    assert "operations: 0" in text and "errors by kind\nnone" in text
    assert text.endswith("0 violations\n")


def test_a_fault_never_recovered_from_says_so() -> None:
    ops = [op("read_orders", 503, at=101.0), op("read_orders", 503, at=105.0)]
    assert "never" in render(ops, [FAULT], []).splitlines()[-3]
