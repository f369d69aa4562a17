from __future__ import annotations

from datetime import datetime

from services.common.models import ApiModel


class CatalogItem(ApiModel):
    product_id: str
    product_name: str
    unit_price: int
    stock: int
    created_at: datetime
