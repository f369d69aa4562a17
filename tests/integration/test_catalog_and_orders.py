from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.integration.conftest import Client
from tests.support.identity import as_user

ORDER = {"productId": "CATALOG-001", "qty": 3, "unitPrice": 1500}


async def test_seed_catalog(catalog: Client) -> None:
    items = await (await catalog.get("/catalogs")).json()
    seed = {i["productId"]: (i["productName"], i["unitPrice"]) for i in items}
    assert seed == {
        "CATALOG-001": ("Berlin", 1500),
        "CATALOG-002": ("Tokyo", 1000),
        "CATALOG-003": ("Stockholm", 2000),
    }
    assert all({"stock", "createdAt"} <= set(i) for i in items)


async def test_one_product_and_unknown_product(catalog: Client) -> None:
    item = await (await catalog.get("/catalogs/CATALOG-003")).json()
    assert item["unitPrice"] == 2000
    resp = await catalog.get("/catalogs/NOPE")
    assert resp.status == 404 and resp.content_type == "application/problem+json"


async def test_place_order_computes_total_and_is_pending(order: Client) -> None:
    user_id = f"user-{uuid.uuid4()}"
    resp = await order.post(f"/{user_id}/orders", json=ORDER, headers=as_user(user_id))
    assert resp.status == 201
    body = await resp.json()
    assert body["totalPrice"] == 4500 and body["status"] == "PENDING"
    assert body["userId"] == user_id and body["orderId"] and body["createdAt"]


async def test_orders_newest_first(order: Client) -> None:
    user_id = f"user-{uuid.uuid4()}"
    for qty in (1, 2, 3):
        resp = await order.post(
            f"/{user_id}/orders", json={**ORDER, "qty": qty}, headers=as_user(user_id)
        )
        assert resp.status == 201
    listed = await (await order.get(f"/{user_id}/orders", headers=as_user(user_id))).json()
    assert [o["qty"] for o in listed] == [3, 2, 1]
    other = f"other-{uuid.uuid4()}"
    assert await (await order.get(f"/{other}/orders", headers=as_user(other))).json() == []


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({**ORDER, "productId": "NOPE"}, 422, "productId"),
        ({**ORDER, "unitPrice": 1}, 422, "unitPrice"),
        ({**ORDER, "qty": 0}, 400, "qty"),
        ({"productId": "CATALOG-001"}, 400, "qty"),
    ],
)
async def test_order_client_errors(
    order: Client, body: dict[str, Any], status: int, field: str
) -> None:
    user_id = f"u-{uuid.uuid4()}"
    resp = await order.post(f"/{user_id}/orders", json=body, headers=as_user(user_id))
    assert resp.status == status
    problem = await resp.json(content_type=None)
    assert field in {e["field"] for e in problem["errors"]}


async def test_catalog_down_is_503_not_500(order_settings, unused_tcp_port: int) -> None:  # type: ignore[no-untyped-def]
    from services.order.app import create_app
    from tests.integration.conftest import _serve

    settings = order_settings.model_copy(
        update={"catalog_service_url": f"http://127.0.0.1:{unused_tcp_port}"}
    )
    async for client in _serve(create_app(settings)):
        user_id = f"u-{uuid.uuid4()}"
        resp = await client.post(f"/{user_id}/orders", json=ORDER, headers=as_user(user_id))
        assert resp.status == 503
        assert "catalog-service" in (await resp.json(content_type=None))["detail"]


async def test_idempotency_key_replays_first_response(order: Client) -> None:
    user_id = f"user-{uuid.uuid4()}"
    headers = {"Idempotency-Key": str(uuid.uuid4()), **as_user(user_id)}
    first = await order.post(f"/{user_id}/orders", json=ORDER, headers=headers)
    again = await order.post(f"/{user_id}/orders", json=ORDER, headers=headers)
    assert first.status == again.status == 201
    assert await first.json() == await again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(await (await order.get(f"/{user_id}/orders", headers=as_user(user_id))).json()) == 1


async def test_idempotency_key_with_other_body_is_422(order: Client) -> None:
    user_id = f"user-{uuid.uuid4()}"
    headers = {"Idempotency-Key": str(uuid.uuid4()), **as_user(user_id)}
    assert (await order.post(f"/{user_id}/orders", json=ORDER, headers=headers)).status == 201
    resp = await order.post(f"/{user_id}/orders", json={**ORDER, "qty": 9}, headers=headers)
    assert resp.status == 422
    assert (await resp.json(content_type=None))["errors"][0]["field"] == "Idempotency-Key"


async def test_concurrent_double_post_creates_exactly_one_order(order: Client) -> None:
    user_id = f"user-{uuid.uuid4()}"
    headers = {"Idempotency-Key": str(uuid.uuid4()), **as_user(user_id)}
    responses = await asyncio.gather(
        *(order.post(f"/{user_id}/orders", json=ORDER, headers=headers) for _ in range(8))
    )
    assert [r.status for r in responses] == [201] * 8
    bodies = [await r.json() for r in responses]
    assert len({b["orderId"] for b in bodies}) == 1
    assert len(await (await order.get(f"/{user_id}/orders", headers=as_user(user_id))).json()) == 1


async def test_health_ready_checks_database(order: Client, catalog: Client) -> None:
    for client in (order, catalog):
        resp = await client.get("/health/ready")
        assert resp.status == 200 and (await resp.json())["checks"]["database"] == "UP"


async def test_orders_need_the_owners_identity(order: Client) -> None:
    owner, other = f"user-{uuid.uuid4()}", f"user-{uuid.uuid4()}"
    assert (await order.post(f"/{owner}/orders", json=ORDER, headers=as_user(owner))).status == 201
    for headers, status in (({}, 401), (as_user(other), 403), (as_user(owner, "evil"), 401)):
        listed = await order.get(f"/{owner}/orders", headers=headers)
        placed = await order.post(f"/{owner}/orders", json=ORDER, headers=headers)
        assert (listed.status, placed.status) == (status, status), headers
        assert listed.content_type == "application/problem+json"
    # Nothing was placed by the refused calls: the owner still has exactly one order.
    assert len(await (await order.get(f"/{owner}/orders", headers=as_user(owner))).json()) == 1
