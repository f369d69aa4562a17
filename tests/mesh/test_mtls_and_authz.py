"""mTLS on every sidecar's inbound port, identities the apps can see, and authorization."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp
import pytest

from mesh.control.ca import LocalCA
from tests.mesh.conftest import Mesh
from tests.support.shoppers import Customer
from tests.support.waiting import eventually


def _host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


async def _http_status_over(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"GET /catalogs HTTP/1.1\r\nHost: catalog-service\r\nConnection: close\r\n\r\n")
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(200), 5)
    finally:
        writer.close()


async def test_plaintext_client_is_refused_by_a_sidecar(mesh: Mesh) -> None:
    host, port = _host_port(mesh.workload("catalog-service-v1-0")["sidecar_inbound"])
    reader, writer = await asyncio.open_connection(host, port)
    answer = await _http_status_over(reader, writer)
    assert not answer.startswith(b"HTTP/"), answer  # STRICT: no TLS, no HTTP


async def test_certificate_from_another_ca_is_refused(mesh: Mesh, tmp_path: Path) -> None:
    rogue = LocalCA.load_or_create(tmp_path / "rogue-ca")
    # The right identity, from an untrusted CA: Istio's "fail_verify_error".
    cert = rogue.issue_workload("meshmart", "order-service", tmp_path / "certs")
    context = ssl.create_default_context(cafile=str(mesh.run_dir / "mesh" / "ca" / "root-cert.pem"))
    context.check_hostname = False
    context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    host, port = _host_port(mesh.workload("catalog-service-v1-0")["sidecar_inbound"])
    with pytest.raises(
        (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError, AssertionError)
    ):
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
        answer = await _http_status_over(reader, writer)
        assert answer.startswith(b"HTTP/"), "refused after the handshake"
        raise AssertionError(f"a foreign certificate got an answer: {answer[:40]!r}")


async def test_app_sees_the_callers_spiffe_id(
    mesh: Mesh, http: aiohttp.ClientSession, customer: Customer
) -> None:
    headers = {"Authorization": f"Bearer {customer.token}"}
    async with http.get(f"{mesh.ingress}/user-service/users/{customer.user_id}", headers=headers):
        pass
    log = mesh.run_dir / "logs" / "order-service-v1-0.log"
    expected = '"caller": "spiffe://cluster.local/ns/meshmart/sa/user-service"'

    async def logged() -> bool:
        return any(expected in line for line in log.read_text().splitlines())

    await eventually(logged, 10)


async def test_a_workload_not_allowed_by_policy_gets_403(
    mesh: Mesh, http: aiohttp.ClientSession
) -> None:
    """catalog-service may not call user-service (only the ingress may): RBAC says 403."""
    catalog = mesh.workload("catalog-service-v1-0")
    to_user = catalog["outbound"]["user-service.meshmart.svc.cluster.local"]
    async with http.get(f"http://{to_user}/users") as resp:
        assert resp.status == 403
        assert "RBAC" in await resp.text()
    # ...while order-service may call catalog-service, through the very same mechanism.
    order = mesh.workload("order-service-v1-0")
    to_catalog = order["outbound"]["catalog-service.meshmart.svc.cluster.local"]
    async with http.get(f"http://{to_catalog}/catalogs") as resp:
        assert resp.status == 200


def test_status_and_logs_commands(mesh: Mesh) -> None:
    status = mesh.meshmart("status", "--json")
    assert status.returncode == 0, status.stderr
    assert '"ingress_url"' in status.stdout
    table = mesh.meshmart("status")
    assert "order-service-v2-0" in table.stdout and "(DOWN)" not in table.stdout
    console = mesh.state["console"]
    assert f"console: {console['url']}, pid {console['pid']}" in table.stdout
    logs = mesh.meshmart("logs", "order")
    assert logs.returncode == 0 and "order-service-v1-0.log" in logs.stdout
