"""The shopper traffic of local mode (`meshmart load`, `meshmart run --with-load`): Locust users
in a process of their own, `python -m mesh.load`. This package's own namespace imports no
Locust, so the CLI and the supervisor can build that command line."""

from __future__ import annotations

import sys

DEFAULT_USERS = 5
# The shopper mix: how often each operation comes, relative to the others (Locust task weights).
MIX = {"browse catalog": 5, "view product": 3, "read own user": 2, "place order": 1}


def load_command(url: str, *, rps: float, users: int, duration: float) -> list[str]:
    """The argv of a load process: `duration` 0 runs until SIGINT or SIGTERM."""
    return [sys.executable, "-m", "mesh.load", url.rstrip("/"), str(rps), str(users),
            str(duration)]  # fmt: skip
