"""The journal of a chaos run: every client operation, as the shopper saw it, kept as JSONL."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

OperationKind = Literal["place_order", "read_user", "read_orders"]
OPERATION_KINDS: tuple[OperationKind, ...] = ("place_order", "read_user", "read_orders")
# Enough to tell an Envoy reply from a problem document; a full order list would bloat the file.
BODY_LIMIT = 300


@dataclass(frozen=True)
class Operation:
    """One HTTP request and its answer. Times are time.monotonic(), comparable with faults."""

    kind: OperationKind
    started: float
    ended: float
    status: int | None  # None: no answer at all (timeout, connection refused or reset)
    content_type: str = ""
    body: str = ""  # the start of the answer's body, at most BODY_LIMIT characters
    error: str = ""  # why there was no answer
    user_id: str | None = None
    idempotency_key: str | None = None  # place_order only
    product_id: str | None = None
    quantity: int | None = None
    order_id: str | None = None  # from a 201's body
    attempt: int = 1  # 1 = the first try of its idempotency key
    # read_user only: the body's ordersAvailable, which truncation would cut off.
    orders_available: bool | None = None

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def truncated(text: str) -> str:
    return text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT] + "…"


class Journal:
    """Collects operations from many shopper tasks (and, should a runner use one, threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._operations: list[Operation] = []

    def add(self, operation: Operation) -> None:
        with self._lock:
            self._operations.append(operation)

    def operations(self) -> list[Operation]:
        """A copy, in the order the answers arrived."""
        with self._lock:
            return list(self._operations)

    def __len__(self) -> int:
        return len(self._operations)


def write_jsonl(path: Path, items: Iterable[Any]) -> None:
    """One JSON object per line; `items` are dataclass instances (operations, faults)."""
    with path.open("w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(dataclasses.asdict(item), ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def read_operations(path: Path) -> list[Operation]:
    return [Operation(**fields) for fields in read_jsonl(path)]
