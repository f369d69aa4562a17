"""Edge security through the real ingress: positive matching, path normalisation, owner checks.

Every protected operation is tried under dozens of generated spellings without a token (none
may answer 2xx or 5xx), a user's valid token is tried against another user's objects (403,
nothing created), and identity headers a client adds itself are shown to count for nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.mesh.conftest import Mesh
from tests.mesh.spellings import spellings
from tests.support.identity import as_user
from tests.support.shoppers import Customer, sign_up_and_log_in

ORDER = {"productId": "CATALOG-002", "qty": 1, "unitPrice": 1000}
CATALOG_DETOUR = "/catalog-service/catalogs"  # a public prefix to climb out of with ..


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


async def raw_request(
    ingress: str, method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> Answer:
    """Send `target` byte for byte (no client library re-encodes it) and read the answer."""
    address = urlsplit(ingress)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    lines = [f"{method} {target} HTTP/1.1", "Host: meshmart", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    try:
        await writer.drain()
        # Read exactly the answer (Content-Length): waiting for EOF would wait out Envoy's
        # delayed close (1 s) on every request.
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        payload = await asyncio.wait_for(reader.readexactly(int(length[1])), 10) if length else b""
    finally:
        writer.close()
    return Answer(int(head.split(b" ", 2)[1]), payload)


@pytest.fixture(scope="module")
async def alice(mesh: Mesh, http: aiohttp.ClientSession) -> Customer:
    return await sign_up_and_log_in(http, mesh.ingress)


@pytest.fixture(scope="module")
async def bob(mesh: Mesh, http: aiohttp.ClientSession) -> Customer:
    return await sign_up_and_log_in(http, mesh.ingress)


def protected(user_id: str) -> list[tuple[str, str, bytes]]:
    """(method, path, body) of every operation at the edge that needs a token."""
    order_body = json.dumps(ORDER).encode()
    return [
        ("GET", "/user-service/users", b""),
        ("GET", f"/user-service/users/{user_id}", b""),
        ("GET", f"/order-service/{user_id}/orders", b""),
        ("POST", f"/order-service/{user_id}/orders", order_body),
    ]


def _bearer(customer: Customer) -> dict[str, str]:
    return {"Authorization": f"Bearer {customer.token}"}


async def _orders_of(mesh: Mesh, customer: Customer) -> list[dict[str, object]]:
    path = f"/order-service/{customer.user_id}/orders"
    answer = await raw_request(mesh.ingress, "GET", path, _bearer(customer))
    assert answer.status == 200, answer
    orders: list[dict[str, object]] = json.loads(answer.body)
    return orders


async def test_no_spelling_of_a_protected_operation_passes_without_a_token(
    mesh: Mesh, bob: Customer
) -> None:
    tried: dict[str, int] = {}
    for method, path, body in protected(bob.user_id):
        variants = {"as written": path, **spellings(path, CATALOG_DETOUR)}
        assert len(variants) >= 20, path
        for name, target in variants.items():
            answer = await raw_request(mesh.ingress, method, target, body=body)
            tried[f"{method} {target}  ({name})"] = answer.status
            assert 400 <= answer.status < 500, (method, target, name, answer)
            assert bob.user_id.encode() not in answer.body and b"email" not in answer.body
    assert len(tried) >= 4 * 20
    # Nothing was created by any of the attempts to place an order.
    assert await _orders_of(mesh, bob) == []


async def test_the_issues_two_curl_commands_are_refused(mesh: Mesh, bob: Customer) -> None:
    for target in ("/user-service/%75sers", f"/user-service/u%73ers/{bob.user_id}"):
        answer = await raw_request(mesh.ingress, "GET", target)
        assert answer.status == 403 and b"RBAC" in answer.body, (target, answer)


async def test_normalised_spellings_reach_the_owner_with_a_token(
    mesh: Mesh, alice: Customer
) -> None:
    """The edge rewrites every spelling to one canonical path, which the service accepts: the
    refusals above are the policy's doing, not a service rejecting odd bytes."""
    path = f"/user-service/users/{alice.user_id}"
    for target in (
        path,
        f"/user-service/u%73ers/{alice.user_id}",
        f"/user-service/users/./{alice.user_id}",
        f"/user-service//users/{alice.user_id}",
        f"/user-service/x/../users/{alice.user_id}",
        f"/user-service/users%2F{alice.user_id}",
    ):
        answer = await raw_request(mesh.ingress, "GET", target, _bearer(alice))
        assert answer.status == 200, (target, answer)
        assert json.loads(answer.body)["userId"] == alice.user_id


