"""The one wait loop of the local runtime: poll a condition until it holds, fails or times out."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    ready: Callable[[], bool],
    timeout: float,
    interval: float = 0.1,
    *,
    unless: Callable[[], bool] | None = None,
) -> bool:
    """Poll `ready()` every `interval` seconds; True as soon as it holds. False once `timeout`
    seconds have passed, or at once when `unless()` holds (the process died, say): the caller
    tells the two apart by asking again."""
    deadline = time.monotonic() + timeout
    while True:
        if unless is not None and unless():
            return False
        if ready():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
