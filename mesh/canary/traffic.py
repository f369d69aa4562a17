"""The canary's own traffic: `meshmart load` while the rollout runs, so a freshly started shop
needs no hand-made requests for the analysis to have something to judge.

The shoppers come in from the loadgen sidecar (`meshmart load --via mesh`), never through
the ingress: the VirtualService weights program the caller's sidecar and the ingress ignores
them, so an order placed through the ingress would reach the canary whatever its weight. The
canary's requests are then the in-mesh calls to its service; for order-service, loadgen's
orders and user-service's calls when shoppers read their own user. The rate is chosen so that
the first, smallest step still sees twice the requests the analysis asks for, counting the
reads alone (the rarer orders only add to it).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mesh.load import DEFAULT_USERS, MIX, load_command
from mesh.load.plan import Plan, Target
from mesh.runtime.processes import Child

WARM_UP_SECONDS = 5.0  # the shoppers sign up and log in before they call anything
_MARGIN = 2.0
_MIN_RPS, _MAX_RPS = 5.0, 200.0


def rate_for(min_requests: int, interval: float, first_step: int) -> float:
    """Requests per second of the whole mix that give the canary `_MARGIN` times
    `min_requests` in its first step (`first_step` percent of the calls for `interval` s)."""
    share = MIX["read own user"] / sum(MIX.values())
    needed = _MARGIN * min_requests / (interval * first_step / 100) / share
    return float(min(_MAX_RPS, max(_MIN_RPS, math.ceil(needed))))


@contextmanager
def shopper_traffic(loadgen: Target, rps: float, log: Path) -> Iterator[int]:
    """`meshmart load` from `loadgen` at `rps` until the block ends (then SIGTERM, by PID);
    yields its PID."""
    argv = load_command(Plan((loadgen,), rps, DEFAULT_USERS, 0))
    load = Child("canary-load", argv, {}, log)
    load.start()
    try:
        yield load.pid
    finally:
        load.stop(timeout=15)