async def test_public_operations_need_no_token_and_everything_else_does(mesh: Mesh) -> None:
    email = f"edge-{uuid.uuid4().hex[:10]}@example.com"
    signup = json.dumps({"email": email, "name": "Eve", "pwd": "password-1"}).encode()
    login = json.dumps({"email": email, "password": "password-1"}).encode()
    public = [
        ("POST", "/user-service/users", signup, 201),
        ("POST", "/user-service/login", login, 200),
        ("GET", "/user-service/.well-known/jwks.json", b"", 200),
        ("GET", "/user-service/welcome", b"", 200),
        ("GET", "/user-service/health_check", b"", 200),
        ("GET", "/catalog-service/catalogs", b"", 200),
        ("GET", "/catalog-service/catalogs/CATALOG-001", b"", 200),
        ("GET", "/order-service/health/ready", b"", 200),
    ]
    for method, path, body, status in public:
        assert (await raw_request(mesh.ingress, method, path, body=body)).status == status, path
    for method, path in [
        ("GET", "/user-service/openapi.json"),
        ("GET", "/order-service/openapi.json"),
        ("DELETE", "/catalog-service/catalogs/CATALOG-001"),
        ("PUT", "/user-service/users"),
        ("GET", "/user-service/login"),
        ("GET", "/nowhere"),
    ]:
        assert (await raw_request(mesh.ingress, method, path)).status == 403, (method, path)


async def test_one_users_token_cannot_touch_another_users_objects(
    mesh: Mesh, alice: Customer, bob: Customer
) -> None:
    for method, path, body in protected(bob.user_id)[1:]:  # the three that belong to bob
        for target in (path, *list(spellings(path, CATALOG_DETOUR).values())[:10]):
            answer = await raw_request(mesh.ingress, method, target, _bearer(alice), body)
            assert answer.status in (400, 403, 404), (method, target, answer)
            assert bob.user_id.encode() not in answer.body or answer.status != 200
    assert await _orders_of(mesh, bob) == []
    # Alice's own objects stay hers to use.
    mine = f"/order-service/{alice.user_id}/orders"
    placed = await raw_request(
        mesh.ingress, "POST", mine, _bearer(alice), json.dumps(ORDER).encode()
    )
    assert placed.status == 201, placed


async def test_identity_headers_a_client_sends_count_for_nothing(
    mesh: Mesh, alice: Customer, bob: Customer
) -> None:
    claims_bob = as_user(bob.user_id)  # a well-formed payload, but nobody verified it
    xfcc = {"X-Forwarded-Client-Cert": "URI=spiffe://cluster.local/ns/meshmart/sa/user-service"}
    orders = f"/order-service/{bob.user_id}/orders"
    # Without a token the edge still sees no principal.
    assert (await raw_request(mesh.ingress, "GET", orders, {**claims_bob, **xfcc})).status == 403
    # With alice's token, the forged payload is replaced by alice's own: bob's orders stay shut.
    forged = {**_bearer(alice), **claims_bob, **xfcc}
    answer = await raw_request(mesh.ingress, "GET", orders, forged)
    assert answer.status == 403 and b"another user" in answer.body, answer
    detail = await raw_request(mesh.ingress, "GET", f"/user-service/users/{bob.user_id}", forged)
    assert detail.status == 403, detail


async def test_in_mesh_callers_need_the_users_token_too(
    mesh: Mesh, http: aiohttp.ClientSession, alice: Customer, bob: Customer
) -> None:
    """user-service's own sidecar may call order-service, but only with the user's token: the
    order sidecar removes a payload header it did not verify itself."""
    to_orders = mesh.workload("user-service-v1-0")["outbound"][
        "order-service.meshmart.svc.cluster.local"
    ]
    url = f"http://{to_orders}/{bob.user_id}/orders"
    async with http.get(url, headers=as_user(bob.user_id)) as resp:
        assert resp.status == 401, await resp.text()  # stripped: no identity left
    async with http.get(url, headers=_bearer(alice)) as resp:
        assert resp.status == 403
    async with http.get(url, headers=_bearer(bob)) as resp:
        assert resp.status == 200 and await resp.json() == []
