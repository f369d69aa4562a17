"""Each invariant of the chaos checker, broken once and kept once, on hand-built runs."""

from __future__ import annotations

from collections.abc import Sequence

from mesh.chaos.invariants import POISON_HEADER, Bounds, Violation, check_run
from mesh.chaos.record import Operation
from mesh.chaos.snapshot import Snapshot
from mesh.chaos.timeline import Fault
from tests.unit.chaos_builders import (
    UNAVAILABLE_DB,
    dead_letter,
    op,
    placed,
    snapshot,
    stored,
)

BOUNDS = Bounds(settle_seconds=30, hang_seconds=16, grace_seconds=5)
FAULT = Fault("kill order-service", started=100.0, ended=110.0)
BEFORE = snapshot(stock=100)
AFTER = snapshot(stored("o1", "k1"), stock=99)


def check(
    operations: Sequence[Operation] = (placed("o1", "k1"),),
    before: Snapshot = BEFORE,
    after: Snapshot = AFTER,
    faults: Sequence[Fault] = (FAULT,),
    poison_keys: frozenset[str] = frozenset(),
) -> list[Violation]:
    return check_run(operations, faults, before, after, BOUNDS, poison_keys=poison_keys)


def broken(violations: list[Violation]) -> set[str]:
    return {v.invariant for v in violations}


def test_a_clean_run_breaks_nothing() -> None:
    assert check() == []


# acknowledged_order_stored ------------------------------------------------------------------
def test_an_acknowledged_order_missing_from_the_database_is_a_violation() -> None:
    [violation] = check(after=snapshot(stock=100))
    assert violation.invariant == "acknowledged_order_stored"
    assert [o.order_id for o in violation.operations] == ["o1"]


def test_an_acknowledged_order_stored_with_another_quantity_is_a_violation() -> None:
    after = snapshot(stored("o1", "k1", quantity=2), stock=98)
    assert broken(check(after=after)) == {"acknowledged_order_stored"}


# one_order_per_key --------------------------------------------------------------------------
def test_a_retry_that_succeeds_after_a_503_keeps_one_order_per_key() -> None:
    retried = [op(status=503, idempotency_key="k1", at=101), placed("o1", "k1", at=102, attempt=2)]
    assert check(retried) == []


def test_two_order_ids_acknowledged_for_one_key_is_a_violation() -> None:
    ops = [placed("o1", "k1"), placed("o2", "k1", attempt=2)]
    after = snapshot(stored("o1", "k1"), stored("o2", "k1"), stock=98)
    [violation] = check(ops, after=after)
    assert violation.invariant == "one_order_per_key"
    assert "k1" in violation.detail and len(violation.operations) == 2


def test_an_order_stored_without_the_shoppers_key_is_a_violation() -> None:
    # The 503'd first attempt created an order the key never recorded; the retry made another.
    ops = [op(status=503, idempotency_key="k1", at=101), placed("o1", "k1", at=102, attempt=2)]
    after = snapshot(stored("o1", "k1"), stored("o2", None), stock=98)
    [violation] = check(ops, after=after)
    assert violation.invariant == "one_order_per_key" and "o2" in violation.detail
    assert [o.status for o in violation.operations] == [503]


# orders_settled -----------------------------------------------------------------------------
def test_an_order_still_pending_after_the_settle_time_is_a_violation() -> None:
    [violation] = check(after=snapshot(stored("o1", "k1", "PENDING"), stock=100))
    assert violation.invariant == "orders_settled" and "o1" in violation.detail
    assert [o.order_id for o in violation.operations] == ["o1"]


def test_a_rejected_order_is_settled_and_takes_no_stock() -> None:
    assert check(after=snapshot(stored("o1", "k1", "REJECTED"), stock=100)) == []


# stock_conserved ----------------------------------------------------------------------------
def test_stock_that_fell_more_than_the_confirmed_orders_is_a_violation() -> None:
    [violation] = check(after=snapshot(stored("o1", "k1"), stock=97))
    assert violation.invariant == "stock_conserved"
    assert violation.detail == "CATALOG-001: stock fell by 3, confirmed orders hold 1"


def test_an_order_pending_before_the_run_and_confirmed_during_it_counts() -> None:
    before = snapshot(stored("old", None, "PENDING", user="someone"), stock=100)
    after = snapshot(stored("old", None, user="someone"), stored("o1", "k1"), stock=98)
    assert check(before=before, after=after) == []


def test_orders_confirmed_before_the_run_do_not_count() -> None:
    before = snapshot(stored("old", None, user="someone"), stock=100)
    after = snapshot(stored("old", None, user="someone"), stored("o1", "k1"), stock=99)
    assert check(before=before, after=after) == []


