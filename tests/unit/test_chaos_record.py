"""The journal of operations and its JSONL files."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mesh.chaos.record import BODY_LIMIT, Journal, read_operations, truncated, write_jsonl
from tests.unit.chaos_builders import op, placed


def test_operations_round_trip_through_jsonl(tmp_path: Path) -> None:
    ops = [
        placed(
            "o1", "k1", body='{"orderId":"o1","status":"PENDING"}', content_type="application/json"
        ),
        op(status=None, error="TimeoutError: ", attempt=2),
        op("read_user", 200, orders_available=False, body="ünïcode"),
    ]
    path = tmp_path / "operations.jsonl"
    write_jsonl(path, ops)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3
    assert read_operations(path) == ops


def test_bodies_are_truncated() -> None:
    assert truncated("x" * 10) == "x" * 10
    assert truncated("x" * 1000) == "x" * BODY_LIMIT + "…"


async def test_the_journal_collects_from_many_tasks_in_arrival_order() -> None:
    journal = Journal()

    async def shopper(n: int) -> None:
        for i in range(10):
            await asyncio.sleep(0)
            journal.add(op(at=float(n * 100 + i)))

    await asyncio.gather(*(shopper(n) for n in range(5)))
    assert len(journal) == 50
    taken = journal.operations()
    taken.clear()  # a copy: the journal keeps its own
    assert len(journal.operations()) == 50
