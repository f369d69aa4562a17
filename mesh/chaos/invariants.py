"""The properties a chaos run must keep, each checked by one small function over the journal,
the faults and the snapshots taken before the shoppers started and after the run settled."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from mesh.chaos.answers import classify
from mesh.chaos.record import Operation
from mesh.chaos.snapshot import DeadLetter, Snapshot, StoredOrder
from mesh.chaos.timeline import Fault, blamed_on

# The runner's deliberate poison carries this Kafka header; the consumer's dead-lettering
# keeps the original headers, so it is recognisable in the DLQ.
POISON_HEADER = "chaos-poison"
LISTED_IDS = 5  # ids named in a violation's detail; the report lists the operations


@dataclass(frozen=True)
class Bounds:
    settle_seconds: float = 60.0  # the runner waits this long for every order to settle
    # Envoy's default route timeout is 15 s: anything longer hung past every mesh timeout.
    hang_seconds: float = 16.0
    grace_seconds: float = 10.0  # after a fault ends: restart, readiness, the mesh noticing


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str
    operations: tuple[Operation, ...] = ()


@dataclass(frozen=True)
class Run:
    """What every invariant looks at."""

    operations: Sequence[Operation]
    faults: Sequence[Fault]
    before: Snapshot
    after: Snapshot
    bounds: Bounds
    poison_keys: Collection[str]
    poison_sent: bool = False

    @cached_property
    def acknowledged(self) -> list[Operation]:
        """Order placements answered 201 with an order id."""
        return [op for op in self.operations if op.status == 201 and op.order_id]

    def new_orders(self) -> list[StoredOrder]:
        return [o for oid, o in self.after.orders.items() if oid not in self.before.orders]

    def acknowledging(self, order_id: str) -> tuple[Operation, ...]:
        return tuple(op for op in self.acknowledged if op.order_id == order_id)


def check_run(
    operations: Sequence[Operation],
    faults: Sequence[Fault],
    before: Snapshot,
    after: Snapshot,
    bounds: Bounds,
    *,
    poison_keys: Collection[str] = frozenset(),
    poison_sent: bool = False,
) -> list[Violation]:
    """Every broken invariant, with the operations that broke it; [] for a clean run.
    `poison_keys`: Kafka keys of the deliberate poison (as well as POISON_HEADER)."""
    run = Run(operations, faults, before, after, bounds, poison_keys, poison_sent)
    return [violation for check in CHECKS for violation in check(run)]


def acknowledged_orders_stored(run: Run) -> list[Violation]:
    """Every order acknowledged with 201 is stored, once, as what was ordered."""
    missing, wrong = [], []
    for op in run.acknowledged:
        stored = run.after.orders.get(op.order_id or "")
        if stored is None:
            missing.append(op)
        elif (stored.user_id, stored.product_id, stored.quantity) != (
            op.user_id, op.product_id, op.quantity,
        ):  # fmt: skip
            wrong.append(op)
    return [
        *_violation("acknowledged_order_stored", "acknowledged but not stored", missing),
        *_violation("acknowledged_order_stored", "stored unlike what was ordered", wrong),
    ]


def one_order_per_key(run: Run) -> list[Violation]:
    """All the acknowledged attempts of one Idempotency-Key name the same order."""
    ids_by_key: dict[str, set[str]] = defaultdict(set)
    for op in run.acknowledged:
        ids_by_key[op.idempotency_key or ""].add(op.order_id or "")
    split = [key for key, ids in ids_by_key.items() if len(ids) > 1]
    if not split:
        return []
    attempts = tuple(op for op in run.acknowledged if op.idempotency_key in split)
    detail = f"{len(split)} keys acknowledged with several order ids: {_ids(split)}"
    return [Violation("one_order_per_key", detail, attempts)]


def no_order_without_its_key(run: Run) -> list[Violation]:
    """Every order of a shopper was stored as the first answer of one of the shopper's keys:
    one stored without it is a retry that ordered again."""
    keys_by_user: dict[str, set[str]] = defaultdict(set)
    for op in run.operations:
        if op.kind == "place_order" and op.user_id and op.idempotency_key:
            keys_by_user[op.user_id].add(op.idempotency_key)
    keyless = [
        o for o in run.new_orders()
        if o.user_id in keys_by_user and o.idempotency_key not in keys_by_user[o.user_id]
    ]  # fmt: skip
    if not keyless:
        return []
    users = {o.user_id for o in keyless}
    suspects = tuple(  # the attempts whose answer was lost or refused: one of them ordered
        op for op in run.operations
        if op.kind == "place_order" and op.user_id in users and op.status != 201
    )  # fmt: skip
    ids = _ids(o.order_id for o in keyless)
    detail = f"{len(keyless)} orders stored without the shopper's key: {ids}"
    return [Violation("one_order_per_key", detail, suspects)]


def orders_settled(run: Run) -> list[Violation]:
    """Every order created during the run ended CONFIRMED or REJECTED."""
    pending = [o.order_id for o in run.new_orders() if not o.settled]
    if not pending:
        return []
    ops = tuple(op for oid in pending for op in run.acknowledging(oid))
    detail = (
        f"{len(pending)} orders not settled after {run.bounds.settle_seconds:g}s: {_ids(pending)}"
    )
    return [Violation("orders_settled", detail, ops)]


def stock_conserved(run: Run) -> list[Violation]:
    """For each product: stock before - stock after = the units of the orders that became
    CONFIRMED during the run (new ones, and any still PENDING when the run began)."""
    reserved: dict[str, int] = defaultdict(int)
    for oid, order in run.after.orders.items():
        earlier = run.before.orders.get(oid)
        if order.status == "CONFIRMED" and (earlier is None or earlier.status != "CONFIRMED"):
            reserved[order.product_id] += order.quantity
    found = []
    for product in sorted(run.before.stock.keys() & run.after.stock.keys()):
        taken = run.before.stock[product] - run.after.stock[product]
        if taken != reserved[product]:
            ops = tuple(op for op in run.acknowledged if op.product_id == product)
            detail = f"{product}: stock fell by {taken}, confirmed orders hold {reserved[product]}"
            found.append(Violation("stock_conserved", detail, ops))
    return found


def outbox_drained(run: Run) -> list[Violation]:
    return [
        Violation("outbox_drained", f"{database}: {count} outbox rows never sent")
        for database, count in sorted(run.after.unsent_outbox.items())
        if count
    ]


def dead_letters_only_poison(run: Run) -> list[Violation]:
    """The DLQs gained nothing during the run but the runner's deliberate poison, and (when
    it sent one) the poison is there: a DLQ read that sees nothing cannot pass."""
    earlier = {letter.position for letter in run.before.dead_letters}
    new = [letter for letter in run.after.dead_letters if letter.position not in earlier]
    unexpected = [letter for letter in new if not is_poison(letter, run.poison_keys)]
    violations = []
    if run.poison_sent and len(unexpected) == len(new):
        detail = "the deliberate poison message is in no DLQ (is the DLQ read seeing anything?)"
        violations.append(Violation("dead_letters_only_poison", detail))
    if unexpected:
        where = [f"{d.topic}[{d.partition}]@{d.offset}: {d.headers.get('dlq-error', '')[:80]}"
                 for d in unexpected]  # fmt: skip
        detail = f"{len(unexpected)} dead letters that are not the poison: " + _ids(where)
        violations.append(Violation("dead_letters_only_poison", detail))
    return violations


def is_poison(letter: DeadLetter, poison_keys: Collection[str]) -> bool:
    return POISON_HEADER in letter.headers or letter.key in poison_keys


def answers_clean(run: Run) -> list[Violation]:
    """Every answer short of success was one a client can act on: one violation per kind."""
    unclean: dict[str, list[Operation]] = defaultdict(list)
    for op in run.operations:
        answer = classify(op)
        if not answer.clean:
            unclean[answer.kind].append(op)
    return [
        Violation("answers_clean", f"{len(ops)} answers of kind {kind}", tuple(ops))
        for kind, ops in sorted(unclean.items())
    ]


def no_hangs(run: Run) -> list[Violation]:
    limit = run.bounds.hang_seconds
    return _violation("no_hangs", f"operations longer than {limit:g}s",
                      [op for op in run.operations if op.seconds > limit])  # fmt: skip


def errors_only_during_faults(run: Run) -> list[Violation]:
    """No answer short of success while no fault (or its grace period) was on."""
    grace = run.bounds.grace_seconds
    stray = [
        op for op in run.operations
        if not classify(op).success and not blamed_on(op, run.faults, grace)
    ]  # fmt: skip
    return _violation(
        "errors_only_during_faults", f"failed outside every fault + {grace:g}s", stray
    )


def _violation(invariant: str, what: str, ops: Sequence[Operation]) -> list[Violation]:
    return [Violation(invariant, f"{len(ops)} {what}", tuple(ops))] if ops else []


def _ids(values: Iterable[str]) -> str:
    listed = list(values)
    more = f" (+{len(listed) - LISTED_IDS} more)" if len(listed) > LISTED_IDS else ""
    return ", ".join(listed[:LISTED_IDS]) + more


CHECKS: tuple[Callable[[Run], list[Violation]], ...] = (
    acknowledged_orders_stored,
    one_order_per_key,
    no_order_without_its_key,
    orders_settled,
    stock_conserved,
    outbox_drained,
    dead_letters_only_poison,
    answers_clean,
    no_hangs,
    errors_only_during_faults,
)
