"""The shopper traffic of local mode (`meshmart load`, `meshmart run --with-load`) and of the
cluster's loadgen Deployment: Locust users in a process of their own, `python -m mesh.load`.
This package's own namespace imports no Locust, so the CLI and the supervisor can build that
command line."""

from __future__ import annotations

import sys

from mesh.load.plan import Plan

DEFAULT_USERS = 5
# The shopper mix: how often each operation comes, relative to the others (Locust task weights).
MIX = {"browse catalog": 5, "view product": 3, "read own user": 2, "place order": 1}


def load_command(plan: Plan) -> list[str]:
    """The argv of a load process."""
    return [sys.executable, "-m", "mesh.load", *plan.argv()]