# outbox_drained -----------------------------------------------------------------------------
def test_unsent_outbox_rows_are_a_violation() -> None:
    after = snapshot(stored("o1", "k1"), stock=99, unsent_outbox={"order-service": 2})
    [violation] = check(after=after)
    assert violation.invariant == "outbox_drained" and "order-service: 2" in violation.detail


def test_an_empty_outbox_is_drained() -> None:
    after = snapshot(stored("o1", "k1"), stock=99, unsent_outbox={"order-service": 0})
    assert check(after=after) == []


# dead_letters_only_poison -------------------------------------------------------------------
def test_a_new_dead_letter_that_is_not_the_poison_is_a_violation() -> None:
    letter = dead_letter(7, **{"dlq-error": "handler failed: KeyError"})
    [violation] = check(after=snapshot(stored("o1", "k1"), stock=99, dead_letters=(letter,)))
    assert violation.invariant == "dead_letters_only_poison"
    assert "order-events.dlq[0]@7: handler failed: KeyError" in violation.detail


def test_the_poison_and_older_dead_letters_are_allowed() -> None:
    old, poison = dead_letter(0), dead_letter(1, **{POISON_HEADER: "run-1"})
    before = snapshot(stock=100, dead_letters=(old,))
    after = snapshot(stored("o1", "k1"), stock=99, dead_letters=(old, poison))
    assert check(before=before, after=after) == []


def test_a_poison_sent_but_never_seen_is_a_violation() -> None:
    """The DLQ read itself is checked: a run that sent the poison must find it."""
    violations = check_run((placed("o1", "k1"),), (FAULT,), BEFORE, AFTER, BOUNDS, poison_sent=True)
    [violation] = violations
    assert violation.invariant == "dead_letters_only_poison"
    assert "poison message is in no DLQ" in violation.detail
    seen = snapshot(stored("o1", "k1"), stock=99,
                    dead_letters=(dead_letter(1, **{POISON_HEADER: "1"}),))  # fmt: skip
    assert check_run((placed("o1", "k1"),), (FAULT,), BEFORE, seen, BOUNDS, poison_sent=True) == []


def test_poison_recognised_by_its_key() -> None:
    after = snapshot(stored("o1", "k1"), stock=99, dead_letters=(dead_letter(3),))
    assert check(after=after, poison_keys=frozenset({"CATALOG-001"})) == []


# answers_clean ------------------------------------------------------------------------------
def test_a_500_is_unclean_even_during_a_fault() -> None:
    ops = [placed("o1", "k1", at=90), op("read_user", 500, at=105, body='{"status":500}',
                                         content_type="application/problem+json")]  # fmt: skip
    [violation] = check(ops)
    assert violation.invariant == "answers_clean"
    assert violation.detail == "1 answers of kind server_error"


def test_mesh_503s_and_documented_503s_during_a_fault_are_clean() -> None:
    ops = [
        placed("o1", "k1", at=90),
        op("read_orders", 503, at=101),
        op("read_user", 503, at=102, content_type="application/problem+json", body=UNAVAILABLE_DB),
        op("read_user", 200, at=103, orders_available=False),
    ]
    assert check(ops) == []


# no_hangs -----------------------------------------------------------------------------------
def test_an_operation_longer_than_the_hang_bound_is_a_violation() -> None:
    ops = [placed("o1", "k1", at=101, took=17.0)]
    [violation] = check(ops)
    assert violation.invariant == "no_hangs" and violation.operations == tuple(ops)


def test_a_slow_operation_within_the_bound_is_no_hang() -> None:
    assert check([placed("o1", "k1", at=101, took=15.0)]) == []


# errors_only_during_faults ------------------------------------------------------------------
def test_an_error_while_no_fault_is_on_is_a_violation() -> None:
    ops = [op("read_orders", 503, at=50), placed("o1", "k1", at=120)]
    [violation] = check(ops)
    assert violation.invariant == "errors_only_during_faults"
    assert [o.started for o in violation.operations] == [50]


def test_errors_within_the_grace_after_a_fault_are_blamed_on_it() -> None:
    ops = [op("read_orders", 503, at=114.9), placed("o1", "k1", at=120)]
    assert check(ops) == []


def test_an_error_after_the_grace_is_not_blamed_on_the_fault() -> None:
    ops = [op("read_orders", 503, at=115.1), placed("o1", "k1", at=120)]
    assert broken(check(ops)) == {"errors_only_during_faults"}


def test_degraded_answers_outside_faults_are_errors_too() -> None:
    ops = [op("read_user", 200, at=10, orders_available=False), placed("o1", "k1")]
    assert broken(check(ops)) == {"errors_only_during_faults"}
