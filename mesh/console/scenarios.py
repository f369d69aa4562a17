"""Applying Istio YAML from the console: the same translation, Envoy validation and rollback
as `meshmart apply` (mesh/control/state.py), run off the event loop, one apply at a time."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import yaml

from mesh.control.state import MeshState, apply_files, wait_applied
from mesh.paths import ISTIO_DIR


class BadScenario(ValueError):
    """The request names no scenario or carries YAML that does not parse (a 4xx)."""


class UnknownScenario(BadScenario):
    pass


def scenario_files() -> list[str]:
    return sorted(p.name for p in ISTIO_DIR.glob("*.yaml"))


def scenario_path(name: str) -> Path:
    if name not in scenario_files():  # by name only: nothing outside istio/ can be named
        raise UnknownScenario(
            f"no scenario {name!r} in istio/; known: {', '.join(scenario_files())}"
        )
    return ISTIO_DIR / name


_uploads = itertools.count(1)


def pasted_file(state: MeshState, text: str) -> Path:
    """YAML typed into the page, kept in the run folder so refusals and sources can name it."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise BadScenario(f"the YAML does not parse: {exc}") from None
    if not documents or not all(isinstance(d, dict) for d in documents):
        raise BadScenario("expected one or more Istio resources (YAML mappings)")
    folder = state.root / "console"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"pasted-{int(time.time())}-{next(_uploads)}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def apply(state: MeshState, path: Path) -> tuple[list[str], float]:
    """(changed resources, seconds until every Envoy took them); IstioConfigError if refused,
    in which case nothing changed."""
    pending = apply_files(state, [path])
    seconds = wait_applied(state, pending)
    return pending.change.changed, seconds
