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


def total_price(qty: int, unit_price: int) -> int:
    return qty * unit_price
