"""Nothing a client sends may produce a 500: hostile bodies, paths and headers on every route."""

from __future__ import annotations

import io
from typing import Any

import pytest

from tests.integration.conftest import Client
from tests.support.identity import as_user

LONG = "x" * 5000
HOSTILE_BODIES: list[Any] = [
    b"",
    b"null",
    b"[]",
    b'"string"',
    b"123",
    b"{",
    b"\xff\xfe",
    b'{"a":' * 200 + b"1" + b"}" * 200,
    {"email": "a\u0000@x.io", "name": "N\u0000", "pwd": "12345678\u0000"},
    {"email": LONG + "@x.io", "name": LONG, "pwd": LONG},
    {"email": ["a@x.io"], "name": {"n": 1}, "pwd": None},
    {"productId": "\u0000", "qty": 1, "unitPrice": 1},
    # found by schemathesis through the ingress: once a 503 (catalog refused the path)
    {"productId": "|\u00dd\u0018\u0004\r\u00b2", "qty": 1, "unitPrice": 1},
    {"productId": "..", "qty": 1, "unitPrice": 1},
    {"productId": "CATALOG-001", "qty": 10**30, "unitPrice": -(10**30)},
    {"productId": "CATALOG-001", "qty": True, "unitPrice": 1500},
    {"productId": "CATALOG-001", "qty": 1.0, "unitPrice": 1500},
    {"productId": LONG, "qty": 1, "unitPrice": 1500},
]
ROUTES = [
    ("user", "POST", "/users"),
    ("user", "POST", "/login"),
    ("order", "POST", "/u-hostile/orders"),
]
PATHS = [
    ("user", "/users/%00"),
    ("user", "/users/" + LONG),
    ("user", "/users/..%2F..%2Fetc%2Fpasswd"),
    ("catalog", "/catalogs/%00"),
    ("catalog", "/catalogs/" + LONG),
    ("catalog", "/catalogs/%27%3B%20DROP%20TABLE%20catalog%3B--"),
    ("order", "/%00/orders"),
    ("order", "/" + LONG + "/orders"),
]


@pytest.fixture
def clients(user: Client, catalog: Client, order: Client) -> dict[str, Client]:
    return {"user": user, "catalog": catalog, "order": order}


@pytest.mark.parametrize(("service", "method", "path"), ROUTES)
@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=range(len(HOSTILE_BODIES)))
async def test_hostile_bodies_are_4xx_problems(
    clients: dict[str, Client], service: str, method: str, path: str, body: Any
) -> None:
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
    # As the owner, so the body itself is what gets refused (not the missing identity).
    headers = as_user("u-hostile") if service == "order" else {}
    resp = await clients[service].request(method, path, headers=headers, **kwargs)
    assert 400 <= resp.status < 500, (resp.status, await resp.text())
    assert resp.content_type == "application/problem+json"


@pytest.mark.parametrize(("service", "path"), PATHS)
async def test_hostile_paths_are_4xx(clients: dict[str, Client], service: str, path: str) -> None:
    resp = await clients[service].get(path)
    assert 400 <= resp.status < 500, (resp.status, await resp.text())


async def test_sql_looking_product_id_leaves_the_catalog_intact(catalog: Client) -> None:
    await catalog.get("/catalogs/%27%3B%20DROP%20TABLE%20catalog%3B--")
    assert len(await (await catalog.get("/catalogs")).json()) == 3


@pytest.mark.parametrize("key", ["", "x" * 300])
async def test_hostile_idempotency_keys(order: Client, key: str) -> None:
    body = {"productId": "CATALOG-001", "qty": 1, "unitPrice": 1500}
    headers = {"Idempotency-Key": key, **as_user("u-hostile")}
    resp = await order.post("/u-hostile/orders", json=body, headers=headers)
    assert resp.status == 400


async def test_oversized_body_is_413(user: Client) -> None:
    resp = await user.post("/users", data=io.BytesIO(b"{" + b" " * (2 * 1024 * 1024) + b"}"))
    assert resp.status == 413
