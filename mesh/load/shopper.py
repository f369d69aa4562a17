"""The shopper mix `meshmart load` runs: Locust users that browse, sign up, log in, read their
own user with its orders, and place orders with Idempotency-Keys, through the ingress or from
inside the mesh: every request goes to `target.url(service, path)` (mesh.load.plan), each
path as the service itself serves it.

Importing this module imports Locust, which monkey-patches the standard library for gevent:
only the `meshmart load` process imports it (mesh.commands.load does so lazily).
"""

from __future__ import annotations

import random
import secrets
import uuid
from typing import Any

from locust import FastHttpUser, task

from mesh.load import MIX
from mesh.load.plan import Target


class Shopper(FastHttpUser):
    """One shopper: signs up and logs in first, then shops at the pace `wait_time` sets."""

    abstract = True  # made concrete, with its target and pace, by mesh.load.runner
    target: Target
    token: str | None = None
    user_id: str | None = None
    products: list[dict[str, Any]]

    def on_start(self) -> None:
        self.products = []
        self._sign_up_and_log_in()

    def _sign_up_and_log_in(self) -> None:
        email = f"load-{uuid.uuid4().hex[:12]}@example.com"
        password = secrets.token_urlsafe(12)
        body = {"email": email, "name": "Load Shopper", "pwd": password}
        url = self.target.url("user-service", "/users")
        with self.client.post(url, json=body, name="sign up",
                              catch_response=True) as signed_up:  # fmt: skip
            if signed_up.status_code != 201:
                signed_up.failure(f"HTTP {signed_up.status_code}")
                return
        login = {"email": email, "password": password}
        url = self.target.url("user-service", "/login")
        with self.client.post(url, json=login, name="log in",
                              catch_response=True) as logged_in:  # fmt: skip
            if logged_in.status_code != 200:
                logged_in.failure(f"HTTP {logged_in.status_code}")
                return
            answer = logged_in.json()
            self.token, self.user_id = answer["token"], answer["userId"]

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @task(MIX["browse catalog"])
    def browse_catalog(self) -> None:
        url = self.target.url("catalog-service", "/catalogs")
        with self.client.get(url, name="browse catalog",
                             catch_response=True) as response:  # fmt: skip
            if response.status_code == 200:
                self.products = list(response.json())
            else:
                response.failure(f"HTTP {response.status_code}")

    @task(MIX["view product"])
    def view_product(self) -> None:
        if not self.products:
            return self.browse_catalog()
        product = random.choice(self.products)  # noqa: S311 - a shopper's whim, not a secret
        path = self.target.url("catalog-service", f"/catalogs/{product['productId']}")
        self._expect(self.client.get(path, name="view product", catch_response=True), 200)
        return None

    @task(MIX["read own user"])
    def read_own_user(self) -> None:
        if self.token is None:
            return self._sign_up_and_log_in()
        path = self.target.url("user-service", f"/users/{self.user_id}")
        request = self.client.get(path, headers=self._auth(), name="read own user",
                                  catch_response=True)  # fmt: skip
        self._expect(request, 200)
        return None

    @task(MIX["place order"])
    def place_order(self) -> None:
        if self.token is None:
            return self._sign_up_and_log_in()
        if not self.products:
            return self.browse_catalog()
        product = random.choice(self.products)  # noqa: S311
        order = {"productId": product["productId"], "qty": 1, "unitPrice": product["unitPrice"]}
        headers = {**self._auth(), "Idempotency-Key": str(uuid.uuid4())}
        path = self.target.url("order-service", f"/{self.user_id}/orders")
        request = self.client.post(path, json=order, headers=headers, name="place order",
                                   catch_response=True)  # fmt: skip
        self._expect(request, 201)
        return None

    @staticmethod
    def _expect(request: Any, status: int) -> None:
        with request as response:
            if response.status_code != status:
                response.failure(f"HTTP {response.status_code}")
