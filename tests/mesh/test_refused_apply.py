"""A refused `meshmart apply` changes nothing, and says which file, resource and field.

Refused by Envoy's validation before the swap, by a live Envoy after it (the rollback), or by
the translator: each time every proxy keeps its route versions and files, applied.yaml stays
as it was, and the next valid apply works. Each test puts the baseline routes back at the end
(the mesh is shared with other modules).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh.control.state import MeshState, apply_files, wait_applied
from mesh.envoy.process import route_versions
from mesh.istio.loader import IstioConfigError, parse_documents
from tests.mesh.conftest import Mesh

BASELINE = "istio/virtual-service-all-v1.yaml"
# A regex istio's validation (and the models) accept but Envoy refuses: valid RE2 of 375
# characters whose compiled program (34005) is over the 32768 pilot-agent allows.
ENVOY_ONLY_REGEX = "/" + "[a-z]{1000}" * 34


def _vs(http: str) -> str:
    return (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        "metadata: {name: order-service, namespace: meshmart}\n"
        f"spec:\n  hosts: [order-service]\n  http:\n{http}"
    )


def _regex_vs(regex: str) -> str:
    return _vs(
        f'  - match: [{{uri: {{regex: "{regex}"}}}}]\n'
        "    route: [{destination: {host: order-service, subset: v2}}]\n"
        "  - route: [{destination: {host: order-service, subset: v1}}]\n"
    )


def _envoy_only_vs() -> str:
    text = _regex_vs(ENVOY_ONLY_REGEX)
    parse_documents(Path("probe.yaml"), text)  # istio's checks let it through
    return text


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"refused-{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(text)
    return path


def _mesh_as_it_is(mesh: Mesh) -> tuple[dict[str, dict[str, str]], dict[str, bytes]]:
    """Every proxy's live route versions, and every file Envoy or `meshmart apply` reads."""
    state = MeshState(mesh.run_dir)
    live = {p.name: route_versions(p.admin_port) for p in state.topology().proxies}
    files = {
        str(p.relative_to(state.root)): p.read_bytes()
        for p in sorted(state.root.rglob("*.yaml")) + sorted(state.root.glob("*.json"))
        if "bootstrap" not in p.name
    }
    return live, files


@pytest.fixture
def baseline_after(mesh: Mesh) -> Iterator[None]:
    yield
    restored = mesh.meshmart("apply", "-f", BASELINE)
    assert restored.returncode == 0, restored.stderr


def _a_valid_apply_works(mesh: Mesh) -> None:
    applied = mesh.meshmart("apply", "-f", "istio/virtual-service-order-90-10.yaml")
    assert applied.returncode == 0, applied.stderr
    assert "updated live" in applied.stdout


def test_config_envoy_refuses_is_never_written(
    mesh: Mesh, tmp_path: Path, baseline_after: None
) -> None:
    bad = _write(tmp_path, _envoy_only_vs())
    before = _mesh_as_it_is(mesh)
    refused = mesh.meshmart("apply", "-f", str(bad))
    assert refused.returncode == 1, refused.stdout
    message = refused.stderr.strip()
    assert message.startswith(
        f"meshmart apply: error: {bad}: VirtualService meshmart/order-service: Envoy refused"
    ), message
    assert "user-service-v1-0" in message  # a proxy whose routes it would change ...
    assert "program size" in message  # ... and Envoy's reason
    assert _mesh_as_it_is(mesh) == before
    _a_valid_apply_works(mesh)


def test_a_live_rejection_puts_every_proxy_back(
    mesh: Mesh, tmp_path: Path, baseline_after: None
) -> None:
    """Past Envoy's validation (skipped here), a proxy that rejects its files is rolled back."""
    state = MeshState(mesh.run_dir)
    bad = _write(tmp_path, _envoy_only_vs())
    before = _mesh_as_it_is(mesh)
    pending = apply_files(state, [bad], envoy_check=False)
    assert _mesh_as_it_is(mesh)[1] != before[1]  # the files were swapped
    with pytest.raises(IstioConfigError) as refused:
        wait_applied(state, pending)
    message = str(refused.value)
    assert message.startswith(f"{bad}: VirtualService meshmart/order-service: ")
    assert " rejected the new config (" in message
    assert ".update_rejected" in message  # the counter Envoy raised, then what it logged
    assert message.endswith("every proxy is back on its previous config and nothing was applied")
    assert _mesh_as_it_is(mesh) == before
    _a_valid_apply_works(mesh)


def test_a_translator_refusal_names_the_file(
    mesh: Mesh, tmp_path: Path, baseline_after: None
) -> None:
    bad = _write(tmp_path, _vs("  - route: [{destination: {host: order-service, subset: v9}}]\n"))
    before = _mesh_as_it_is(mesh)
    refused = mesh.meshmart("apply", "-f", str(bad))
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f"meshmart apply: error: {bad}: VirtualService meshmart/order-service: "
        "spec.http[0].route[0].destination.subset: no DestinationRule"
    ), refused.stderr
    assert _mesh_as_it_is(mesh) == before
