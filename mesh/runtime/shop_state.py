"""state.json, what a running `meshmart run` publishes about itself in its run dir: the URLs,
every child's live PID and restarts. `meshmart status`, `load`, `canary`, the console, the
chaos run and the tests read it; only the supervisor writes it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def state_file(run_dir: Path) -> Path:
    return run_dir / "state.json"


def read_state(run_dir: Path) -> dict[str, Any] | None:
    """The published state, or None when no shop runs from `run_dir`."""
    try:
        state: dict[str, Any] = json.loads(state_file(run_dir).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return state


def write_state(run_dir: Path, state: dict[str, Any]) -> None:
    """Replace state.json at once, so a reader never sees half of it (it is rewritten after
    every exit and restart while others read it)."""
    partial = state_file(run_dir).with_suffix(".json.partial")
    partial.write_text(json.dumps(state, indent=2))
    os.replace(partial, state_file(run_dir))
