"""deploy/kind-up.sh --dry-run works here (no Docker, kind or kubectl needed) and renders what
the tests above check; the README's cluster journey uses only commands the scripts run or print."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mesh.control.state import DEFAULT_FILES
from tests.manifests.k8s import build_dir, key
from tests.manifests.tools import REPO, require_istioctl, require_kustomize

CLUSTER_TOOLS = ("docker", "kind", "kubectl")


def _stub_cluster_tools(bin_dir: Path, calls: Path) -> None:
    """docker/kind/kubectl that only record being called: a dry run must call none of them."""
    bin_dir.mkdir()
    for tool in CLUSTER_TOOLS:
        stub = bin_dir / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\nexit 1\n')
        stub.chmod(0o755)


def dry_run(script: str, tmp_path: Path) -> tuple[str, Path]:
    workdir = tmp_path / "work"
    calls = tmp_path / "calls"
    _stub_cluster_tools(tmp_path / "bin", calls)
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "KIND_WORK_DIR": str(workdir),
        "ISTIOCTL": str(require_istioctl()),
        "KUSTOMIZE": str(require_kustomize()),
        "DRY_RUN": "1",
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
    }
    result = subprocess.run(
        [str(REPO / "deploy" / script)], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert not calls.exists(), f"a dry run called {calls.read_text()}"
    return output, workdir


@pytest.fixture(scope="module")
def kind_up(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    return dry_run("kind-up.sh", tmp_path_factory.mktemp("kind-up"))


def test_dry_run_renders_every_manifest(kind_up: tuple[str, Path]) -> None:
    output, workdir = kind_up
    rendered = workdir / "rendered"
    docs = [d for d in yaml.safe_load_all((rendered / "meshmart.yaml").read_text()) if d]
    assert [key(d) for d in docs] == [key(d) for d in build_dir(workdir)]
    assert {d["kind"] for d in docs} >= {"Namespace", "Secret", "Deployment", "StatefulSet", "Job"}
    install = [d for d in yaml.safe_load_all((rendered / "istio-install.yaml").read_text()) if d]
    assert any(d["kind"] == "Deployment" and d["metadata"]["name"] == "istiod" for d in install)
    secrets = workdir / "secrets"
    assert secrets.stat().st_mode & 0o077 == 0 and all(
        p.stat().st_mode & 0o077 == 0 for p in secrets.iterdir()
    ), "generated secrets must be private"
    assert "BEGIN" not in output and "postgresql://" not in output  # no secret in the log


def test_dry_run_prints_every_step_in_order(kind_up: tuple[str, Path]) -> None:
    output, workdir = kind_up
    commands = [line[2:] for line in output.splitlines() if line.startswith("+ ")]
    expected = [
        r"kind create cluster --config \S+/kind-cluster.yaml --name meshmart",
        r"\S*istioctl --context kind-meshmart install -y -f \S+/istio-operator.yaml",
        *[
            rf"{verb} .*meshmart/{service}:"
            for service in ("user-service", "catalog-service", "order-service", "loadgen")
            for verb in (
                "docker build -f \\S+/Dockerfile -t",
                "kind load docker-image --name meshmart",
            )
        ],
        rf"kubectl --context kind-meshmart apply -f {workdir}/rendered/meshmart.yaml",
        *[
            rf"kubectl --context kind-meshmart apply -f \S+/istio/{re.escape(f)}"
            for f in DEFAULT_FILES
        ],
        r"kubectl .* rollout status statefulset/postgres",
        r"kubectl .* wait --for=condition=Available deployment --all",
        r"curl .*http://localhost:8080/catalog-service/catalogs",
    ]
    position = 0
    for pattern in expected:
        found = [i for i, c in enumerate(commands) if i >= position and re.match(pattern, c)]
        assert found, f"no command matching {pattern!r} after {commands[position - 1]!r}"
        position = found[0] + 1
    assert "istioctl dashboard kiali" in output


def test_kind_down_dry_run(tmp_path: Path) -> None:
    output, workdir = dry_run("kind-down.sh", tmp_path)
    assert "+ kind delete cluster --name meshmart" in output
    assert f"+ rm -rf {workdir}" in output


def test_readme_journey_commands_are_run_or_printed(kind_up: tuple[str, Path]) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Cluster mode\n", 1)[1].split("\n## ", 1)[0]
    commands = [
        line.split("#", 1)[0].strip()
        for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
        for line in block.splitlines()
    ]
    sources = kind_up[0] + "".join(
        (REPO / p).read_text() for p in ("deploy/kind-up.sh", "deploy/kind-down.sh", "Makefile")
    )
    makefile_targets = re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.MULTILINE)
    journey = {
        "make kind-up", "make kind-down", "istioctl dashboard kiali", "istioctl dashboard zipkin",
        "kubectl apply -f istio/virtual-service-order-90-10.yaml",
        "kubectl apply -f istio/virtual-service-order-50-50.yaml",
        "kubectl apply -f istio/virtual-service-order-v2.yaml",
    }  # fmt: skip
    assert journey <= set(commands)
    for command in filter(None, commands):
        if command.startswith("make "):
            assert command.split()[1] in makefile_targets, command
        else:
            assert command in sources, f"README command not in the scripts or dry run: {command}"
        for path in re.findall(r"istio/[\w.-]+\.yaml", command):
            assert (REPO / path).is_file(), path


def test_kind_config_uses_only_kind_fields() -> None:
    """Every key of kind-cluster.yaml is a field of kind's v1alpha4 Cluster types, read from the
    source of the kind release whose node image it pins (in the Go module cache when present)."""
    config = yaml.safe_load((REPO / "kind-cluster.yaml").read_text())
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4" and config["kind"] == "Cluster"
    types = REPO / ".cache/go/mod/sigs.k8s.io/kind@v0.33.0/pkg/apis/config/v1alpha4/types.go"
    if not types.is_file():
        reason = f"{types} absent: run `make kind-source`"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    fields = set(re.findall(r'yaml:"(\w+)', types.read_text()))
    defaults = (types.parent.parent / "defaults" / "image.go").read_text()
    assert f'"{config["nodes"][0]["image"]}"' in defaults  # kind's own default node image

    def keys(value: object) -> set[str]:
        if isinstance(value, dict):
            return set(value) | {k for v in value.values() for k in keys(v)}
        if isinstance(value, list):
            return {k for v in value for k in keys(v)}
        return set()

    assert keys(config) - {"kind", "apiVersion"} <= fields, keys(config) - fields
