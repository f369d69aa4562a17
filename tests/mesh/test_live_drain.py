"""`meshmart apply` reaches connections that are already open, not only new ones.

Envoy keeps serving an open connection with the listener config it was accepted under. With
pilot-agent's drain flags (mesh/envoy/process.py) an updated listener tells its open
connections to close on their next response, so a caller sees at most one more answer under
the old config. Each test holds one client connection and records the local port of every
answer, so "the same connection" is certain.
"""

from __future__ import annotations

import http.client
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mesh.control.state import MeshState
from mesh.envoy.process import lds_version
from mesh.runtime.polling import wait_until
from tests.mesh.conftest import Mesh

WORKLOAD = "catalog-service-v1-0"
CALLS_AFTER_APPLY = 6
# A selector no workload has: the policy stays applied but changes no proxy's config, so
# the mesh is back to its baseline (meshmart apply cannot delete a resource).
NOBODY = "live-drain-selects-no-workload"

Answer = tuple[int, int | None]  # (local port the request went out on, status or None)


def _host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def _ask(conn: http.client.HTTPConnection) -> Answer:
    """GET /catalogs; None when the sidecar closes or refuses the connection instead."""
    try:
        conn.request("GET", "/catalogs", headers={"Host": "catalog-service"})
    except OSError:
        conn.close()
        raise
    assert conn.sock is not None
    port: int = conn.sock.getsockname()[1]
    try:
        resp = conn.getresponse()
        resp.read()
    except (http.client.HTTPException, OSError):
        conn.close()  # the next request opens a new connection
        return port, None
    return port, resp.status


def _apply(mesh: Mesh, tmp_path: Path, document: str) -> None:
    """Apply `document` and wait until the workload's Envoy serves the new listener."""
    path = tmp_path / f"{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(document)
    applied = mesh.meshmart("apply", "-f", str(path))
    assert applied.returncode == 0, applied.stderr
    # `apply` waits for route versions; the inbound listener (RBAC, mTLS) is in lds.yaml.
    state = MeshState(mesh.run_dir)
    lds = yaml.safe_load((state.paths.proxy_dir(WORKLOAD) / "lds.yaml").read_text())
    wanted: str = lds["version_info"]
    admin_port = int(mesh.workload(WORKLOAD)["sidecar_admin_url"].rsplit(":", 1)[1])

    def taken() -> bool:
        return lds_version(admin_port) == wanted

    assert wait_until(taken, 30), "the sidecar never took the new listener"


def _deny_catalogs(selector: str) -> str:
    return f"""\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: live-drain-deny, namespace: meshmart}}
spec:
  selector: {{matchLabels: {{app: {selector}}}}}
  action: DENY
  rules:
    - to: [{{operation: {{paths: [/catalogs]}}}}]
"""


def _peer_authentication(selector: str, mode: str) -> str:
    return f"""\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: live-drain-mtls, namespace: meshmart}}
spec:
  selector: {{matchLabels: {{app: {selector}}}}}
  mtls: {{mode: {mode}}}
"""


@pytest.fixture
def as_order_service(mesh: Mesh) -> Iterator[http.client.HTTPSConnection]:
    """One mTLS connection to catalog-service's sidecar with order-service's identity."""
    certs = MeshState(mesh.run_dir).certs
    context = ssl.create_default_context(cafile=str(certs.root))
    context.check_hostname = False  # SPIFFE URI SANs, no DNS names
    context.load_cert_chain(
        certs.directory / "order-service.cert.pem", certs.directory / "order-service.key.pem"
    )
    host, port = _host_port(mesh.workload(WORKLOAD)["sidecar_inbound"])
    conn = http.client.HTTPSConnection(host, port, timeout=10, context=context)
    yield conn
    conn.close()


def test_a_live_deny_reaches_an_open_keep_alive_connection(
    mesh: Mesh, tmp_path: Path, as_order_service: http.client.HTTPSConnection
) -> None:
    conn = as_order_service
    before = [_ask(conn), _ask(conn)]
    old_port = before[0][0]
    assert before == [(old_port, 200)] * 2, "order-service may call catalog-service (keep-alive)"
    try:
        _apply(mesh, tmp_path, _deny_catalogs("catalog-service"))
        denied = [_ask(conn) for _ in range(CALLS_AFTER_APPLY)]
        # At most one stale answer, on the old connection; then the new policy.
        stale = [a for a in denied if a[1] != 403]
        assert stale in ([], [(old_port, 200)]) and denied[: len(stale)] == stale, denied
        assert [s for _, s in denied[len(stale) :]] == [403] * (CALLS_AFTER_APPLY - len(stale))
        assert all(port != old_port for port, _ in denied[len(stale) :]), denied

        open_port = denied[-1][0]
        _apply(mesh, tmp_path, _deny_catalogs(NOBODY))
        lifted = [_ask(conn) for _ in range(CALLS_AFTER_APPLY)]
        stale = [a for a in lifted if a[1] != 200]
        assert stale in ([], [(open_port, 403)]) and lifted[: len(stale)] == stale, lifted
        assert [s for _, s in lifted[len(stale) :]] == [200] * (CALLS_AFTER_APPLY - len(stale))
    finally:
        _apply(mesh, tmp_path, _deny_catalogs(NOBODY))


def test_a_live_switch_to_strict_mtls_closes_an_open_plaintext_connection(
    mesh: Mesh, tmp_path: Path
) -> None:
    host, port = _host_port(mesh.workload(WORKLOAD)["sidecar_inbound"])
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        _apply(mesh, tmp_path, _peer_authentication("catalog-service", "PERMISSIVE"))
        # Served over plaintext (403: a plaintext caller has no principal to authorize).
        before = [_ask(conn), _ask(conn)]
        old_port = before[0][0]
        assert before == [(old_port, 403)] * 2, "PERMISSIVE takes plaintext (keep-alive)"

        _apply(mesh, tmp_path, _peer_authentication("catalog-service", "STRICT"))
        after = [_ask(conn) for _ in range(CALLS_AFTER_APPLY)]
        answered = [a for a in after if a[1] is not None]
        assert answered in ([], [(old_port, 403)]) and after[: len(answered)] == answered, after
        assert all(status is None for _, status in after[len(answered) :]), after
    finally:
        conn.close()
        # No workload selected: catalog-service is back under the namespace's STRICT policy.
        _apply(mesh, tmp_path, _peer_authentication(NOBODY, "STRICT"))
