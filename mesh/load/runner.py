"""Run the shopper mix with Locust as a library: the plan's shoppers share its requests per
second for its duration (0: until Ctrl-C), each way in taking its share of the shoppers, and a
live line every `every` seconds."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import gevent
from locust import User, constant_throughput
from locust.env import Environment
from locust.stats import StatsEntry, stats_history

from mesh.load.plan import Plan
from mesh.load.report import Operation, final_table, live_line
from mesh.load.shopper import Shopper


def _operation(entry: StatsEntry) -> Operation:
    return Operation(
        name=str(entry.name),
        requests=entry.num_requests,
        failures=entry.num_failures,
        rate=float(entry.total_rps),
        p50_ms=float(entry.get_response_time_percentile(0.5) or 0),
        p90_ms=float(entry.get_response_time_percentile(0.9) or 0),
        p99_ms=float(entry.get_response_time_percentile(0.99) or 0),
        max_ms=float(entry.max_response_time or 0),
    )


def _shopper_classes(plan: Plan) -> list[type[User]]:
    """One concrete Shopper class per way in, each with its target, pace and head count."""
    pace = constant_throughput(plan.rps / plan.users)
    return [
        type(f"{target.via.capitalize()}Shopper", (Shopper,), {
            "abstract": False, "target": target, "host": target.host, "wait_time": pace,
            "fixed_count": count,
        })
        for target, count in plan.shoppers()
    ]  # fmt: skip


def run_load(plan: Plan, *, every: float = 2.0, say: Callable[[str], None] = print) -> int:
    """0 once the run is over with at least one request answered; 1 if none was."""
    rps, users, duration = plan.rps, plan.users, plan.duration
    env = Environment(user_classes=_shopper_classes(plan))
    env.stats.use_response_times_cache = True  # percentiles of the last 10 s, for the live line
    by_status: Counter[str] = Counter()

    def count(response: Any = None, exception: Any = None, **_: Any) -> None:
        if exception is not None:
            status = getattr(response, "status_code", 0)
            by_status[str(status) if status else "no response"] += 1

    env.events.request.add_listener(count)  # type: ignore[no-untyped-call]
    runner = env.create_local_runner()
    gevent.spawn(stats_history, runner)
    began = time.monotonic()

    def report() -> None:
        while True:
            gevent.sleep(every)
            total = env.stats.total
            say(live_line(time.monotonic() - began, total.current_rps,
                          total.get_current_response_time_percentile(0.5),
                          total.get_current_response_time_percentile(0.99), by_status))  # fmt: skip

    ways = ", ".join(f"{n} {t.describe()}" for t, n in plan.shoppers())
    say(f"meshmart load: {users} shoppers, {rps:g} req/s in all: {ways}"
        + (f", for {duration:g} s" if duration else ", until Ctrl-C"))  # fmt: skip
    printer = gevent.spawn(report)
    gevent.signal_handler(signal.SIGINT, runner.quit)
    gevent.signal_handler(signal.SIGTERM, runner.quit)
    runner.start(users, spawn_rate=users)
    if duration:
        gevent.spawn_later(duration, runner.quit)
    runner.greenlet.join()
    printer.kill()
    operations = [_operation(e) for e in env.stats.entries.values() if e.num_requests]
    say(final_table(operations, by_status))
    answered = env.stats.total.num_requests - env.stats.total.num_failures
    return 0 if answered > 0 else 1
