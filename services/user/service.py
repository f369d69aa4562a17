"""User detail: the user with their orders, degraded rather than failed when orders are late.

The seed's Resilience4j fallback, done without retry or breaker (the mesh owns those).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.user.models import User, UserDetail

log = logging.getLogger(__name__)


class OrdersUnavailable(Exception):
    """order-service gave no usable answer in time; the message says why, for the log."""


UserLookup = Callable[[str], Awaitable[User | None]]
# The user's orders as order-service returned them; raises OrdersUnavailable.
OrdersLookup = Callable[[str], Awaitable[list[dict[str, Any]]]]


async def user_detail(
    find_user: UserLookup, find_orders: OrdersLookup, user_id: str
) -> UserDetail | None:
    """None for an unknown user; otherwise the detail, with ordersAvailable=false and no
    orders when order-service cannot answer (a slow peer must not make the user vanish)."""
    user = await find_user(user_id)
    if user is None:
        return None
    try:
        orders, available = await find_orders(user.user_id), True
    except OrdersUnavailable as exc:
        log.warning("orders unavailable, answering without them", extra={"reason": str(exc)})
        orders, available = [], False
    return UserDetail(**user.model_dump(), orders=orders, orders_available=available)
