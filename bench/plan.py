"""How long and how hard each scenario runs: the full run, or the smoke run that tests use."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    name: str
    fixed_seconds: float  # each fixed-rate fortio run
    max_seconds: float  # each max-throughput fortio run
    rates: tuple[int, ...]  # the fixed rates of the overhead scenario
    connections: int  # fortio connections for fixed-rate runs
    max_connections: int  # and for max-throughput runs
    kafka_rates: tuple[int, ...]  # orders/s of the Kafka lag scenario (0: as fast as it goes)
    kafka_seconds: float
    settle_seconds: float  # after placing orders: time allowed for every order to settle
    option_seconds: float  # each server-option comparison run


FULL = Plan(
    name="full",
    fixed_seconds=20,
    max_seconds=15,
    rates=(100, 500, 1000),
    connections=16,
    max_connections=32,
    kafka_rates=(50, 200, 0),
    kafka_seconds=60,
    settle_seconds=60,
    option_seconds=10,
)

# Runs every scenario end to end in a minute or two: it proves the harness, not the numbers.
SMOKE = Plan(
    name="smoke",
    fixed_seconds=1,
    max_seconds=1,
    rates=(50,),
    connections=2,
    max_connections=4,
    kafka_rates=(10,),
    kafka_seconds=2,
    settle_seconds=30,
    option_seconds=1,
)
