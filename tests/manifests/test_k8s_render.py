"""k8s/ renders with the real kustomize and validates: every component combination, strict schemas
of Kubernetes 1.37 (kind-cluster.yaml's node), the real istioctl on the result plus istio/."""

from __future__ import annotations

import filecmp
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from mesh.control.state import DEFAULT_FILES
from mesh.paths import CACHE_DIR
from tests.manifests.k8s import (
    ISTIO_KINDS,
    K8S,
    KIND_OVERLAY,
    KUBERNETES_VERSION,
    build_combination,
    build_dir,
    combinations,
    deployed,
    key,
    of_kind,
    write,
)
from tests.manifests.test_istio_files import FILES, analyze
from tests.manifests.tools import REPO, require_istioctl, run

COMBINATIONS = list(combinations())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return deployed(tmp_path_factory.mktemp("kind-workdir"))


@pytest.mark.parametrize("components", COMBINATIONS, ids=lambda c: "+".join(("base", *c)))
def test_kustomize_builds_base_with_components(components: tuple[str, ...], tmp_path: Path) -> None:
    docs = build_combination(components, tmp_path)
    keys = [key(d) for d in docs]
    assert len(keys) == len(set(keys)), "duplicate objects"
    assert {"Namespace//meshmart", "Deployment/meshmart/order-service-v1"} <= set(keys)
    assert ("Deployment/meshmart/order-service-v2" in keys) == ("order-v2" in components)
    for doc in docs:
        if doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"].get("namespace"), f"{key(doc)}: no namespace"
    _validate_strict(docs)


def test_kind_overlay_is_base_with_every_component(tmp_path: Path) -> None:
    overlay = yaml.safe_load((KIND_OVERLAY / "kustomization.yaml").read_text())
    assert overlay["resources"] == ["../../base"]
    assert sorted(Path(c).name for c in overlay["components"]) == sorted(COMBINATIONS[-1])
    assert build_dir(KIND_OVERLAY) == build_combination(COMBINATIONS[-1], tmp_path)


def test_components_have_a_readme() -> None:
    for component in COMBINATIONS[-1]:
        readme = K8S / "components" / component / "README.md"
        assert readme.is_file() and len(readme.read_text().strip()) > 200, readme


def _validate_strict(docs: list[dict[str, Any]]) -> None:
    errors = []
    for doc in docs:
        if doc["kind"] in ISTIO_KINDS:
            continue  # an Istio CRD: no schema in kubernetes-validate; istioctl checks it below
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{key(doc)}: {exc.message} at {list(exc.path)}")
    assert not errors, "\n".join(errors)


def test_deployed_objects_validate_strictly(rendered: list[dict[str, Any]]) -> None:
    """Includes the generated Secrets and the image tag that only kind-up adds."""
    assert {d["kind"] for d in rendered} - {"Telemetry"} and of_kind(rendered, "Secret")
    _validate_strict(rendered)


def test_strict_validation_catches_a_typo(rendered: list[dict[str, Any]]) -> None:
    """Guards the check above against validating nothing (e.g. a version without schemas)."""
    deployment = yaml.safe_load(yaml.safe_dump(of_kind(rendered, "Deployment")[0]))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Never"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_istioctl_validate_rendered(rendered: list[dict[str, Any]], tmp_path: Path) -> None:
    istioctl = require_istioctl()
    path = write(rendered, tmp_path / "meshmart.yaml")
    env = {"KUBECONFIG": str(tmp_path / "none")}  # never a developer's cluster
    out = run(istioctl, "validate", "-f", path, env=env, stderr=True)
    assert out.strip() == f'"{path}" is valid', out


@pytest.mark.parametrize("istio_files", ["defaults", "all"])
def test_istioctl_analyze_rendered_with_istio_files(
    rendered: list[dict[str, Any]], istio_files: str, tmp_path: Path
) -> None:
    """The cluster as kind-up leaves it (defaults), and with every scenario file on top."""
    istioctl = require_istioctl()
    path = write(rendered, tmp_path / "meshmart.yaml")
    files = DEFAULT_FILES if istio_files == "defaults" else tuple(FILES)
    assert analyze(istioctl, (str(path), *files), tmp_path) == []


def test_istio_install_settings(tmp_path: Path) -> None:
    """`istioctl manifest generate` of what `istioctl install` gets: the JWKS mode istio/README.md
    requires, the NodePort kind-cluster.yaml publishes, tracing to the zipkin addon."""
    istioctl = require_istioctl()
    operator = K8S / "components" / "addons" / "istio-operator.yaml"
    out = run(istioctl, "manifest", "generate", "-f", operator)
    docs = [d for d in yaml.safe_load_all(out) if d]
    (istiod,) = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == "istiod"]
    env = {
        e["name"]: e.get("value")
        for e in istiod["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["PILOT_JWT_ENABLE_REMOTE_JWKS"] == "hybrid"
    (gateway,) = [
        d for d in of_kind(docs, "Service") if d["metadata"]["name"] == "istio-ingressgateway"
    ]
    node_ports = {p["port"]: p.get("nodePort") for p in gateway["spec"]["ports"]}
    kind = yaml.safe_load((REPO / "kind-cluster.yaml").read_text())
    (mapping,) = kind["nodes"][0]["extraPortMappings"]
    assert gateway["spec"]["type"] == "NodePort" and node_ports[80] == mapping["containerPort"]
    assert mapping["hostPort"] == 8080  # the same URL as local mode's ingress
    assert not of_kind(docs, "Deployment") or all(
        d["metadata"]["name"] != "istio-egressgateway" for d in of_kind(docs, "Deployment")
    )
    mesh = yaml.safe_load(
        next(d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"] == "istio")["data"][
            "mesh"
        ]
    )
    assert mesh["defaultProviders"]["tracing"] == ["zipkin"]
    zipkin = next(p for p in mesh["extensionProviders"] if p["name"] == "zipkin")["zipkin"]
    assert zipkin["service"].startswith("zipkin.istio-system.")


def test_tracing_samples_every_request(rendered: list[dict[str, Any]]) -> None:
    (telemetry,) = of_kind(rendered, "Telemetry")
    assert telemetry["metadata"]["namespace"] == "istio-system"  # root namespace: mesh-wide
    (tracing,) = telemetry["spec"]["tracing"]
    assert tracing == {"providers": [{"name": "zipkin"}], "randomSamplingPercentage": 100}


def test_addons_are_istios_own_at_the_pinned_commit() -> None:
    """k8s/components/addons/upstream/ are unmodified copies from the istio.io/istio module
    that tools/istioctl/go.mod pins: bumping istioctl without them fails here."""
    go_mod = (REPO / "tools" / "istioctl" / "go.mod").read_text()
    version = re.search(r"^require istio\.io/istio (\S+)", go_mod, re.MULTILINE)
    assert version
    module = CACHE_DIR / "go" / "mod" / f"istio.io/istio@{version.group(1)}" / "samples" / "addons"
    if not module.is_dir():
        pytest.skip(f"{module} not downloaded; run {'tools/istioctl/build.sh'}")
    upstream = K8S / "components" / "addons" / "upstream"
    sources = {
        "kiali.yaml": "kiali.yaml",
        "prometheus.yaml": "prometheus.yaml",
        "zipkin.yaml": "extras/zipkin.yaml",
    }
    assert sorted(p.name for p in upstream.iterdir()) == sorted(sources)
    for name, source in sources.items():
        assert filecmp.cmp(upstream / name, module / source, shallow=False), name
