"""A customer of the shop, signed up and logged in through the ingress: the chaos shoppers'
own sign-up (mesh.chaos.client), so the tests and the chaos run enter the shop one way."""

from __future__ import annotations

import aiohttp

from mesh.chaos.client import Account, sign_up

Customer = Account


async def sign_up_and_log_in(http: aiohttp.ClientSession, ingress: str) -> Customer:
    return await sign_up(http, ingress)
