from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from jwt import PyJWKSet

from services.user.app import create_app as create_user
from services.user.settings import UserSettings
from tests.integration.conftest import Client, _serve, signup, unique_email
from tests.support.identity import as_user
from tests.support.waiting import eventually


async def test_signup_returns_public_fields_only(user: Client) -> None:
    email = unique_email()
    body = await signup(user, email)
    assert set(body) == {"email", "name", "userId"} and body["email"] == email


async def test_duplicate_email_is_409_whatever_the_case(user: Client) -> None:
    email = unique_email()
    await signup(user, email)
    resp = await user.post("/users", json={"email": email.upper(), "name": "Bo", "pwd": "12345678"})
    assert resp.status == 409
    assert (await resp.json(content_type=None))["errors"][0]["field"] == "email"


async def test_signup_validation_names_fields(user: Client) -> None:
    resp = await user.post("/users", json={"email": "x", "name": "A", "pwd": "1234567"})
    assert resp.status == 400
    errors = (await resp.json(content_type=None))["errors"]
    assert {e["field"] for e in errors} == {"email", "name", "pwd"}


async def test_login_issues_token_in_body_and_headers(user: Client) -> None:
    email = unique_email()
    created = await signup(user, email, pwd="s3cret-pass")
    resp = await user.post("/login", json={"email": email, "password": "s3cret-pass"})
    assert resp.status == 200
    body = await resp.json()
    assert body["userId"] == created["userId"] == resp.headers["userId"]
    assert body["token"] == resp.headers["token"] and body["expiresAt"]
    jwks = await (await user.get("/.well-known/jwks.json")).json()
    kid = jwt.get_unverified_header(body["token"])["kid"]
    key = PyJWKSet.from_dict(jwks)[kid]
    claims = jwt.decode(
        body["token"], key.key, algorithms=["ES256"], issuer="meshmart-user-service"
    )
    assert claims["sub"] == created["userId"] and {"exp", "iat"} <= set(claims)


@pytest.mark.parametrize("which", ["wrong-password", "unknown-email"])
async def test_login_failures_are_one_generic_401(user: Client, which: str) -> None:
    email = unique_email()
    await signup(user, email, pwd="right-password")
    attempt = {
        "wrong-password": {"email": email, "password": "wrong-password"},
        "unknown-email": {"email": unique_email(), "password": "right-password"},
    }[which]
    resp = await user.post("/login", json=attempt)
    assert resp.status == 401
    assert (await resp.json(content_type=None))["detail"] == "invalid email or password"
    assert "token" not in resp.headers


async def test_list_and_get_user_with_orders(user: Client, order: Client) -> None:
    created = await signup(user)
    user_id = created["userId"]
    resp = await order.post(
        f"/{user_id}/orders",
        json={"productId": "CATALOG-002", "qty": 2, "unitPrice": 1000},
        headers=as_user(user_id),
    )
    assert resp.status == 201
    listed = await (await user.get("/users", headers=as_user(user_id))).json()
    assert created in listed
    detail = await (await user.get(f"/users/{user_id}", headers=as_user(user_id))).json()
    assert detail["ordersAvailable"] is True
    assert [o["productId"] for o in detail["orders"]] == ["CATALOG-002"]


