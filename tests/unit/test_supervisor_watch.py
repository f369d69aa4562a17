"""What `meshmart run` does when a child exits: the shop stops for one it needs, and goes on
without the load generator (real child processes, no servers)."""

from __future__ import annotations

import sys
from pathlib import Path

from mesh.runtime.processes import Child
from mesh.runtime.supervisor import Supervisor


def _child(tmp_path: Path, name: str, code: str, *, essential: bool = True) -> Child:
    argv = [sys.executable, "-c", code]
    return Child(name, argv, {}, tmp_path / "logs" / f"{name}.log", essential=essential)


def test_the_shop_goes_on_without_the_load_generator_and_stops_for_an_app(
    tmp_path: Path,
) -> None:
    said: list[str] = []
    sup = Supervisor(tmp_path, progress=said.append)
    try:
        load = sup.start(_child(tmp_path, "load", "raise SystemExit(3)", essential=False))
        app = sup.start(_child(tmp_path, "app", "import time; time.sleep(1.5)"))
        assert sup.watch(interval=0.05) == 1
        assert load.exited() == 3 and app.exited() == 0
        assert said == ["load is gone; the shop goes on without it"]
    finally:
        sup.close()
