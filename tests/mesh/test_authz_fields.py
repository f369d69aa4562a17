"""AuthorizationPolicy `when`, `istio.io/dry-run` and `action: AUDIT` on the real local mesh
(tests/conformance proves the RBAC filters equal istiod's; this proves what Envoy then does)."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from mesh.envoy.process import stats
from tests.mesh.conftest import Mesh
from tests.support.waiting import eventually

NOBODY = "authz-fields-selects-no-workload"


def _policy(
    name: str, spec: str, selector: str = "catalog-service", annotations: str = "{}"
) -> str:
    return (
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        f"metadata: {{name: {name}, namespace: meshmart, annotations: {annotations}}}\n"
        f"spec:\n  selector: {{matchLabels: {{app: {selector}}}}}\n{spec}"
    )


def _apply(mesh: Mesh, tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    applied = mesh.meshmart("apply", "-f", str(path))
    assert applied.returncode == 0, applied.stderr


DEBUG_DENIED = (
    "  action: DENY\n  rules:\n  - when: [{key: 'request.headers[x-debug]', values: ['on']}]\n"
)


async def _catalogs(mesh: Mesh, http: aiohttp.ClientSession, **headers: str) -> int:
    async with http.get(f"{mesh.ingress}/catalog-service/catalogs", headers=headers) as resp:
        return resp.status


# The ingress keeps connections to the catalog sidecar open across an apply; each may answer
# one more request under the old config (pilot-agent's drain, tests/mesh/test_live_drain.py).
STALE = 3


async def _settles_on(mesh: Mesh, http: aiohttp.ClientSession, status: int, **headers: str) -> None:
    answers = [await _catalogs(mesh, http, **headers) for _ in range(STALE)]
    assert answers[-1] == status and answers.count(status) >= 1, answers


def _rbac_counters(mesh: Mesh) -> dict[str, int]:
    """catalog-service's sidecar's RBAC counters (http.<hcm>.rbac.[<prefix>.]<counter>)."""
    port = int(mesh.workload("catalog-service-v1-0")["sidecar_admin_url"].rsplit(":", 1)[1])
    return stats(port, r"\.rbac\.")


def _rbac_counter(mesh: Mesh, counter: str) -> int:
    return sum(v for k, v in _rbac_counters(mesh).items() if re.search(counter, k))


async def test_a_when_condition_denies_only_the_requests_it_matches(
    mesh: Mesh, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    _apply(mesh, tmp_path, "when.yaml", _policy("deny-debug", DEBUG_DENIED))
    try:
        await _settles_on(mesh, http, 403, **{"x-debug": "on"})
        assert await _catalogs(mesh, http, **{"x-debug": "off"}) == 200
        assert await _catalogs(mesh, http) == 200
        assert await _catalogs(mesh, http, **{"x-debug": "on"}) == 403
    finally:
        _apply(mesh, tmp_path, "lift.yaml", _policy("deny-debug", DEBUG_DENIED, NOBODY))
    await _settles_on(mesh, http, 200, **{"x-debug": "on"})


async def test_a_dry_run_deny_is_counted_and_not_enforced(
    mesh: Mesh, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    dry = "{istio.io/dry-run: 'true'}"
    _apply(mesh, tmp_path, "dry.yaml", _policy("dry-deny", DEBUG_DENIED, annotations=dry))
    try:
        before = _rbac_counter(mesh, r"\.istio_dry_run_deny_\.?shadow_denied$")
        for _ in range(STALE):  # shadowed: counted as denied, answered all the same
            assert await _catalogs(mesh, http, **{"x-debug": "on"}) == 200

        async def counted() -> bool:  # stats are flushed every second
            return _rbac_counter(mesh, r"\.istio_dry_run_deny_\.?shadow_denied$") > before

        await eventually(counted, timeout=10)
    finally:
        _apply(mesh, tmp_path, "undry.yaml", _policy("dry-deny", DEBUG_DENIED, NOBODY, dry))


async def test_an_audit_policy_changes_no_answer(
    mesh: Mesh, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """AUDIT is Envoy's LOG action: it marks matching requests for the access log and
    decides nothing, so what was allowed stays allowed and what was denied stays denied."""
    audit = "  action: AUDIT\n  rules: [{to: [{operation: {methods: [GET]}}]}]\n"
    _apply(mesh, tmp_path, "audit.yaml", _policy("audit-gets", audit)
           + "---\n" + _policy("deny-debug", DEBUG_DENIED))  # fmt: skip
    try:
        await _settles_on(mesh, http, 403, **{"x-debug": "on"})
        assert await _catalogs(mesh, http) == 200
    finally:
        _apply(mesh, tmp_path, "unaudit.yaml", _policy("audit-gets", audit, NOBODY)
               + "---\n" + _policy("deny-debug", DEBUG_DENIED, NOBODY))  # fmt: skip
    await _settles_on(mesh, http, 200, **{"x-debug": "on"})
