"""Shoppers for a chaos run, on plain aiohttp: every request they make goes into the journal.

Each order has its own Idempotency-Key and is retried with that same key until it is
acknowledged, so the checker can prove a retry never orders twice. The client's timeout is
longer than any route timeout in the mesh: a request the mesh should have cut short shows up
as a long operation instead of being hidden by the client giving up first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from mesh.chaos.record import Journal, Operation, OperationKind, truncated

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=20)
MAX_ATTEMPTS = 5
RETRY_PAUSE_SECONDS = 0.5


class SignUpFailed(Exception):
    """The shopper could not get an account; the run cannot start without one."""


@dataclass(frozen=True)
class Account:
    user_id: str
    token: str

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Product:
    product_id: str
    unit_price: int
    stock: int


async def sign_up(session: aiohttp.ClientSession, ingress: str) -> Account:
    """POST /users, then POST /login, through the ingress (not journaled: this is setup)."""
    email = f"chaos-{uuid.uuid4().hex[:12]}@example.com"
    password = secrets.token_urlsafe(12)
    signup = {"email": email, "name": "Chaos Shopper", "pwd": password}
    async with session.post(
        f"{ingress}/user-service/users", json=signup, timeout=REQUEST_TIMEOUT
    ) as resp:
        if resp.status != 201:
            raise SignUpFailed(f"sign up: HTTP {resp.status}: {await resp.text()}")
    login = {"email": email, "password": password}
    async with session.post(
        f"{ingress}/user-service/login", json=login, timeout=REQUEST_TIMEOUT
    ) as resp:
        if resp.status != 200:
            raise SignUpFailed(f"log in: HTTP {resp.status}: {await resp.text()}")
        answer = await resp.json()
    return Account(user_id=str(answer["userId"]), token=str(answer["token"]))


async def catalog_products(session: aiohttp.ClientSession, ingress: str) -> list[Product]:
    """The products that still have stock, with the price an order must state."""
    async with session.get(f"{ingress}/catalog-service/catalogs", timeout=REQUEST_TIMEOUT) as resp:
        resp.raise_for_status()
        rows: list[dict[str, Any]] = await resp.json()
    products = [Product(str(r["productId"]), int(r["unitPrice"]), int(r["stock"])) for r in rows]
    return [p for p in products if p.stock > 0]


async def shop(
    session: aiohttp.ClientSession,
    ingress: str,
    account: Account,
    products: Sequence[Product],
    journal: Journal,
    stop: asyncio.Event,
    *,
    pace: float,
    quantity: int = 1,
    max_attempts: int = MAX_ATTEMPTS,
    retry_pause: float = RETRY_PAUSE_SECONDS,
) -> None:
    """Until `stop`: place an order (retrying its key), read the user, read the orders;
    then wait `pace` seconds."""
    shopper = _Shopper(session, ingress, account, journal)
    while not stop.is_set():
        product = random.choice(products)  # noqa: S311 - a shopper's whim, not a secret
        await shopper.place_order(product, quantity, stop, max_attempts, retry_pause)
        await shopper.read_user()
        await shopper.read_orders()
        await _sleep_unless(stop, pace)


class _Shopper:
    def __init__(
        self, session: aiohttp.ClientSession, ingress: str, account: Account, journal: Journal
    ) -> None:
        self.session, self.ingress, self.account, self.journal = session, ingress, account, journal

    async def place_order(
        self,
        product: Product,
        quantity: int,
        stop: asyncio.Event,
        max_attempts: int,
        retry_pause: float,
    ) -> None:
        """One order, tried with the same key until acknowledged or out of attempts."""
        key = str(uuid.uuid4())
        body = {"productId": product.product_id, "qty": quantity, "unitPrice": product.unit_price}
        headers = {**self.account.auth(), "Idempotency-Key": key}
        url = f"{self.ingress}/order-service/{self.account.user_id}/orders"
        for attempt in range(1, max_attempts + 1):
            op = await self._request("place_order", "POST", url, headers, body)
            op = replace(
                op,
                idempotency_key=key,
                product_id=product.product_id,
                quantity=quantity,
                attempt=attempt,
            )
            self.journal.add(op)
            if op.status is not None and 200 <= op.status < 300:
                return
            if stop.is_set():
                return
            await asyncio.sleep(retry_pause)

    async def read_user(self) -> None:
        url = f"{self.ingress}/user-service/users/{self.account.user_id}"
        op = await self._request("read_user", "GET", url, self.account.auth())
        self.journal.add(op)

    async def read_orders(self) -> None:
        url = f"{self.ingress}/order-service/{self.account.user_id}/orders"
        self.journal.add(await self._request("read_orders", "GET", url, self.account.auth()))

    async def _request(
        self,
        kind: OperationKind,
        method: str,
        url: str,
        headers: dict[str, str],
        body: dict[str, Any] | None = None,
    ) -> Operation:
        started = time.monotonic()
        try:
            async with self.session.request(
                method, url, json=body, headers=headers, timeout=REQUEST_TIMEOUT
            ) as resp:
                text = await resp.text(errors="replace")
                status, content_type = resp.status, resp.content_type
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Operation(
                kind, started, time.monotonic(), None,
                error=f"{type(exc).__name__}: {exc}", user_id=self.account.user_id,
            )  # fmt: skip
        return Operation(
            kind,
            started,
            time.monotonic(),
            status,
            content_type=content_type,
            body=truncated(text),
            user_id=self.account.user_id,
            order_id=_text_field(text, "orderId") if status == 201 else None,
            orders_available=_orders_available(text) if kind == "read_user" else None,
        )


def _parsed(text: str) -> Any:
    with contextlib.suppress(ValueError):
        return json.loads(text)
    return None


def _text_field(text: str, name: str) -> str | None:
    parsed = _parsed(text)
    value = parsed.get(name) if isinstance(parsed, dict) else None
    return str(value) if value is not None else None


def _orders_available(text: str) -> bool | None:
    parsed = _parsed(text)
    value = parsed.get("ordersAvailable") if isinstance(parsed, dict) else None
    return value if isinstance(value, bool) else None


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
