"""The real tools the manifest tests run: kustomize and istioctl, found like their build scripts.

Each tools/<tool>/build.sh documents the lookup order ($TOOL, the cached build in
.cache/tools/<tool>/<version>/, PATH); the finders here follow it so a test uses the very
binary `make test` built. A missing tool skips locally (the reason names the build command)
and fails in CI (CI=true), where a skipped check would pass silently.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from mesh.paths import CACHE_DIR
from mesh.paths import REPO_ROOT as REPO
from tests.manifests.test_istio_files import find_istioctl

KUSTOMIZE_BUILD = "tools/kustomize/build.sh"
ISTIOCTL_BUILD = "tools/istioctl/build.sh"


def _cached(tool: str, module: str) -> Path | None:
    """.cache/tools/<tool>/<pinned version>/<tool>, the version read from tools/<tool>/go.mod."""
    go_mod = (REPO / "tools" / tool / "go.mod").read_text(encoding="utf-8")
    pinned = re.search(rf"^require {re.escape(module)} (\S+)", go_mod, re.MULTILINE)
    path = CACHE_DIR / "tools" / tool / (pinned.group(1) if pinned else "?") / tool
    return path if path.is_file() and os.access(path, os.X_OK) else None


def find_kustomize() -> Path | None:
    """Same order as tools/kustomize/build.sh: $KUSTOMIZE, the cached build, PATH."""
    if env := os.environ.get("KUSTOMIZE"):
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"KUSTOMIZE={env} is not an executable file")
        return path
    if cached := _cached("kustomize", "sigs.k8s.io/kustomize/kustomize/v5"):
        return cached
    on_path = shutil.which("kustomize")
    return Path(on_path) if on_path else None


def require(name: str, finder: Callable[[], Path | None], build_command: str) -> Path:
    found = finder()
    if found is None:
        reason = (
            f"{name} not found (${name.upper()}, .cache/tools/{name}, PATH); run {build_command}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def require_kustomize() -> Path:
    return require("kustomize", find_kustomize, KUSTOMIZE_BUILD)


def require_istioctl() -> Path:
    return require("istioctl", find_istioctl, ISTIOCTL_BUILD)


def run(
    *args: str | Path, cwd: Path = REPO, env: dict[str, str] | None = None, stderr: bool = False
) -> str:
    """Run a tool: its stdout (+ stderr if asked), or a test failure with all it printed."""
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        command = " ".join(str(a) for a in args)
        pytest.fail(f"{command} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result.stdout + (result.stderr if stderr else "")
