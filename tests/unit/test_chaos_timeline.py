"""Blaming operations on faults, and recovery time after each fault."""

from __future__ import annotations

from pathlib import Path

from mesh.chaos.record import write_jsonl
from mesh.chaos.timeline import Fault, blamed_on, failures_during, read_faults, recovery_seconds
from tests.unit.chaos_builders import op, placed

FAULT = Fault("sigkill kafka", started=100.0, ended=104.0)
GRACE = 2.0


def test_faults_round_trip_through_jsonl(tmp_path: Path) -> None:
    faults = [FAULT, Fault("pg fast restart", 200.5, 201.25)]
    write_jsonl(tmp_path / "faults.jsonl", faults)
    assert read_faults(tmp_path / "faults.jsonl") == faults
    assert faults[1].seconds == 0.75


def test_an_operation_is_blamed_when_it_overlaps_the_window_plus_grace() -> None:
    assert blamed_on(op(at=99.0, took=1.5), [FAULT], GRACE) == [FAULT]  # straddles the start
    assert blamed_on(op(at=105.9), [FAULT], GRACE) == [FAULT]  # within the grace
    assert blamed_on(op(at=98.0, took=1.0), [FAULT], GRACE) == []  # ended before it began
    assert blamed_on(op(at=106.1), [FAULT], GRACE) == []  # after the grace


def test_overlapping_faults_share_the_blame() -> None:
    other = Fault("abort order-service", 103.0, 110.0)
    assert blamed_on(op(at=103.5), [FAULT, other], GRACE) == [FAULT, other]


def test_failures_during_counts_only_answers_short_of_success() -> None:
    ops = [op(status=503, at=101), placed("o1", "k1", at=102), op(status=503, at=150)]
    assert failures_during(FAULT, ops, GRACE) == [ops[0]]


def test_recovery_is_the_first_success_after_the_end_for_each_broken_kind() -> None:
    ops = [
        op("place_order", 503, at=101),
        op("read_orders", 503, at=102),
        placed("o1", "k1", at=103.0, took=0.5),  # during the fault: does not count
        placed("o2", "k2", at=104.5, took=0.5),  # place_order back at 105.0 -> 1.0 s
        op("read_orders", 503, at=105.0),
        op("read_orders", 200, at=106.0, took=1.0),  # read_orders back at 107.0 -> 3.0 s
    ]
    assert recovery_seconds(FAULT, ops, GRACE) == 3.0


def test_a_fault_that_broke_nothing_recovers_in_no_time() -> None:
    assert recovery_seconds(FAULT, [placed("o1", "k1", at=101)], GRACE) == 0.0


def test_a_kind_that_never_succeeds_again_never_recovered() -> None:
    ops = [op("read_user", 503, at=101), placed("o1", "k1", at=110), op("read_user", 503, at=111)]
    assert recovery_seconds(FAULT, ops, GRACE) is None
