"""Rendering k8s/ for the tests: base + any set of components, and the deploy-time overlay."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from deploy.kindctl import write_workdir
from tests.manifests.tools import REPO, require_kustomize, run

K8S = REPO / "k8s"
BASE = K8S / "base"
COMPONENTS = tuple(sorted(p.parent.name for p in (K8S / "components").glob("*/kustomization.yaml")))
KIND_OVERLAY = K8S / "overlays" / "kind"
NAMESPACE = "meshmart"
# Kubernetes of kind v0.33.0's default node image (kind-cluster.yaml pins it); bundled by
# kubernetes-validate.
KUBERNETES_VERSION = "1.37.0"
# Custom resources kubernetes-validate has no schema for; istioctl validates them instead.
ISTIO_KINDS = frozenset({"Telemetry"})


def combinations() -> Iterator[tuple[str, ...]]:
    """Every subset of the components, the empty one (base alone) included."""
    for size in range(len(COMPONENTS) + 1):
        yield from itertools.combinations(COMPONENTS, size)


def build_dir(path: Path) -> list[dict[str, Any]]:
    out = run(require_kustomize(), "build", path)
    return [doc for doc in yaml.safe_load_all(out) if doc]


def build_combination(components: tuple[str, ...], workdir: Path) -> list[dict[str, Any]]:
    """`kustomize build` of base + components, through a throw-away kustomization."""
    workdir.mkdir(parents=True, exist_ok=True)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(BASE, workdir)],
        "components": [os.path.relpath(K8S / "components" / c, workdir) for c in components],
    }
    (workdir / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), encoding="utf-8")
    return build_dir(workdir)


def deployed(workdir: Path) -> list[dict[str, Any]]:
    """What kind-up applies: the kind overlay + image tag + Secrets generated into workdir."""
    write_workdir(workdir, "test")
    return build_dir(workdir)


def key(doc: dict[str, Any]) -> str:
    meta = doc["metadata"]
    return f"{doc['kind']}/{meta.get('namespace', '')}/{meta['name']}"


def of_kind(docs: Any, kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def write(docs: Any, path: Path) -> Path:
    path.write_text(yaml.safe_dump_all(list(docs), sort_keys=False), encoding="utf-8")
    return path
