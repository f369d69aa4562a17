"""A customer of the shop, signed up and logged in through the ingress."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import aiohttp


@dataclass
class Customer:
    user_id: str
    token: str
    email: str


async def sign_up_and_log_in(http: aiohttp.ClientSession, ingress: str) -> Customer:
    email = f"mesh-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "name": "Mesh Tester", "pwd": "password-1"}
    async with http.post(f"{ingress}/user-service/users", json=body) as resp:
        assert resp.status == 201, await resp.text()
        user_id = (await resp.json())["userId"]
    login = {"email": email, "password": "password-1"}
    async with http.post(f"{ingress}/user-service/login", json=login) as resp:
        assert resp.status == 200, await resp.text()
        token = (await resp.json())["token"]
    return Customer(user_id, token, email)
