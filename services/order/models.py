from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from services.common.models import ApiModel

OrderStatus = Literal["PENDING", "CONFIRMED", "REJECTED"]


# A product id is one path segment of catalog-service's GET /catalogs/{productId}: RFC 3986
# unreserved characters, so it has exactly one spelling there (services/common/paths.py
# refuses escaped control characters, slashes and dot segments), and no leading dot.
PRODUCT_ID_PATTERN = r"^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$"


class OrderRequest(ApiModel):
    product_id: str = Field(min_length=1, max_length=64, pattern=PRODUCT_ID_PATTERN)
    qty: int = Field(ge=1, le=1_000_000)
    unit_price: int = Field(ge=0, le=100_000_000)


class Order(ApiModel):
    order_id: str
    user_id: str
    product_id: str
    qty: int
    unit_price: int
    discount: int = 0  # v2's volume discount, already taken off total_price
    total_price: int
    status: OrderStatus
    created_at: datetime


class CatalogProduct(ApiModel):
    """The part of catalog-service's answer that order-service relies on."""

    product_id: str
    unit_price: int
