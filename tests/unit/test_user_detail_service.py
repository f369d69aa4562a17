"""User detail on fakes: orders when order-service answers, a degraded detail when it cannot."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from services.user.models import User
from services.user.service import OrdersUnavailable, user_detail

ALICE = User(email="alice@example.com", name="Alice", user_id="u-alice")
ORDERS: list[dict[str, Any]] = [{"orderId": "o-1", "status": "PENDING"}]


async def find_user(user_id: str) -> User | None:
    return ALICE if user_id == ALICE.user_id else None


class FakeOrders:
    def __init__(self, orders: list[dict[str, Any]] | None) -> None:
        self.orders = orders  # None: order-service cannot answer
        self.asked: list[str] = []

    async def __call__(self, user_id: str) -> list[dict[str, Any]]:
        self.asked.append(user_id)
        if self.orders is None:
            raise OrdersUnavailable("order-service: TimeoutError")
        return self.orders


async def test_detail_carries_the_users_orders() -> None:
    orders = FakeOrders(ORDERS)

    detail = await user_detail(find_user, orders, ALICE.user_id)

    assert detail is not None
    assert (detail.email, detail.name, detail.user_id) == (ALICE.email, "Alice", ALICE.user_id)
    assert detail.orders == ORDERS and detail.orders_available is True
    assert orders.asked == [ALICE.user_id]


async def test_orders_unavailable_degrades_instead_of_failing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="services.user.service"):
        detail = await user_detail(find_user, FakeOrders(None), ALICE.user_id)

    assert detail is not None and detail.user_id == ALICE.user_id
    wire = detail.model_dump(by_alias=True)
    assert wire["orders"] == [] and wire["ordersAvailable"] is False
    assert [getattr(r, "reason", None) for r in caplog.records] == ["order-service: TimeoutError"]


async def test_unknown_user_has_no_detail_and_no_orders_call() -> None:
    orders = FakeOrders(ORDERS)

    assert await user_detail(find_user, orders, "no-such-user") is None
    assert orders.asked == []
