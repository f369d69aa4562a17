"""The soak's traffic: the shopper mix at a fixed rate through the ingress, open loop.

Request n leaves at start + n / rps whatever the answers take, so a shop that slows down shows
as errors and latency, never as a politely lower rate. The mix is the shopper's
(mesh.load.MIX). A customer retires after ORDERS_PER_CUSTOMER orders and a fresh one signs up:
reading a user returns all of its orders, so a fixed set of customers would make every read
grow through the run, a trend in the workload rather than in the shop.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from typing import Any

import aiohttp

from bench.shopper import Customer
from mesh.load import MIX

CUSTOMERS = 8
ORDERS_PER_CUSTOMER = 50
# The client's connections to the ingress, at most (fortio's 16 in `make bench`'s fixed-rate
# runs). Requests beyond wait for one, against the same timeout. Without a cap the pool
# ratchets up to the largest burst ever seen and the ingress's connection count with it: a
# trend of the generator, not of the shop.
CONNECTIONS = 16
TIMEOUT = aiohttp.ClientTimeout(total=10)
PASSWORD = "soak-password-1"  # noqa: S105 - throwaway accounts of the soak's own shop
EXPECTED = {"browse catalog": 200, "view product": 200, "read own user": 200,
            "place order": 201, "sign up": 201, "log in": 200}  # fmt: skip


class SteadyLoad:
    """`async with SteadyLoad(ingress, rps) as load: await load.run(seconds)`; `counts` holds
    (operation, status) -> answers, a status being the HTTP code, "200 degraded" for a user
    read without its orders, or the exception's name."""

    def __init__(self, ingress: str, rps: float, seed: int = 0) -> None:
        self.ingress, self.rps = ingress, rps
        self.counts: Counter[tuple[str, str]] = Counter()
        self._random = random.Random(seed)  # noqa: S311 - a reproducible mix, not a secret
        self._customers: list[Customer] = []
        self._orders: Counter[str] = Counter()  # user id -> orders placed
        self._products: list[dict[str, Any]] = []
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> SteadyLoad:
        connector = aiohttp.TCPConnector(limit=CONNECTIONS)
        self._http = aiohttp.ClientSession(timeout=TIMEOUT, connector=connector)
        self._products = await self._get_json("/catalog-service/catalogs", "browse catalog")
        if not self._products:
            raise RuntimeError(f"the catalog did not answer: {self.errors()}")
        self._customers = list(await asyncio.gather(*(self._sign_up() for _ in range(CUSTOMERS))))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    @property
    def requests(self) -> int:
        return sum(self.counts.values())

    def errors(self) -> dict[str, int]:
        """ "operation status" -> count, for every answer that was not the expected one."""
        return {f"{op} {status}": n for (op, status), n in self.counts.items()
                if status != str(EXPECTED[op])}  # fmt: skip

    async def run(self, seconds: float) -> None:
        began = time.monotonic()
        operations, weights = list(MIX), list(MIX.values())
        for n in range(int(seconds * self.rps)):
            await asyncio.sleep(max(0.0, began + n / self.rps - time.monotonic()))
            (operation,) = self._random.choices(operations, weights)
            self._spawn(self._send(operation))
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, operation: str) -> None:
        customer = self._random.choice(self._customers)
        auth = {"Authorization": f"Bearer {customer.token}"}
        if operation == "browse catalog":
            await self._get_json("/catalog-service/catalogs", operation)
        elif operation == "view product":
            product = self._random.choice(self._products)["productId"]
            await self._get_json(f"/catalog-service/catalogs/{product}", operation)
        elif operation == "read own user":
            await self._get_json(f"/user-service/users/{customer.user_id}", operation, auth)
        else:
            await self._place_order(customer, auth)

    async def _place_order(self, customer: Customer, auth: dict[str, str]) -> None:
        product = self._random.choice(self._products)
        body = {"productId": product["productId"], "qty": 1, "unitPrice": product["unitPrice"]}
        headers = {**auth, "Idempotency-Key": uuid.uuid4().hex}
        url = f"/order-service/{customer.user_id}/orders"
        if await self._call("POST", url, "place order", headers, body) is None:
            return
        self._orders[customer.user_id] += 1
        if self._orders[customer.user_id] == ORDERS_PER_CUSTOMER:
            self._spawn(self._replace(customer))

    async def _replace(self, retired: Customer) -> None:
        fresh = await self._sign_up()
        self._customers = [fresh if c == retired else c for c in self._customers]

    async def _sign_up(self) -> Customer:
        email = f"soak-{uuid.uuid4().hex[:12]}@example.com"
        user = {"email": email, "name": "Soak", "pwd": PASSWORD}
        await self._call("POST", "/user-service/users", "sign up", body=user)
        login = {"email": email, "password": PASSWORD}
        answer = await self._call("POST", "/user-service/login", "log in", body=login)
        if answer is None:
            raise RuntimeError(f"could not sign up and log in a customer: {self.errors()}")
        return Customer(answer["userId"], answer["token"])

    async def _get_json(
        self, path: str, operation: str, headers: dict[str, str] | None = None
    ) -> Any:
        return await self._call("GET", path, operation, headers)

    async def _call(self, method: str, path: str, operation: str,
                    headers: dict[str, str] | None = None, body: Any = None) -> Any:  # fmt: skip
        """The answer's JSON if it had the expected status, else None; counted either way."""
        assert self._http is not None, "use SteadyLoad in `async with`"
        try:
            async with self._http.request(method, self.ingress + path, headers=headers,
                                          json=body) as resp:  # fmt: skip
                status = str(resp.status)
                answer = await resp.json(content_type=None) if resp.status < 300 else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.counts[(operation, type(exc).__name__)] += 1
            return None
        if operation == "read own user" and answer and not answer.get("ordersAvailable", True):
            status += " degraded"  # order-service failed behind user-service's fallback
        self.counts[(operation, status)] += 1
        return answer if status == str(EXPECTED[operation]) else None