@pytest.mark.parametrize("user_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
async def test_unknown_user_is_404(user: Client, user_id: str) -> None:
    assert (await user.get(f"/users/{user_id}", headers=as_user(user_id))).status == 404


async def test_a_user_is_readable_only_by_itself(user: Client) -> None:
    me, other = (await signup(user))["userId"], (await signup(user))["userId"]
    assert (await user.get(f"/users/{other}", headers=as_user(me))).status == 403
    assert (await user.get(f"/users/{other}")).status == 401
    assert (await user.get("/users")).status == 401  # the list needs a verified user too
    assert (await user.get(f"/users/{me}", headers=as_user(me))).status == 200


@pytest.fixture
async def user_without_orders(
    make_user_settings: Callable[..., UserSettings], unused_tcp_port: int
) -> AsyncIterator[Client]:
    """user-service whose order-service is down (nothing listens on its port)."""
    settings = make_user_settings(order_service_url=f"http://127.0.0.1:{unused_tcp_port}")
    async for client in _serve(create_user(settings)):
        yield client


async def test_order_service_down_gives_degraded_200(user_without_orders: Client) -> None:
    created = await signup(user_without_orders)
    resp = await user_without_orders.get(
        f"/users/{created['userId']}", headers=as_user(created["userId"])
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["orders"] == [] and body["ordersAvailable"] is False
    assert body["userId"] == created["userId"]


@pytest.fixture
async def user_with_slow_orders(
    make_user_settings: Callable[..., UserSettings],
) -> AsyncIterator[tuple[Client, list[dict[str, str]]]]:
    """user-service whose order-service hangs for 10 s; records the headers it was sent."""
    seen: list[dict[str, str]] = []

    async def hang(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        await asyncio.sleep(10)
        return web.json_response([])

    slow = web.Application()
    slow.router.add_get("/{userId}/orders", hang)
    async with TestServer(slow) as server:
        settings = make_user_settings(
            order_service_url=str(server.make_url("")), orders_timeout_seconds=0.5
        )
        async for client in _serve(create_user(settings)):
            yield client, seen


async def test_slow_order_service_is_bounded_and_trace_headers_forwarded(
    user_with_slow_orders: tuple[Client, list[dict[str, str]]],
) -> None:
    client, seen = user_with_slow_orders
    created = await signup(client)
    headers = {
        "x-request-id": "req-abc",
        "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
        "x-b3-spanid": "e457b5a2e4d86bd1",
        "x-b3-sampled": "1",
        "authorization": "Bearer the-callers-token",
        **as_user(created["userId"]),
    }
    started = time.monotonic()
    resp = await client.get(f"/users/{created['userId']}", headers=headers)
    elapsed = time.monotonic() - started
    assert resp.status == 200 and (await resp.json())["ordersAvailable"] is False
    assert elapsed < 2.0, f"took {elapsed:.2f}s with a 0.5s orders timeout"
    assert len(seen) == 1  # exactly one attempt: no retry in the app
    forwarded = {k.lower(): v for k, v in seen[0].items()}
    assert forwarded["x-request-id"] == "req-abc"
    assert forwarded["x-b3-traceid"] == "80f198ee56343ba864fe8b2a57d3eff7"
    # The caller's identity goes along, for order-service's own owner check.
    assert forwarded["authorization"] == "Bearer the-callers-token"
    assert forwarded["x-jwt-payload"] == as_user(created["userId"])["x-jwt-payload"]


async def test_welcome_follows_the_live_config_file(user: Client, live_config_file) -> None:  # type: ignore[no-untyped-def]
    assert (await (await user.get("/welcome")).json())["message"] == "Hello from the first config"
    # Replace the file the way a ConfigMap update does: a new file renamed over the old one.
    staging = live_config_file.with_suffix(".tmp")
    staging.write_text("greeting: Hello after a live refresh\n")
    staging.rename(live_config_file)

    async def refreshed() -> bool:
        message = (await (await user.get("/welcome")).json())["message"]
        return bool(message == "Hello after a live refresh")

    await eventually(refreshed, timeout=5)


async def test_health_check_and_readiness_leak_no_secrets(
    user: Client, make_user_settings: Callable[..., UserSettings]
) -> None:
    settings = make_user_settings()
    secrets = [
        settings.database_url.get_secret_value().split("@")[0].rsplit(":", 1)[1],
        settings.signing_key_pem().decode().splitlines()[1],
    ]
    for path in ("/health_check", "/health/ready", "/health/live", "/openapi.json"):
        resp = await user.get(path)
        assert resp.status == 200, path
        text = await resp.text()
        for secret in secrets:
            assert secret not in text, path
    assert (await (await user.get("/health/ready")).json())["checks"] == {"database": "UP"}
