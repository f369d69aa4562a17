"""The seed flow through the ingress Envoy, with JWT checked at the edge as Istio does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from services.user.tokens import generate_private_key_pem
from tests.mesh.conftest import Mesh
from tests.support.shoppers import Customer, sign_up_and_log_in
from tests.support.waiting import eventually


async def test_seed_flow_through_the_ingress(mesh: Mesh, http: aiohttp.ClientSession) -> None:
    me = await sign_up_and_log_in(http, mesh.ingress)
    async with http.get(f"{mesh.ingress}/catalog-service/catalogs") as resp:
        assert resp.status == 200
        berlin = next(p for p in await resp.json() if p["productId"] == "CATALOG-001")
    order = {"productId": "CATALOG-001", "qty": 1, "unitPrice": berlin["unitPrice"]}
    auth = {"Authorization": f"Bearer {me.token}"}
    url = f"{mesh.ingress}/order-service/{me.user_id}/orders"
    async with http.post(url, json=order, headers=auth) as resp:
        assert resp.status == 201, await resp.text()
        placed = await resp.json()

    async def confirmed_in_user_detail() -> bool:
        async with http.get(f"{mesh.ingress}/user-service/users/{me.user_id}", headers=auth) as r:
            assert r.status == 200, await r.text()
            detail = await r.json()
        return bool(
            detail["ordersAvailable"]
            and [o["orderId"] for o in detail["orders"]] == [placed["orderId"]]
            and detail["orders"][0]["status"] == "CONFIRMED"
        )

    await eventually(confirmed_in_user_detail, 30)


async def test_user_and_order_routes_need_a_token_but_signup_and_login_do_not(
    mesh: Mesh, http: aiohttp.ClientSession, customer: Customer
) -> None:
    # No token at all: the ingress ALLOW policy admits only public operations without one (403).
    async with http.get(f"{mesh.ingress}/user-service/users") as resp:
        assert resp.status == 403
    async with http.get(f"{mesh.ingress}/user-service/users/{customer.user_id}") as resp:
        assert resp.status == 403
    async with http.get(f"{mesh.ingress}/order-service/{customer.user_id}/orders") as resp:
        assert resp.status == 403
    ok = {"Authorization": f"Bearer {customer.token}"}
    async with http.get(f"{mesh.ingress}/user-service/users", headers=ok) as resp:
        assert resp.status == 200
    # Signup, login and the rest stay open (the customer fixture signed up and logged in).
    async with http.get(f"{mesh.ingress}/user-service/welcome") as resp:
        assert resp.status == 200


def _token(mesh: Mesh, subject: str, *, expired: bool, key_pem: bytes | None = None) -> str:
    key = load_pem_private_key(
        key_pem or (mesh.run_dir / "secrets" / "jwt-signing-key.pem").read_bytes(), password=None
    )
    now = datetime.now(UTC) - (timedelta(hours=2) if expired else timedelta(0))
    claims = {
        "sub": subject,
        "iss": "meshmart-user-service",
        "iat": now,
        "exp": now + timedelta(hours=1),
    }
    return jwt.encode(claims, key, algorithm="ES256")  # type: ignore[arg-type]


async def test_forged_and_expired_tokens_are_401(
    mesh: Mesh, http: aiohttp.ClientSession, customer: Customer
) -> None:
    forged = _token(mesh, customer.user_id, expired=False, key_pem=generate_private_key_pem())
    expired = _token(mesh, customer.user_id, expired=True)
    tampered = customer.token[:-4] + ("AAAA" if not customer.token.endswith("AAAA") else "BBBB")
    for token in (forged, expired, tampered, "not-a-jwt"):
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{mesh.ingress}/user-service/users", headers=headers) as resp:
            assert resp.status == 401, token
    fresh = _token(mesh, customer.user_id, expired=False)  # signed with the real key: accepted
    async with http.get(
        f"{mesh.ingress}/user-service/users", headers={"Authorization": f"Bearer {fresh}"}
    ) as resp:
        assert resp.status == 200
