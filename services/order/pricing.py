"""Price rules: the client states the price it saw; the catalog's price is the truth."""

from __future__ import annotations

from services.common.errors import FieldError, ProblemError
from services.order.models import CatalogProduct, OrderRequest


def check_against_catalog(request: OrderRequest, product: CatalogProduct | None) -> None:
    if product is None:
        raise ProblemError(
            422,
            "unknown product",
            errors=[FieldError(field="productId", message=f"no product {request.product_id!r}")],
        )
    if product.unit_price != request.unit_price:
        raise ProblemError(
            422,
            "price mismatch",
            errors=[
                FieldError(
                    field="unitPrice",
                    message=f"is {request.unit_price}, the catalog price is {product.unit_price}",
                )
            ],
        )


# order-service v2's change of behaviour, the canary's reason to exist: a volume discount.
VOLUME_DISCOUNT_MIN_QTY = 10
VOLUME_DISCOUNT_PERCENT = 10


def discount(qty: int, unit_price: int, version: str) -> int:
    """v2 takes 10% off orders of 10 or more units (rounded down to whole currency units)."""
    if version != "v2" or qty < VOLUME_DISCOUNT_MIN_QTY:
        return 0
    return qty * unit_price * VOLUME_DISCOUNT_PERCENT // 100


def total_price(qty: int, unit_price: int, version: str = "v1") -> int:
    return qty * unit_price - discount(qty, unit_price, version)
