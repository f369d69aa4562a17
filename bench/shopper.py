"""A customer of the benchmark shop: signed up and logged in through the ingress."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from services.common.principal import PAYLOAD_HEADER, encode_payload

ISSUER = "meshmart-user-service"


@dataclass(frozen=True)
class Customer:
    user_id: str
    token: str

    @property
    def bearer(self) -> str:
        return f"Authorization: Bearer {self.token}"

    @property
    def verified_payload(self) -> str:
        """The header a sidecar sets after verifying the token (for calls to the app itself)."""
        claims: dict[str, object] = {"iss": ISSUER, "sub": self.user_id}
        return f"{PAYLOAD_HEADER}: {encode_payload(claims)}"


async def _sign_up(ingress: str) -> Customer:
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    password = "bench-password-1"  # noqa: S105 - a throwaway account of the benchmark shop
    async with aiohttp.ClientSession() as http:
        body = {"email": email, "name": "Bench", "pwd": password}
        async with http.post(f"{ingress}/user-service/users", json=body) as resp:
            resp.raise_for_status()
        login = {"email": email, "password": password}
        async with http.post(f"{ingress}/user-service/login", json=login) as resp:
            resp.raise_for_status()
            answer: dict[str, Any] = await resp.json()
    return Customer(answer["userId"], answer["token"])


def sign_up(ingress: str) -> Customer:
    return asyncio.run(_sign_up(ingress))


async def _catalog(ingress: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{ingress}/catalog-service/catalogs") as r,
    ):
        r.raise_for_status()
        items: list[dict[str, Any]] = await r.json()
        return items


def catalog(ingress: str) -> list[dict[str, Any]]:
    return asyncio.run(_catalog(ingress))
