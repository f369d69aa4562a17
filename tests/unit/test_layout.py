"""The house rules of the code base, read from its source: each room of mesh/ keeps to its
concern, the repository's paths are defined once, and no process check parses /proc."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from mesh.paths import REPO_ROOT

MESH = REPO_ROOT / "mesh"
TOOLKIT = {
    "mesh.runtime.processes",
    "mesh.runtime.ports",
    "mesh.runtime.files",
    "mesh.runtime.polling",
}
PYTHON = [
    p
    for top in ("mesh", "services", "bench", "deploy", "tests")
    for p in sorted((REPO_ROOT / top).rglob("*.py"))
    if "__pycache__" not in p.parts
]


def _module(path: Path) -> str:
    return ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """The modules `path` imports, with `from a import b` counted as both a and a.b."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _mesh_modules(room: str) -> list[Path]:
    return sorted((MESH / room).rglob("*.py")) if room else sorted(MESH.rglob("*.py"))


def test_only_the_cli_imports_the_commands() -> None:
    offenders = {
        _module(path): sorted(i for i in _imports(path) if i.startswith("mesh.commands"))
        for path in _mesh_modules("")
        if "commands" not in path.relative_to(MESH).parts and path.name != "cli.py"
    }
    assert {m: i for m, i in offenders.items() if i} == {}


def _in_toolkit(imported: str) -> bool:
    """`mesh.runtime.ports`, `mesh.runtime.ports.free_port` or the package itself."""
    return imported == "mesh.runtime" or (
        imported in TOOLKIT or imported.rsplit(".", 1)[0] in TOOLKIT
    )


def test_the_process_toolkit_stands_on_its_own() -> None:
    for name in sorted(TOOLKIT):
        path = REPO_ROOT / (name.replace(".", "/") + ".py")
        outside = {i for i in _imports(path) if i.startswith("mesh") and not _in_toolkit(i)}
        assert outside == set(), name


@pytest.mark.parametrize("room", ["infra", "control", "istio", "envoy"])
def test_lower_rooms_do_not_reach_up_into_the_supervisor(room: str) -> None:
    """The servers, the control plane and the translator are used by the runtime, never the
    other way round: of mesh/runtime they may use the toolkit only."""
    for path in _mesh_modules(room):
        reached = {i for i in _imports(path) if i.startswith("mesh.runtime") and not _in_toolkit(i)}
        assert reached == set(), _module(path)


def test_the_repository_paths_are_defined_in_one_module() -> None:
    computed = re.compile(r"__file__\)?\.resolve\(\)\.parents|parents\[\d\]|[\"']\.cache[\"']")
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in PYTHON
        if path != MESH / "paths.py"
        and path != Path(__file__)
        and computed.search(path.read_text())
    ]
    assert offenders == []


def test_no_process_check_parses_proc_by_hand() -> None:
    """Liveness, command lines and sockets come from psutil (mesh.runtime.processes)."""
    by_hand = re.compile(r"/proc/(\{|\"|self|\[0-9\])")
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in PYTHON
        if path != Path(__file__) and by_hand.search(path.read_text())
    ]
    assert offenders == []
